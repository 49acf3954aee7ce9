import TestSupport
import Foundation
import Logging
import XCTest
@testable import LogStore

/// Seeded simulation on the faulty disk (TigerBeetle-style): a random workload of appends,
/// duplicates, acknowledgements, leases, quarantine entries, retention and reads, on a store in
/// manual (deterministic) mode, with short writes, failing writes and fdatasyncs, crashes at an
/// arbitrary operation followed by power loss, and process restarts. After every recovery:
/// - every append reported durable is read back byte for byte at its offset;
/// - each partition is contiguous and holds, in order, a prefix of what each incarnation
///   submitted — nothing else appears;
/// - every acknowledgement reported durable is in the consumer state;
/// - durable keys are still recognised as duplicates;
/// - the quarantine log keeps every entry reported durable.
/// A failure names its seed; rerun one with LOGSTORE_SIM_SEED=<seed> (LOGSTORE_SIM_VERBOSE=1
/// traces it). LOGSTORE_SIM_RUNS (default 60) and LOGSTORE_SIM_BASE choose the seeds.
final class SimulationTests: XCTestCase {
    func testSeededSimulations() {
        let seeds: [UInt64]
        if let one = ProcessInfo.processInfo.environment["LOGSTORE_SIM_SEED"].flatMap(UInt64.init) {
            seeds = [one]
        } else {
            let environment = ProcessInfo.processInfo.environment
            let count = environment["LOGSTORE_SIM_RUNS"].flatMap(Int.init) ?? 60
            let base = environment["LOGSTORE_SIM_BASE"].flatMap(UInt64.init) ?? 0x5EED_0000
            seeds = (1...UInt64(count)).map { base &+ $0 }
        }
        var failedSeeds: [UInt64] = []
        for seed in seeds {
            let sim = Simulation(seed: seed)
            sim.run()
            if !sim.failures.isEmpty {
                failedSeeds.append(seed)
                for f in sim.failures.prefix(5) { XCTFail("seed \(seed): \(f)") }
            }
        }
        if !failedSeeds.isEmpty { print("LogStore simulation failed seeds: \(failedSeeds) (rerun with LOGSTORE_SIM_SEED=<seed>)") }
    }
}

/// One simulated run; deterministic for a seed.
final class Simulation: @unchecked Sendable {
    struct Submission {
        let key: String
        let record: AppendRecord
        let incarnation: Int
        let sequence: Int
    }

    let seed: UInt64
    var rng: SplitMix64
    let fs: SimulatedFileIO
    var clockMs: Int64 = 1_700_000_000_000
    var failures: [String] = []
    private(set) var stats = (appends: 0, durable: 0, crashes: 0, cuts: 0, storeFailures: 0)

    let partitions = (1...4).map { partition($0) }
    /// Fresh submissions per partition, in submission order.
    var submitted: [String: [Submission]] = [:]
    var byKey: [String: (partition: String, index: Int)] = [:]
    /// Offsets reported durable: partition → offset → key.
    var durable: [String: [UInt64: String]] = [:]
    var acked: [String: Set<UInt64>] = [:]
    /// Acknowledgements whose completion failed: outcome unknown (they may be durable).
    var maybeAcked: [String: Set<UInt64>] = [:]
    var quarantineSubmitted: [String] = []
    var quarantineDurable: [UInt64: String] = [:]
    var incarnation = 0
    var sequence = 0
    var keyCounter = 0

    init(seed: UInt64) {
        self.seed = seed
        rng = SplitMix64(seed: seed)
        fs = SimulatedFileIO(seed: seed ^ 0xF00D)
    }

    let verbose = ProcessInfo.processInfo.environment["LOGSTORE_SIM_VERBOSE"] != nil

    func fail(_ message: String) { failures.append("[incarnation \(incarnation)] \(message)") }

    func trace(_ message: @autoclosure () -> String) { if verbose { print("sim \(seed) #\(incarnation): \(message())") } }

    var config: LogStoreConfig {
        var c = LogStoreConfig()
        c.manualPumping = true
        c.segmentBytesMax = 16 << 10
        c.indexIntervalBytes = 256
        c.journalBytesMax = 64 << 10
        c.payloadBytesMax = 5 << 10
        c.quarantinePayloadBytesMax = 512
        c.groupRecordsMax = 1 + Int(rng.next() % 40)
        c.groupBytesMax = 8 << 10
        c.dedupWindowMs = 3_600_000
        c.retentionAgeMs = 20_000
        c.partitionBytesMax = 1 << 30
        let sim = self
        c.nowMs = { sim.clockMs }
        return c
    }

