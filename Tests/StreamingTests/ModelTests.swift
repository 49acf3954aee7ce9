import Streaming
import XCTest

/// A seeded random walk over the consumer domain (many streams; random append, lease,
/// acknowledge, concurrent duplicate requests, retry, delete, abandon, and crash with the
/// leases restored from a journal whose last group commit may be lost) checked against a
/// reference model that keeps only histories and asserts the promises of DESIGN.md §1.
/// Failures print the seed.
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
        /// Requests that followed the current pointer whose acknowledgement is not durable yet
        /// (more than one: the client sent the same pointer again on another connection).
        var inFlight: [(sequence: UInt32, acking: [UInt64])] = []
    }

    /// A journal record of the lease a stream holds (nil: released).
    typealias LeaseRecord = (sequence: UInt32, offsets: [UInt64])?

    let slots = 6
    let idleMs: UInt64 = 30_000

    func testRandomWalksKeepThePromises() {
        let base = UInt64(ProcessInfo.processInfo.environment["MODEL_SEED"].flatMap { UInt64($0) } ?? 1)
        let runs = ProcessInfo.processInfo.environment["MODEL_RUNS"].flatMap { Int($0) } ?? 400
        for seed in base..<base + UInt64(runs) {
            if let failure = run(seed: seed, steps: 500) {
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
        /// Streams the domain holds that no client will ever use again (restored from journal
        /// records that outlived their stream); they must expire and give their batches back.
        var ghosts = Set<UInt64>()
        var nextStream: UInt64 = 1
        var everDelivered = Set<UInt64>()
        var firstDeliveryOrder: [UInt64] = []
        /// Offsets whose redelivery is explained (abandoned, closed without ack, crashed, or a retry).
        var mayRedeliver = Set<UInt64>()
        var returnedExpectation: [UInt64] = []  // returned offsets, must come first
        var journal: [UInt64: LeaseRecord] = [:]          // durable lease records
        var journalPending: [UInt64: LeaseRecord] = [:]   // riding the next group commit

        func holders(of o: UInt64, except stream: UInt64) -> UInt64? {
            for (id, c) in clients where id != stream {
                if c.batch.contains(o) || c.inFlight.contains(where: { $0.acking.contains(o) }) { return id }
            }
            for g in ghosts where g != stream && (domain.stream(g)?.batch.contains(o) ?? false) { return g }
            return nil
        }

        func deliver(_ stream: UInt64, _ offsets: [UInt64]) -> String? {
            if Set(offsets).count != offsets.count { return "batch \(offsets) holds an offset twice" }
            for o in offsets {
                if durableAcked.contains(o) { return "offset \(o) delivered after its acknowledgement" }
                if o >= end { return "offset \(o) delivered before it was appended" }
                if let other = holders(of: o, except: stream) { return "offset \(o) leased to streams \(other) and \(stream) at once" }
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
            journalPending[stream] = .some((domain.stream(stream)!.sequence, offsets))
            return nil
        }

        func domainLeasable(_ o: UInt64) -> Bool { !durableAcked.contains(o) && !domain.isLeased(o) }

        /// A request that followed `sequence` (acknowledgement durable) gets its answer.
        func answer(_ id: UInt64, after sequence: UInt32, max: Int) -> String? {
            switch domain.leaseNext(id: id, after: sequence, max: max, nowMs: now) {
            case .leased(let batch):
                guard clients[id]!.sequence == sequence else { return "leased after a pointer the client had passed" }
                clients[id]!.sequence = domain.stream(id)!.sequence
                clients[id]!.batch = batch
                return deliver(id, batch)
            case .nothingAvailable:
                guard clients[id]!.sequence == sequence else { return "204 after a pointer the client had passed" }
                if domain.stream(id)!.sequence != sequence { return "empty answer advanced the pointer" }
                clients[id]!.batch = []
            case .answerCurrent:
                // A duplicate request: it must see exactly what the client was already told.
                let st = domain.stream(id)!
                let c = clients[id]!
                if st.sequence != c.sequence || st.batch != c.batch {
                    return "duplicate request answered (\(st.sequence), \(st.batch)); client holds (\(c.sequence), \(c.batch))"
                }
            case .gone:
                return "live stream \(id) gone"
            }
            return nil
        }

        func randomMax() -> Int { Bool.random(using: &rng) ? 1 : 10 }

        for step in 0..<steps {
            let op = Int.random(in: 0..<100, using: &rng)
            switch op {
            case 0..<13: // append
                end += UInt64.random(in: 1...12, using: &rng)
                domain.appended(endOffset: end)
            case 13..<22: // open a stream and deliver its first batch
                let id = nextStream
                nextStream += 1
                if domain.open(id: id, nowMs: now) {
                    clients[id] = Client(sequence: 0, batch: [])
                    if let e = answer(id, after: 0, max: randomMax()) { return "step \(step): \(e)" }
                } else if domain.streams.count < slots {
                    return "step \(step): slot refused with \(domain.streams.count) of \(slots) in use"
                }
            case 22..<44: // follow the current pointer (sometimes again, concurrently)
                guard let (id, c) = clients.randomElement(using: &rng) else { continue }
                guard domain.resolve(id: id, sequence: c.sequence) == .current else {
                    return "step \(step): current pointer of \(id) not current"
                }
                let acking = domain.batchToAcknowledge(id: id)
                if acking != c.batch { return "step \(step): batch to ack \(acking) differs from delivered \(c.batch)" }
                if acking.isEmpty {
                    if let e = answer(id, after: c.sequence, max: randomMax()) { return "step \(step): \(e)" }
                } else {
                    domain.beginRequest(id: id, nowMs: now)
                    clients[id]!.inFlight.append((c.sequence, acking))
                }
            case 44..<58: // an acknowledgement becomes durable; its request gets its answer
                guard let (id, c) = clients.filter({ !$0.value.inFlight.isEmpty }).randomElement(using: &rng) else { continue }
                let request = c.inFlight[0]
                clients[id]!.inFlight.removeFirst()
                mayRedeliver.subtract(request.acking)
                returnedExpectation.removeAll { request.acking.contains($0) }
                let fresh = request.acking.filter { !durableAcked.contains($0) }.count
                durableAcked.formUnion(request.acking)
                if domain.acknowledged(id: id, offsets: request.acking) != fresh {
                    return "step \(step): acknowledged count differs from \(fresh)"
                }
                domain.endRequest(id: id, nowMs: now)
                if let e = answer(id, after: request.sequence, max: randomMax()) { return "step \(step): \(e)" }
            case 58..<65: // retry the previous pointer: the same batch again, nothing acked
                guard let (id, c) = clients.randomElement(using: &rng), c.inFlight.isEmpty, c.sequence > 0 else { continue }
                let r = domain.resolve(id: id, sequence: c.sequence - 1)
                if r != .previous { return "step \(step): previous pointer resolved \(r)" }
                if domain.stream(id)!.batch != c.batch {
                    return "step \(step): retry returned \(domain.stream(id)!.batch), delivered \(c.batch)"
                }
                if c.sequence > 1 && domain.resolve(id: id, sequence: c.sequence - 2) != .stale {
                    return "step \(step): an older pointer is not stale"
                }
                domain.touch(id: id, nowMs: now)
            case 65..<70: // DELETE with the current pointer: ack durably, close
                guard let (id, c) = clients.randomElement(using: &rng), c.inFlight.isEmpty else { continue }
                durableAcked.formUnion(c.batch)
                mayRedeliver.subtract(c.batch)
                returnedExpectation.removeAll { c.batch.contains($0) }
                domain.acknowledged(id: id, offsets: c.batch)
                if domain.close(id: id, nowMs: now) { return "step \(step): an acknowledged batch was returned" }
                clients[id] = nil
                journalPending[id] = .some(nil)
                if domain.resolve(id: id, sequence: c.sequence) != .closed { return "step \(step): closed stream not 410" }
            case 70..<74: // DELETE with the previous pointer: nothing acked, batch returns
                guard let (id, c) = clients.randomElement(using: &rng), c.inFlight.isEmpty else { continue }
                domain.close(id: id, nowMs: now)
                clients[id] = nil
                journalPending[id] = .some(nil)
                mayRedeliver.formUnion(c.batch)
                returnedExpectation.append(contentsOf: c.batch)
            case 74..<84: // time passes; abandoned streams expire
                now += UInt64.random(in: 1_000...20_000, using: &rng)
                if Bool.random(using: &rng), let (id, _) = clients.randomElement(using: &rng) {
                    domain.touch(id: id, nowMs: now)  // this one is active
                }
                let ghostBatches = Dictionary(uniqueKeysWithValues: ghosts.map { ($0, domain.stream($0)?.batch ?? []) })
                let expired = domain.expire(nowMs: now, idleMs: idleMs)
                for id in expired {
                    journalPending[id] = .some(nil)
                    if ghosts.remove(id) != nil {
                        mayRedeliver.formUnion(ghostBatches[id]!)
                        returnedExpectation.append(contentsOf: ghostBatches[id]!)
                        continue
                    }
                    guard let c = clients.removeValue(forKey: id) else { return "step \(step): unknown stream expired" }
                    if !c.inFlight.isEmpty { return "step \(step): a stream with a request in progress expired" }
                    mayRedeliver.formUnion(c.batch)
                    returnedExpectation.append(contentsOf: c.batch)
                }
                for id in Set(clients.keys).union(ghosts) {
                    if let s = domain.stream(id), !s.isBusy, now >= s.lastActivityMs + idleMs {
                        return "step \(step): stream \(id) idle past its lease but not expired"
                    }
                }
            case 84..<89: // a group commit makes the journal's pending records durable
                journal.merge(journalPending) { _, new in new }
                journalPending = [:]
            case 89..<92: // crash: durable acks and the durable journal survive
                // Acknowledgements in flight may or may not have reached the disk.
                for (_, c) in clients {
                    for r in c.inFlight where Bool.random(using: &rng) { durableAcked.formUnion(r.acking) }
                }
                // The last group commit may have made it too (all or nothing).
                if Bool.random(using: &rng) { journal.merge(journalPending) { _, new in new } }
                journalPending = [:]
                journal = journal.filter { $0.value != nil }
                let floor = (0...end).first { !durableAcked.contains($0) } ?? end
                domain = PartitionConsumers(ispb: "12345678", slotsMax: slots, ackFloor: floor,
                                            ackedAbove: Set(durableAcked.filter { $0 >= floor }), endOffset: end)
                // As the pull service does: every durable lease, by stream id.
                for id in journal.keys.sorted() {
                    let record = journal[id]!!
                    _ = domain.restore(id: id, sequence: record.sequence, batch: record.offsets, nowMs: now)
                }
                for (_, c) in clients {
                    mayRedeliver.formUnion(c.batch)
                    for r in c.inFlight { mayRedeliver.formUnion(r.acking) }
                }
                for g in ghosts { mayRedeliver.formUnion(journal[g]??.offsets ?? []) }
                mayRedeliver.subtract(durableAcked)
                // A client continues when its stream came back at its pointer; the others get
                // 404 and go away, leaving their restored stream (if any) to expire.
                var survivors: [UInt64: Client] = [:]
                for (id, c) in clients {
                    guard let st = domain.stream(id), st.sequence == c.sequence else { continue }
                    if !st.batch.allSatisfy({ o in c.batch.contains(o) || c.inFlight.contains { $0.acking.contains(o) } }) {
                        return "step \(step): restored batch \(st.batch) of \(id) is not what it was given \(c.batch)"
                    }
                    if domain.resolve(id: id, sequence: c.sequence) != .current { return "step \(step): restored pointer not current" }
                    survivors[id] = Client(sequence: st.sequence, batch: st.batch)
                }
                clients = survivors
                ghosts = Set(domain.streams.keys).subtracting(clients.keys)
                returnedExpectation = []
                firstDeliveryOrder = firstDeliveryOrder.filter { !mayRedeliver.contains($0) }
            default: // an unknown / forged stream id resolves as unknown
                if domain.resolve(id: 999_999_999, sequence: 1) != .unknown { return "step \(step): forged stream not unknown" }
            }
            if domain.backlog != end - UInt64(durableAcked.count) {
                return "step \(step): backlog \(domain.backlog) != \(end) - \(durableAcked.count)"
            }
            if domain.streams.count > slots { return "step \(step): \(domain.streams.count) streams over \(slots) slots" }
        }
        // Liveness: one consumer drains everything; every message ends up acknowledged.
        for (id, c) in clients {
            for r in c.inFlight {
                durableAcked.formUnion(r.acking)
                domain.acknowledged(id: id, offsets: r.acking)
            }
        }
        for id in Array(domain.streams.keys) { domain.close(id: id, nowMs: now) }
        let drainer = nextStream
        guard domain.open(id: drainer, nowMs: now) else { return "drain: no slot" }
        var rounds = 0
        var sequence: UInt32 = 0
        while durableAcked.count < Int(end) {
            guard case .leased(let batch) = domain.leaseNext(id: drainer, after: sequence, max: 10, nowMs: now) else {
                return "drain stalled with \(Int(end) - durableAcked.count) unacknowledged"
            }
            sequence += 1
            for o in batch where durableAcked.contains(o) { return "drain redelivered acknowledged \(o)" }
            durableAcked.formUnion(batch)
            domain.acknowledged(id: drainer, offsets: batch)
            rounds += 1
            if rounds > 100_000 { return "drain did not terminate" }
        }
        return domain.backlog == 0 && !domain.hasAvailable ? nil : "backlog \(domain.backlog) after drain"
    }
}
