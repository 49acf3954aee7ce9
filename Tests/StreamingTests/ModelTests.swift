import Streaming
import XCTest

/// A seeded random walk over the consumer domain (many streams; random append, lease,
/// acknowledge, retry, delete, abandon and crash) checked against a reference model that keeps
/// only histories and asserts the promises of DESIGN.md §1. Failures print the seed.
final class ModelTests: XCTestCase {
    struct Rng: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// What the model remembers about a live stream, as its client sees it.
    struct Client {
        var sequence: UInt32
        var batch: [UInt64]
        /// Ack submitted to the store, not yet durable (the request waits).
        var pendingAck: [UInt64]?
    }

    let slots = 6
    let idleMs: UInt64 = 30_000

    func testRandomWalksKeepThePromises() {
        let base = UInt64(ProcessInfo.processInfo.environment["MODEL_SEED"].flatMap { UInt64($0) } ?? 1)
        let runs = ProcessInfo.processInfo.environment["MODEL_RUNS"].flatMap { Int($0) } ?? 300
        for seed in base..<base + UInt64(runs) {
            if let failure = run(seed: seed, steps: 400) {
                XCTFail("seed \(seed): \(failure)  (reproduce: MODEL_SEED=\(seed) MODEL_RUNS=1)")
                return
            }
        }
    }

