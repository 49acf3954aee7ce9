/// Every error the store reports. `code` is stable (operators and the hub's problem types
/// key on it).
public enum LogStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `close()` was called.
    case closed
    /// The commit queue is over `queueBytesMax` / `queueOpsMax`: retry later (the hub answers 429).
    case overloaded
    case invalidPartitionKey(String)
    /// A record breaks a limit (key or payload size, batch size).
    case invalidRecord(String)
    /// An acknowledgement of an offset that is not durable yet.
    case invalidOffset(partition: String, offset: UInt64)
    /// A journal write, fsync or roll failed: the outcome of the in-flight appends is unknown and
    /// the store refuses further writes until it is reopened. Retrying with the same
    /// idempotency key after reopening is safe.
    case storeFailed(String)
    /// A segment write of this partition failed: its appends are refused until reopen; their
    /// outcome is unknown (the journal may hold them; reopening replays it).
    case partitionFailed(partition: String, reason: String)
    /// A stored frame failed its checksum or sequence check (bit rot); it is never served.
    case corruption(partition: String, offset: UInt64, detail: String)
    /// The checkpoint file is unreadable: the store does not open rather than guess.
    case corruptCheckpoint(String)
    /// An I/O failure while opening, reading or applying retention.
    case io(String)
    /// A `LogStoreConfig` value out of its allowed range.
    case invalidConfiguration(String)

    public var code: String {
        switch self {
        case .closed: "closed"
        case .overloaded: "overloaded"
        case .invalidPartitionKey: "invalid-partition-key"
        case .invalidRecord: "invalid-record"
        case .invalidOffset: "invalid-offset"
        case .storeFailed: "store-failed"
        case .partitionFailed: "partition-failed"
        case .corruption: "corruption"
        case .corruptCheckpoint: "corrupt-checkpoint"
        case .io: "io"
        case .invalidConfiguration: "invalid-configuration"
        }
    }

    public var description: String {
        switch self {
        case .closed: "log store is closed"
        case .overloaded: "commit queue full"
        case .invalidPartitionKey(let k): "invalid partition key \(k)"
        case .invalidRecord(let why): "invalid record: \(why)"
        case .invalidOffset(let p, let o): "offset \(o) of \(p) is not durable"
        case .storeFailed(let why): "log store failed (reopen required): \(why)"
        case .partitionFailed(let p, let why): "partition \(p) failed (reopen required): \(why)"
        case .corruption(let p, let o, let why): "corruption in \(p) at offset \(o): \(why)"
        case .corruptCheckpoint(let why): "corrupt checkpoint: \(why)"
        case .io(let why): "I/O error: \(why)"
        case .invalidConfiguration(let why): "invalid configuration: \(why)"
        }
    }
}
