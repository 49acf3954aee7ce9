import Synchronization

/// What one commit group made durable, as events in commit order: per partition (by name,
/// `<region>:<ispb>` or the quarantine log), its appended records with their offsets and resource
/// ids, then its acknowledgements, leases and releases. A second durability target gets a
/// group's events before anything of it is acknowledged; observers get them once it is.
public struct CommittedGroup: Sendable, Equatable {
    public var events: [StoreEvent]
    public init(events: [StoreEvent]) { self.events = events }
}

public enum StoreEvent: Sendable, Equatable {
    case appended(partition: String, records: [Record])
    case acknowledged(partition: String, offsets: [UInt64])
    case leased(partition: String, Lease)
    case released(partition: String, stream: UInt64)

    public var partition: String {
        switch self {
        case .appended(let p, _), .acknowledged(let p, _), .leased(let p, _), .released(let p, _): p
        }
    }
}

/// A second place a commit group must be durable before anything of it is acknowledged (cluster
/// mode's replicated journal). The writer hands it each group's events before its own
/// fdatasync, so the two overlap, and waits for both: no append, acknowledgement or lease of the
/// group completes before `done(.success)`. A failure fails the store like a failed journal
/// fdatasync (the group's outcome is unknown; writes are refused until the store is reopened).
public protocol DurabilityTarget: Sendable {
    /// Called on the writer thread, one group at a time, in commit order. `done` must be called
    /// exactly once, from any thread.
    func persist(_ group: CommittedGroup, done: @escaping @Sendable (Result<Void, any Error>) -> Void)
}

/// The writer's wait for its durability target's answer.
final class TargetWaiter: Sendable {
    private let result = ConditionLock<Result<Void, any Error>?>(nil)

    func finish(_ r: Result<Void, any Error>) {
        result.withLock { state in
            precondition(state == nil, "DurabilityTarget called done twice")
            state = r
        }
        result.broadcast()
    }

    func wait() -> Result<Void, any Error> {
        result.wait(until: { $0 != nil }, deadlineNs: nil) { $0! }
    }
}