    /// Returns nil when every invariant held, else a description of the first violation.
    func run(seed: UInt64, steps: Int) -> String? {
        var rng = Rng(state: seed)
        var now: UInt64 = 1_000
        var end: UInt64 = 0
        var durableAcked = Set<UInt64>()
        var domain = PartitionConsumers(ispb: "12345678", slotsMax: slots, ackFloor: 0, ackedAbove: [], endOffset: 0)
        var clients: [UInt64: Client] = [:]
        var nextStream: UInt64 = 1
        var everDelivered = Set<UInt64>()
        var firstDeliveryOrder: [UInt64] = []
        /// Offsets whose redelivery is explained (abandoned, closed without ack, crashed, or a retry).
        var mayRedeliver = Set<UInt64>()
        var returnedExpectation: [UInt64] = []  // returned offsets, must come first

        func deliver(_ stream: UInt64, _ offsets: [UInt64]) -> String? {
            for o in offsets {
                if durableAcked.contains(o) { return "offset \(o) delivered after its acknowledgement" }
                if o >= end { return "offset \(o) delivered before it was appended" }
                for (id, c) in clients where id != stream && (c.batch.contains(o) || (c.pendingAck?.contains(o) ?? false)) {
                    return "offset \(o) leased to streams \(id) and \(stream) at once"
                }
                if everDelivered.contains(o) {
                    guard mayRedeliver.remove(o) != nil else { return "offset \(o) redelivered without cause" }
                } else {
                    everDelivered.insert(o)
                    if let last = firstDeliveryOrder.last, o < last {
                        return "first deliveries out of log order: \(o) after \(last)"
                    }
                    firstDeliveryOrder.append(o)
                }
            }
            // Returned offsets go first: if any were pending, the batch must start with the lowest.
            if let lowest = returnedExpectation.min(), !offsets.isEmpty, offsets.contains(lowest) == false,
               domainLeasable(lowest) {
                return "returned offset \(lowest) was not delivered first (got \(offsets))"
            }
            returnedExpectation.removeAll { offsets.contains($0) }
            return nil
        }

        func domainLeasable(_ o: UInt64) -> Bool { !durableAcked.contains(o) && !domain.isLeased(o) }

        for step in 0..<steps {
            let op = Int.random(in: 0..<100, using: &rng)
            switch op {
            case 0..<15: // append
                end += UInt64.random(in: 1...12, using: &rng)
                domain.appended(endOffset: end)
            case 15..<25: // open a stream and deliver its first batch
                let id = nextStream
                nextStream += 1
                if domain.open(id: id, nowMs: now) {
                    let batch = domain.leaseNext(id: id, max: Bool.random(using: &rng) ? 1 : 10, nowMs: now)
                    clients[id] = Client(sequence: domain.stream(id)!.sequence, batch: batch)
                    if let e = deliver(id, batch) { return "step \(step): \(e)" }
                } else if clients.count < slots {
                    return "step \(step): slot refused with \(clients.count) of \(slots) in use"
                }
            case 25..<50: // follow the current pointer: ack (maybe later), then next batch
                guard let (id, c) = clients.randomElement(using: &rng), c.pendingAck == nil else { continue }
                guard domain.resolve(id: id, sequence: c.sequence) == .current else {
                    return "step \(step): current pointer of \(id) not current"
                }
                clients[id]!.pendingAck = domain.batchToAcknowledge(id: id)
                if clients[id]!.pendingAck != c.batch { return "step \(step): batch to ack differs from delivered" }
                domain.setBusy(id: id, true, nowMs: now)
            case 50..<62: // an ack becomes durable; the next batch is leased and delivered
                guard let (id, c) = clients.first(where: { $0.value.pendingAck != nil }) else { continue }
                let acked = c.pendingAck!
                durableAcked.formUnion(acked)
                mayRedeliver.subtract(acked)
                returnedExpectation.removeAll { acked.contains($0) }
                domain.acknowledged(id: id, offsets: acked)
                domain.setBusy(id: id, false, nowMs: now)
                let batch = domain.leaseNext(id: id, max: Bool.random(using: &rng) ? 1 : 10, nowMs: now)
                clients[id] = Client(sequence: domain.stream(id)!.sequence, batch: batch)
                if let e = deliver(id, batch) { return "step \(step): \(e)" }
            case 62..<70: // retry the previous pointer: the same batch again, nothing acked
                guard let (id, c) = clients.randomElement(using: &rng), c.pendingAck == nil, c.sequence > 0 else { continue }
                let r = domain.resolve(id: id, sequence: c.sequence - 1)
                if c.sequence > 1 && r != .previous { return "step \(step): previous pointer resolved \(r)" }
                if r == .previous && domain.stream(id)!.batch != c.batch {
                    return "step \(step): retry returned \(domain.stream(id)!.batch), delivered \(c.batch)"
                }
            case 70..<76: // DELETE with the current pointer: ack durably, close
                guard let (id, c) = clients.randomElement(using: &rng), c.pendingAck == nil else { continue }
                durableAcked.formUnion(c.batch)
                mayRedeliver.subtract(c.batch)
                returnedExpectation.removeAll { c.batch.contains($0) }
                domain.acknowledged(id: id, offsets: c.batch)
                domain.close(id: id, nowMs: now)
                clients[id] = nil
                if domain.resolve(id: id, sequence: c.sequence) != .closed { return "step \(step): closed stream not 410" }
            case 76..<80: // DELETE with the previous pointer: nothing acked, batch returns
                guard let (id, c) = clients.randomElement(using: &rng), c.pendingAck == nil else { continue }
                domain.close(id: id, nowMs: now)
                clients[id] = nil
                mayRedeliver.formUnion(c.batch)
                returnedExpectation.append(contentsOf: c.batch)
            case 80..<90: // time passes; abandoned streams expire
                now += UInt64.random(in: 1_000...20_000, using: &rng)
                if Bool.random(using: &rng), let (id, c) = clients.randomElement(using: &rng), c.pendingAck == nil {
                    domain.setBusy(id: id, false, nowMs: now)  // this one is active
                }
                let expired = domain.expire(nowMs: now, idleMs: idleMs)
                for id in expired {
                    guard let c = clients.removeValue(forKey: id) else { return "step \(step): unknown stream expired" }
                    if c.pendingAck != nil { return "step \(step): a busy stream expired" }
                    mayRedeliver.formUnion(c.batch)
                    returnedExpectation.append(contentsOf: c.batch)
                }
                for (id, c) in clients where c.pendingAck == nil {
                    if let s = domain.stream(id), now >= s.lastActivityMs + idleMs {
                        return "step \(step): stream \(id) idle past its lease but not expired"
                    }
                }
            case 90..<93: // crash: only durable acknowledgements survive
                let floor = (0...end).first { !durableAcked.contains($0) } ?? end
                domain = PartitionConsumers(ispb: "12345678", slotsMax: slots, ackFloor: floor,
                                            ackedAbove: Set(durableAcked.filter { $0 >= floor }), endOffset: end)
                for (_, c) in clients {
                    mayRedeliver.formUnion(c.batch)
                    mayRedeliver.formUnion(c.pendingAck ?? [])
                }
                mayRedeliver.subtract(durableAcked)
                clients = [:]
                returnedExpectation = []
                firstDeliveryOrder = firstDeliveryOrder.filter { !mayRedeliver.contains($0) }
            default: // an unknown / forged stream id resolves as unknown
                if domain.resolve(id: 999_999_999, sequence: 1) != .unknown { return "step \(step): forged stream not unknown" }
            }
            if domain.backlog != end - UInt64(durableAcked.count) {
                return "step \(step): backlog \(domain.backlog) != \(end) - \(durableAcked.count)"
            }
        }
        // Liveness: one consumer drains everything; every message ends up acknowledged.
        for (id, c) in clients {
            if let pending = c.pendingAck {
                durableAcked.formUnion(pending)
                domain.acknowledged(id: id, offsets: pending)
            }
            domain.close(id: id, nowMs: now)
        }
        let drainer = nextStream
        guard domain.open(id: drainer, nowMs: now) else { return "drain: no slot" }
        var rounds = 0
        while durableAcked.count < Int(end) {
            let batch = domain.leaseNext(id: drainer, max: 10, nowMs: now)
            if batch.isEmpty { return "drain stalled with \(Int(end) - durableAcked.count) unacknowledged" }
            for o in batch where durableAcked.contains(o) { return "drain redelivered acknowledged \(o)" }
            durableAcked.formUnion(batch)
            domain.acknowledged(id: drainer, offsets: batch)
            rounds += 1
            if rounds > 100_000 { return "drain did not terminate" }
        }
        return domain.backlog == 0 ? nil : "backlog \(domain.backlog) after drain"
    }
}