    func payloadFor(_ key: String, _ n: Int) -> [UInt8] {
        // FNV-1a: stable across processes (String.hashValue is seeded per process).
        let stable = key.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        var g = SplitMix64(seed: stable ^ UInt64(n))
        let count = Int(g.next() % 700)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: g.next()) }
    }

    func run() {
        for _ in 0..<6 {
            guard failures.isEmpty else { return }
            guard let store = open() else { return }
            verify(store)
            guard failures.isEmpty else { return }
            runEpoch(store)
        }
        if let store = open() {
            verify(store)
            store.close()
        }
    }

    /// Opens the store; an injected fault during recovery is retried (as an operator would)
    /// after a process restart, with faults off.
    func open() -> LogStore? {
        incarnation += 1
        fs.faults = SimulatedFileIO.Faults(shortWriteProbability: rng.chance(0.5) ? 0.2 : 0)
        let verbose = self.verbose
        let logger = Logger(label: "sim") { label in
            if verbose {
                var h = StreamLogHandler.standardOutput(label: label)
                h.logLevel = .debug
                return h
            }
            return SwiftLogNoOpLogHandler()
        }
        for attempt in 0..<3 {
            do {
                let store = try LogStore.open(directory: "/data", config: config, io: fs, completions: InlineCompletionSink(), logger: logger)
                stats.cuts += store.recoveryReport.cuts.count
                trace("open: cuts \(store.recoveryReport.cuts.map(\.description)) replayed \(store.recoveryReport.recordsReplayed) scanned \(store.recoveryReport.recordsScanned) quarantine \(store.quarantineOffsets())")
                if !store.recoveryReport.failedPartitions.isEmpty {
                    fail("partitions failed at open: \(store.recoveryReport.failedPartitions)")
                }
                return store
            } catch {
                if attempt == 2 { fail("open failed: \(error)") }
                fs.faults = SimulatedFileIO.Faults()
                fs.processRestart()
            }
        }
        return nil
    }

    func runEpoch(_ store: LogStore) {
        // Faults for this epoch.
        var faults = SimulatedFileIO.Faults()
        faults.shortWriteProbability = rng.chance(0.5) ? 0.3 : 0
        if rng.chance(0.3) { faults.writeErrorProbability = 0.01 }
        if rng.chance(0.3) { faults.syncErrorProbability = 0.01 }
        fs.faults = faults
        let ending = rng.next() % 4
        if ending == 1 { fs.crash(afterOperations: Int(rng.next() % 400)) }

        for _ in 0..<(80 + Int(rng.next() % 150)) {
            clockMs += Int64(rng.next() % 500)
            step(store)
            if fs.crashed { break }
        }
        store.pump()
        store.pumpCheckpoint()
        if verbose, let bytes = fs.contents("/data/CHECKPOINT"), let ck = try? CheckpointFile.decode(bytes) {
            trace("checkpoint: seq \(ck.journalSeq) \(ck.partitions.map { "\($0.name) end \($0.endOffset) seg \($0.segmentBase) pos \($0.position)" })")
        }
        trace("epoch end \(ending) crashed=\(fs.crashed) faults=\(faults) quarantine \(store.quarantineOffsets()) durable \(quarantineDurable.count)")
        switch ending {
        case 0:
            store.close()  // clean close; then a process restart
            fs.processRestart()
        case 1, 3:
            stats.crashes += 1
            fs.crashNow()
            store.close()
            fs.powerLoss()
        default:
            // kill -9: the page cache survives.
            fs.crashNow()
            store.close()
            fs.processRestart()
        }
    }

    func step(_ store: LogStore) {
        let r = rng.next() % 100
        switch r {
        case 0..<40: append(store)
        case 40..<45: resendDurable(store)
        case 45..<55: acknowledge(store)
        case 55..<60:
            let p = partitions[Int(rng.next() % UInt64(partitions.count))]
            if rng.chance(0.7) {
                store.recordLease(p, stream: rng.next() % 6, sequence: rng.next() % 100, offsets: [rng.next() % 10])
            } else {
                store.releaseLease(p, stream: rng.next() % 6)
            }
        case 60..<64: quarantine(store)
        case 64..<90: store.pump()
        case 90..<95: store.pumpCheckpoint()
        case 95..<97:
            let report = store.applyRetention(nowMs: clockMs)
            if report.unacknowledgedRecordsDropped > 0 { fail("retention dropped unacknowledged records below the cap") }
        default: checkReads(store)
        }
    }

    func append(_ store: LogStore) {
        let p = partitions[Int(rng.next() % UInt64(partitions.count))]
        let name = p.description
        var batch: [AppendRecord] = []
        var keys: [String] = []
        for _ in 0..<(1 + Int(rng.next() % 5)) {
            keyCounter += 1
            let key = "\(seed)/\(keyCounter)"
            let rec = AppendRecord(key: Array(key.utf8), id: ResourceID(high: seed, low: UInt64(keyCounter)),
                                   payload: payloadFor(key, keyCounter), timestampMs: clockMs)
            batch.append(rec)
            keys.append(key)
            sequence += 1
            submitted[name, default: []].append(Submission(key: key, record: rec, incarnation: incarnation, sequence: sequence))
            byKey[key] = (name, submitted[name]!.count - 1)
        }
        let dupIndex = batch.count > 1 && rng.chance(0.2) ? Int(rng.next() % UInt64(batch.count)) : nil
        if let d = dupIndex { batch.append(batch[d]) }
        stats.appends += 1
        store.append(p, batch) { [self, batch, keys] result in
            guard case .success(let outcomes) = result else { return }
            guard outcomes.count == batch.count else { return fail("outcome count") }
            for (i, key) in keys.enumerated() {
                guard case .appended(let offset) = outcomes[i] else { return fail("fresh key \(key) reported \(outcomes[i])") }
                if let other = durable[name]?[offset], other != key { fail("offset \(offset) of \(name) reported for \(other) and \(key)") }
                durable[name, default: [:]][offset] = key
                stats.durable += 1
            }
            if let d = dupIndex {
                guard case .appended(let offset) = outcomes[d],
                      outcomes.last == .duplicate(partition: p, offset: offset, id: batch[d].id) else {
                    return fail("in-batch duplicate reported \(String(describing: outcomes.last))")
                }
            }
        }
    }

    func resendDurable(_ store: LogStore) {
        let p = partitions[Int(rng.next() % UInt64(partitions.count))]
        let name = p.description
        guard let entries = durable[name], !entries.isEmpty else { return }
        let offsets = entries.keys.sorted()
        let offset = offsets[Int(rng.next() % UInt64(offsets.count))]
        guard offset >= store.startOffset(p), let key = entries[offset], let at = byKey[key] else { return }
        let original = submitted[at.partition]![at.index].record
        // Resent to any partition: the original location comes back.
        let target = partitions[Int(rng.next() % UInt64(partitions.count))]
        store.append(target, [original]) { [self] result in
            switch result {
            case .success(let outcomes):
                if outcomes != [.duplicate(partition: p, offset: offset, id: original.id)] {
                    fail("resent durable key \(key) got \(outcomes), expected duplicate at \(name)@\(offset)")
                }
            case .failure(let e):
                if case .storeFailed = e { return }
                if case .partitionFailed = e { return }
                fail("resent durable key failed: \(e)")
            }
        }
    }

    func acknowledge(_ store: LogStore) {
        let p = partitions[Int(rng.next() % UInt64(partitions.count))]
        let name = p.description
        guard let entries = durable[name], !entries.isEmpty else { return }
        let candidates = entries.keys.filter { !(acked[name]?.contains($0) ?? false) }.sorted()
        guard !candidates.isEmpty else { return }
        // Mostly in order (like pull streams), sometimes out of order.
        let pick = rng.chance(0.7) ? Array(candidates.prefix(1 + Int(rng.next() % 10)))
                                   : [candidates[Int(rng.next() % UInt64(candidates.count))]]
        store.acknowledge(p, offsets: pick) { [self] result in
            if case .success = result {
                acked[name, default: []].formUnion(pick)
            } else {
                maybeAcked[name, default: []].formUnion(pick)
            }
        }
    }

    func quarantine(_ store: LogStore) {
        let marker = "q\(seed)-\(quarantineSubmitted.count)"
        quarantineSubmitted.append(marker)
        let entry = QuarantineEntry(timeMs: clockMs, sender: "12345678", messageId: marker, reasonCode: "schema",
                                    detail: marker, payload: payloadFor(marker, 1))
        store.quarantine(entry) { [self] result in
            if case .success(let offset) = result { quarantineDurable[offset] = marker }
        }
    }

    /// Reads while running: only durable records, each exactly as submitted.
    func checkReads(_ store: LogStore) {
        let p = partitions[Int(rng.next() % UInt64(partitions.count))]
        let end = store.durableEndOffset(p)
        guard end > 0 else { return }
        let from = rng.next() % end
        do {
            let got = try store.read(p, from: from, maxRecords: 1 + Int(rng.next() % 20), maxBytes: Int(rng.next() % 5000))
            for r in got {
                if r.offset >= end { fail("read returned offset \(r.offset) beyond durable end \(end)") }
                checkRecord(r, in: p.description)
            }
        } catch {
            if fs.crashed { return }
            fail("read failed: \(error)")
        }
    }

    func checkRecord(_ r: Record, in name: String) {
        let key = String(decoding: r.key, as: UTF8.self)
        guard let at = byKey[key], at.partition == name else { return fail("unknown record \(key) at \(name)@\(r.offset)") }
        let s = submitted[name]![at.index].record
        if r.payload != s.payload || r.id != s.id || r.timestampMs != s.timestampMs {
            fail("record \(key) at \(name)@\(r.offset) differs from what was submitted")
        }
        if let k = durable[name]?[r.offset], k != key { fail("offset \(r.offset) of \(name) holds \(key), was reported for \(k)") }
    }

    /// The invariants after a recovery (see the type's comment). Then forgets submissions that
    /// did not survive (they will never appear).
    func verify(_ store: LogStore) {
        for p in partitions {
            let name = p.description
            let records: [Record]
            do { records = try store.readAll(p) } catch { return fail("readAll(\(name)) failed: \(error)") }
            let start = store.startOffset(p)
            let end = store.durableEndOffset(p)
            if UInt64(records.count) != end - start { fail("\(name): \(records.count) records between \(start) and \(end)") }
            for (i, r) in records.enumerated() where r.offset != start + UInt64(i) {
                fail("\(name): offset \(r.offset) at position \(i) from \(start)")
                break
            }
            var lastIndex = -1
            var present = Set<Int>()
            for r in records {
                checkRecord(r, in: name)
                guard let at = byKey[String(decoding: r.key, as: UTF8.self)] else { continue }
                if at.index <= lastIndex { fail("\(name): records out of submission order at offset \(r.offset)") }
                lastIndex = at.index
                present.insert(at.index)
            }
            for (offset, key) in durable[name] ?? [:] {
                if offset < start {
                    let ackedMaybe = (acked[name]?.contains(offset) ?? false) || (maybeAcked[name]?.contains(offset) ?? false)
                    if !ackedMaybe { fail("\(name): durable unacknowledged \(offset) deleted") }
                    continue
                }
                guard offset < end, let r = records.first(where: { $0.offset == offset }) else {
                    fail("\(name): durable offset \(offset) (\(key)) lost; end \(end)")
                    continue
                }
                if String(decoding: r.key, as: UTF8.self) != key { fail("\(name): durable offset \(offset) holds another record") }
            }
            // Per incarnation, what survived is a prefix of what was submitted (no holes),
            // counting records deleted by retention as survived.
            let subs = submitted[name] ?? []
            var byIncarnation: [Int: [Int]] = [:]
            for (i, s) in subs.enumerated() { byIncarnation[s.incarnation, default: []].append(i) }
            let removedByRetention = Set((durable[name] ?? [:]).filter { $0.key < start }.compactMap { byKey[$0.value]?.index })
            for (inc, indices) in byIncarnation {
                var hole = false
                for i in indices {
                    let kept = present.contains(i) || removedByRetention.contains(i)
                    if kept && hole { fail("\(name): incarnation \(inc) kept submission \(i) after a lost one"); break }
                    if !kept { hole = true }
                }
            }
            // Acknowledgements survive.
            let state = store.consumerState(p)
            for o in acked[name] ?? [] where !state.isAcknowledged(o) { fail("\(name): acknowledged offset \(o) forgotten") }
            // Durable keys are still known (within the window, not deleted by retention).
            for (offset, key) in (durable[name] ?? [:]).sorted(by: { $0.key < $1.key }).prefix(20) where offset >= start {
                if store.lookup(key: Array(key.utf8))?.offset != offset { fail("\(name): key \(key) forgotten after restart") }
            }
            // Forget what did not survive.
            submitted[name] = subs.enumerated().map { i, s in
                present.contains(i) || removedByRetention.contains(i) ? s : Submission(key: s.key, record: s.record, incarnation: -1, sequence: s.sequence)
            }
        }
        do {
            let (qStart, qEnd) = store.quarantineOffsets()
            let entries = try store.quarantineEntries(from: qStart, maxCount: Int(max(1, qEnd - qStart)))
            var last = -1
            for e in entries {
                guard let i = quarantineSubmitted.firstIndex(of: e.entry.detail) else { fail("unknown quarantine entry"); continue }
                if i <= last { fail("quarantine out of order") }
                last = i
                if e.entry.payload != Array(payloadFor(e.entry.detail, 1).prefix(512)) { fail("quarantine payload differs") }
            }
            for (offset, marker) in quarantineDurable where offset >= qStart {
                if !entries.contains(where: { $0.offset == offset && $0.entry.detail == marker }) { fail("quarantine entry \(offset) lost") }
            }
        } catch {
            fail("quarantine read failed: \(error)")
        }
    }
}
