import EventLoop
import LogStore

/// Brings the log store's durable events (`LogStoreConfig.eventObserver`, called on the writer
/// thread) to the loop, where the pull service wakes long polls from them. The store is opened
/// before the services exist, so the receiver is attached afterwards; events that arrive before
/// (recovery replays none) are dropped. Each group is handed over before its completions are
/// (the store calls the observer first and both go through the same executor), so a long poll
/// wakes before the sender's 201 is written.
final class StoreEventRelay: Sendable {
    private let executor: LoopExecutor
    private let receiver: LoopBound<Box>

    private final class Box {
        var deliver: ((CommittedGroup) -> Void)?
    }

    init(executor: LoopExecutor) {
        self.executor = executor
        receiver = LoopBound(Box())
    }

    /// Loop thread: where the events go from now on.
    func attach(_ deliver: @escaping (CommittedGroup) -> Void) {
        receiver.value.deliver = deliver
    }

    /// The store's observer (writer thread): appends only, reduced to what a wake-up needs.
    var observer: @Sendable (CommittedGroup) -> Void {
        { [executor, receiver] group in
            let appended = group.events.filter { if case .appended = $0 { true } else { false } }
            guard !appended.isEmpty else { return }
            executor.submit { receiver.value.deliver?(CommittedGroup(events: appended)) }
        }
    }
}
