import EventLoop

/// Something that waits for permission to send its next request.
protocol PacedClient: AnyObject {
    func ticketGranted()
}

/// Hands out request tickets at a target rate (open-loop pacing, checked every millisecond).
/// Clients queue for a ticket; tickets not used because nobody was waiting accumulate only
/// up to `burstSeconds` worth, and the excess is counted as `ticketsMissed` (the clients
/// could not keep up: every one of them was waiting for a response).
///
/// A rate of 0 means unpaced: a ticket is granted at once.
final class Pacer {
    static let tickMs: UInt64 = 1
    static let burstSeconds = 0.05

    private let loop: Loop
    private let timer: LoopTimer
    private var waiting: [any PacedClient] = []
    private var waitingHead = 0
    private var credit = 0.0
    private var lastTickNs: UInt64 = 0
    /// Requests per second; 0 = unpaced.
    private(set) var ratePerSecond: Double = 0
    private(set) var ticketsGranted: UInt64 = 0
    private(set) var ticketsMissed: Double = 0

    init(loop: Loop) {
        self.loop = loop
        timer = LoopTimer(loop: loop)
    }

    var waitingCount: Int { waiting.count - waitingHead }

    func setRate(_ perSecond: Double) {
        precondition(perSecond >= 0)
        let wasPaced = ratePerSecond > 0
        ratePerSecond = perSecond
        if perSecond == 0 {
            timer.stop()
            while let c = pop() { grant(c) }
        } else if !wasPaced {
            lastTickNs = Loop.hrtimeNs
            credit = 0
            timer.start(afterMs: Pacer.tickMs, repeatMs: Pacer.tickMs) { [unowned self] in tick() }
        }
    }

    func stop() {
        timer.stop()
        ratePerSecond = 0
        waiting.removeAll()
        waitingHead = 0
    }

    /// Queues `client`; `ticketGranted` runs when its turn comes (now, when unpaced).
    func request(_ client: any PacedClient) {
        if ratePerSecond == 0 { return grant(client) }
        if credit >= 1 && waitingCount == 0 {
            credit -= 1
            return grant(client)
        }
        waiting.append(client)
    }

    /// Removes a client that no longer wants its ticket.
    func cancel(_ client: any PacedClient) {
        if let i = waiting[waitingHead...].firstIndex(where: { $0 === client }) { waiting.remove(at: i) }
    }

    private func tick() {
        let now = Loop.hrtimeNs
        credit += ratePerSecond * Double(now &- lastTickNs) / 1e9
        lastTickNs = now
        while credit >= 1, let c = pop() {
            credit -= 1
            grant(c)
        }
        let cap = max(1, ratePerSecond * Pacer.burstSeconds)
        if credit > cap {
            ticketsMissed += credit - cap
            credit = cap
        }
    }

    private func pop() -> (any PacedClient)? {
        guard waitingHead < waiting.count else { return nil }
        let c = waiting[waitingHead]
        waitingHead += 1
        if waitingHead > 1024 && waitingHead * 2 > waiting.count {
            waiting.removeFirst(waitingHead)
            waitingHead = 0
        } else if waitingHead == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingHead = 0
        }
        return c
    }

    private func grant(_ c: any PacedClient) {
        ticketsGranted += 1
        c.ticketGranted()
    }
}

/// Runs closures at a loop time (Retry-After waits, back-offs): a binary heap checked by one
/// timer every `tickMs`.
final class Delays {
    static let tickMs: UInt64 = 5
    private struct Entry {
        let dueMs: UInt64
        let order: UInt64
        let action: () -> Void
    }

    private let loop: Loop
    private let timer: LoopTimer
    private var heap: [Entry] = []
    private var order: UInt64 = 0

    init(loop: Loop) {
        self.loop = loop
        timer = LoopTimer(loop: loop)
        timer.start(afterMs: Delays.tickMs, repeatMs: Delays.tickMs) { [unowned self] in runDue() }
    }

    var count: Int { heap.count }

    func after(ms: UInt64, _ action: @escaping () -> Void) {
        order += 1
        heap.append(Entry(dueMs: loop.nowMs + ms, order: order, action: action))
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard less(heap[i], heap[p]) else { break }
            heap.swapAt(i, p)
            i = p
        }
    }

    func stop() {
        timer.stop()
        heap.removeAll()
    }

    private func less(_ a: Entry, _ b: Entry) -> Bool { (a.dueMs, a.order) < (b.dueMs, b.order) }

    private func runDue() {
        let now = loop.nowMs
        while let top = heap.first, top.dueMs <= now {
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < heap.count && less(heap[l], heap[m]) { m = l }
                    if r < heap.count && less(heap[r], heap[m]) { m = r }
                    if m == i { break }
                    heap.swapAt(i, m)
                    i = m
                }
            }
            top.action()
        }
    }
}
