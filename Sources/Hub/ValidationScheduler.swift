/// Fair admission of validation jobs to the worker pool, by sender (loop thread only; pure: no
/// clocks, no threads). Each sender has a FIFO queue; queues are served round-robin; at most
/// `inFlightMax` jobs are on the pool at once and at most `perSenderMax` of one sender, so the
/// pool's own queue never holds a backlog in arrival order and one sender's burst waits behind
/// its own jobs, not in front of everybody else's. A sender with one job waiting gets the next
/// free slot after at most one job of every other waiting sender; a newcomer's job, once on
/// the pool, waits behind at most `inFlightMax` others. `inFlightMax` above the pool's size
/// keeps a job queued per worker, so a worker that finishes does not idle for a loop round trip.
public struct ValidationScheduler<Job> {
    public let inFlightMax: Int
    public let perSenderMax: Int
    public private(set) var inFlight = 0
    /// Jobs on the pool, by sender (absent: none).
    private var running: [String: Int] = [:]
    /// Jobs waiting, all senders.
    public private(set) var waiting = 0

    private var queues: [String: FIFO<Job>] = [:]
    /// Senders with a non-empty queue, in the order they will be served.
    private var turn = FIFO<String>()

    public init(inFlightMax: Int, perSenderMax: Int? = nil) {
        precondition(inFlightMax >= 1, "inFlightMax must be positive")
        self.inFlightMax = inFlightMax
        self.perSenderMax = min(perSenderMax ?? inFlightMax, inFlightMax)
        precondition(self.perSenderMax >= 1, "perSenderMax must be positive")
    }

    /// Queues `job` for `sender`; returns the jobs to start now (the caller starts them and
    /// calls `finished()` once per started job when it completes).
    public mutating func submit(_ job: Job, sender: String) -> [Job] {
        if queues[sender, default: FIFO()].isEmpty { turn.push(sender) }
        queues[sender, default: FIFO()].push(job)
        waiting += 1
        return startable()
    }

    /// One started job of `sender` completed; returns the jobs to start now.
    public mutating func finished(sender: String) -> [Job] {
        precondition(inFlight > 0 && running[sender, default: 0] > 0, "finished() without a started job")
        inFlight -= 1
        running[sender]! -= 1
        if running[sender] == 0 { running[sender] = nil }
        return startable()
    }

    /// Jobs waiting for `sender`.
    public func waiting(for sender: String) -> Int { queues[sender]?.count ?? 0 }

    private mutating func startable() -> [Job] {
        var start: [Job] = []
        var atCap: [String] = []   // senders passed over this round (their turn is kept)
        while inFlight < inFlightMax, let sender = turn.pop() {
            if running[sender, default: 0] >= perSenderMax {
                atCap.append(sender)
                continue
            }
            var queue = queues.removeValue(forKey: sender)!
            start.append(queue.pop()!)
            waiting -= 1
            inFlight += 1
            running[sender, default: 0] += 1
            if !queue.isEmpty {
                queues[sender] = queue
                turn.push(sender)
            }
        }
        if !atCap.isEmpty {
            var rest = FIFO<String>()
            for sender in atCap { rest.push(sender) }
            while let sender = turn.pop() { rest.push(sender) }
            turn = rest
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
