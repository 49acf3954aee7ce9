/// Fair admission of validation jobs to the worker pool, by sender (loop thread only; pure: no
/// clocks, no threads). Each sender has a FIFO queue; queues are served round-robin; at most
/// `inFlightMax` jobs (the pool's size) run at once, so the pool's own queue never holds a
/// backlog in arrival order and one sender's burst waits behind its own jobs, not in front of
/// everybody else's. A sender with one job waiting gets the next free worker after at most one
/// job of every other waiting sender.
public struct ValidationScheduler<Job> {
    public let inFlightMax: Int
    public private(set) var inFlight = 0
    /// Jobs waiting, all senders.
    public private(set) var waiting = 0

    private var queues: [String: FIFO<Job>] = [:]
    /// Senders with a non-empty queue, in the order they will be served.
    private var turn = FIFO<String>()

    public init(inFlightMax: Int) {
        precondition(inFlightMax >= 1, "inFlightMax must be positive")
        self.inFlightMax = inFlightMax
    }

    /// Queues `job` for `sender`; returns the jobs to start now (the caller starts them and
    /// calls `finished()` once per started job when it completes).
    public mutating func submit(_ job: Job, sender: String) -> [Job] {
        if queues[sender, default: FIFO()].isEmpty { turn.push(sender) }
        queues[sender, default: FIFO()].push(job)
        waiting += 1
        return startable()
    }

    /// One started job completed; returns the jobs to start now.
    public mutating func finished() -> [Job] {
        precondition(inFlight > 0, "finished() without a started job")
        inFlight -= 1
        return startable()
    }

    /// Jobs waiting for `sender`.
    public func waiting(for sender: String) -> Int { queues[sender]?.count ?? 0 }

    private mutating func startable() -> [Job] {
        var start: [Job] = []
        while inFlight < inFlightMax, let sender = turn.pop() {
            var queue = queues.removeValue(forKey: sender)!
            start.append(queue.pop()!)
            waiting -= 1
            inFlight += 1
            if !queue.isEmpty {
                queues[sender] = queue
                turn.push(sender)
            }
        }
        return start
    }
}

/// A queue with amortized O(1) push and pop.
struct FIFO<Element> {
    private var items: [Element?] = []
    private var head = 0

    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }

    mutating func push(_ e: Element) { items.append(e) }

    mutating func pop() -> Element? {
        guard head < items.count else { return nil }
        let e = items[head]
        items[head] = nil
        head += 1
        if head > 32 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return e
    }
}
