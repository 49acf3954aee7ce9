import TestSupport
import Foundation
import Synchronization
import XCTest
@testable import LogStore

/// The replica path: a second store fed with the first store's durable events (its observer's
/// `CommittedGroup`s, via `apply`) comes out identical — segment files byte for byte, records,
/// consumer state, idempotency answers, the quarantine log — also when groups are applied twice
/// (a replica restarted mid-stream) and after the replica is reopened.
final class ReplicaApplyTests: XCTestCase {
    var source: TempDirectory!
    var replica: TempDirectory!
    override func setUp() {
        source = TempDirectory()
        replica = TempDirectory()
    }
    override func tearDown() {
        source.cleanup()
        replica.cleanup()
    }

    static func config(observer: (@Sendable (CommittedGroup) -> Void)? = nil) -> LogStoreConfig {
        var c = LogStoreConfig()
        c.segmentBytesMax = 32 << 10
        c.journalBytesMax = 128 << 10
        c.indexIntervalBytes = 1024
        c.payloadBytesMax = 8 << 10
        c.quarantinePayloadBytesMax = 1 << 10
        c.partitionBytesMax = 8 << 20
        c.eventObserver = observer
        return c
    }

    static func open(_ dir: String, observer: (@Sendable (CommittedGroup) -> Void)? = nil) throws -> LogStore {
        try LogStore.open(directory: dir, config: config(observer: observer), completions: InlineCompletionSink(),
                          logger: LogCapture().logger)
    }

    /// A seeded workload: appends (single and batched, with resends of known keys), acks,
    /// leases and releases over several partitions, and quarantine entries. Returns every key.
    static func workload(_ store: LogStore, seed: UInt64) throws -> [String] {
        var rng = SplitMix64(seed: seed)
        var keys: [String] = []
        var ends: [Int: UInt64] = [:]
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for step in 0..<400 {
            let p = 1 + Int(rng.next() % 5)
            switch rng.next() % 10 {
            case 0...5:
                let n = 1 + Int(rng.next() % 4)
                var records: [AppendRecord] = []
                for k in 0..<n {
                    let key = "\(10_000_000 + p)/S\(step)-\(k)"
                    keys.append(key)
                    records.append(record(key, payload(step * 10 + k, count: 200 + Int(rng.next() % 3000)),
                                          ts: now + Int64(step), id: rng.next()))
                }
                if !keys.isEmpty && rng.next() % 4 == 0 {   // a resend among new records
                    let old = keys[Int(rng.next() % UInt64(keys.count))]
                    records.append(record(old, payload(0, count: 10), ts: now + Int64(step), id: rng.next()))
                }
                let outcomes = try store.appendAndWait(partition(p), records).get()
                for case .appended(let offset) in outcomes { ends[p] = max(ends[p] ?? 0, offset + 1) }
            case 6, 7:
                guard let end = ends[p], end > 0 else { continue }
                let offsets = Set((0..<3).map { _ in rng.next() % end }).sorted()
                try store.acknowledgeAndWait(partition(p), offsets).get()
            case 8:
                guard let end = ends[p], end > 0 else { continue }
                store.recordLease(partition(p), stream: rng.next() % 4, sequence: UInt64(step), offsets: [rng.next() % end])
                if rng.next() % 2 == 0 { store.releaseLease(partition(p), stream: rng.next() % 4) }
            default:
                _ = try store.quarantineAndWait(QuarantineEntry(timeMs: now + Int64(step), sender: "\(10_000_000 + p)",
                                                                messageId: "Q\(step)", reasonCode: "schema-invalid",
                                                                detail: "step \(step)", payload: payload(step, count: 300))).get()
            }
        }
        // One last acknowledgement rides a group of its own: every lease before it is durable.
        try store.acknowledgeAndWait(partition(1), []).get()
        return keys
    }

    /// CRC32C of every segment file under `dir`, by path relative to it.
    static func segmentChecksums(_ dir: String) throws -> [String: UInt32] {
        var out: [String: UInt32] = [:]
        let root = URL(fileURLWithPath: dir)
        guard let walker = FileManager.default.enumerator(atPath: dir) else { return out }
        for case let path as String in walker where path.hasSuffix(".log") {
            let bytes = Array(try Data(contentsOf: root.appendingPathComponent(path)))
            out[path] = CRC32C.checksum(bytes)
        }
        return out
    }

    func applyAll(_ groups: [CommittedGroup], to store: LogStore, file: StaticString = #filePath, line: UInt = #line) {
        for (i, g) in groups.enumerated() {
            let w = Waiter<Result<Void, LogStoreError>>()
            store.apply(g) { w.fulfil($0) }
            if case .failure(let e)? = w.wait() { return XCTFail("group \(i): \(e)", file: file, line: line) }
        }
    }

    func assertSameState(_ a: LogStore, _ b: LogStore, keys: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        for p in 1...5 {
            XCTAssertEqual(try b.readAll(partition(p)), try a.readAll(partition(p)), "records of \(p)", file: file, line: line)
            XCTAssertEqual(b.consumerState(partition(p)), a.consumerState(partition(p)), "consumer state of \(p)", file: file, line: line)
        }
        for key in keys {
            XCTAssertEqual(b.lookup(key: Array(key.utf8)), a.lookup(key: Array(key.utf8)), "idempotency of \(key)", file: file, line: line)
        }
        XCTAssertEqual(try b.quarantineEntries(from: 0, maxCount: 10_000), try a.quarantineEntries(from: 0, maxCount: 10_000),
                       file: file, line: line)
    }

    func testReplicaFedWithTheSourceEventsIsIdentical() throws {
        let groups = Mutex<[CommittedGroup]>([])
        let a = try Self.open(source.path) { g in groups.withLock { $0.append(g) } }
        let keys = try Self.workload(a, seed: 0xA11CE)
        let events = groups.withLock { $0 }
        XCTAssertGreaterThan(events.count, 300)

        let b = try Self.open(replica.path)
        applyAll(events, to: b)
        try assertSameState(a, b, keys: keys)
        // Applied again (a replica that restarted and re-reads from an older position): no change.
        applyAll(Array(events.suffix(50)), to: b)
        try assertSameState(a, b, keys: keys)
        a.close()
        b.close()
        let sourceSegments = try Self.segmentChecksums(source.path)
        XCTAssertGreaterThan(sourceSegments.count, 5, "segments rolled")
        XCTAssertEqual(try Self.segmentChecksums(replica.path), sourceSegments, "segment files byte-identical")

        let a2 = try Self.open(source.path)
        let b2 = try Self.open(replica.path)
        try assertSameState(a2, b2, keys: keys)
        a2.close()
        b2.close()
    }

    func testAGapOrAnAckBeyondTheLogIsRefusedAndLeavesNothingBehind() throws {
        let b = try Self.open(replica.path)
        defer { b.close() }
        let r = Record(offset: 5, timestampMs: 1, id: ResourceID(high: 1, low: 2), key: Array("k".utf8), payload: [1])
        let w = Waiter<Result<Void, LogStoreError>>()
        b.apply(CommittedGroup(events: [.appended(partition: partition(1).description, records: [r])])) { w.fulfil($0) }
        guard case .failure(.invalidOffset(_, 5))? = w.wait() else { return XCTFail("a gap must be refused") }
        let r0 = Record(offset: 0, timestampMs: 1, id: ResourceID(high: 1, low: 2), key: Array("k".utf8), payload: [1])
        let w2 = Waiter<Result<Void, LogStoreError>>()
        b.apply(CommittedGroup(events: [.appended(partition: partition(1).description, records: [r0]),
                                        .acknowledged(partition: partition(1).description, offsets: [1])])) { w2.fulfil($0) }
        guard case .failure(.invalidOffset(_, 1))? = w2.wait() else { return XCTFail("an ack beyond the log must be refused") }
        XCTAssertEqual(b.durableEndOffset(partition(1)), 0, "the refused group left nothing")
        let w3 = Waiter<Result<Void, LogStoreError>>()
        b.apply(CommittedGroup(events: [.appended(partition: partition(1).description, records: [r0])])) { w3.fulfil($0) }
        XCTAssertNotNil(try w3.wait()?.get())
        XCTAssertEqual(try b.readAll(partition(1)), [r0])
    }
}

/// The replica process is killed (-9) while it applies the source's groups, twice, and runs
/// again on the same replica directory: recovery plus the skip of already-applied records gives
/// a replica identical to the source (segment files, records, consumer state, idempotency
/// answers, quarantine). `logstore-crash replica` is the child (Tests/Support/LogStoreCrash).
final class ReplicaCrashTests: XCTestCase {
    func testReplicaKilledMidApplyResumesToAnIdenticalStore() throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("logstore-crash").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            return XCTFail("\(executable) missing: build it with `swift build --build-tests`")
        }
        let work = TempDirectory()
        try FileManager.default.createDirectory(atPath: work.path, withIntermediateDirectories: true)
        defer { work.cleanup() }
        let seed = UInt64(ProcessInfo.processInfo.environment["LOGSTORE_REPLICA_SEED"].flatMap(UInt64.init) ?? 4242)
        var generator = SplitMix64(seed: seed)
        let replica = work.path + "/replica"
        var kills = 0
        var lastSource = ""
        for run in 0..<8 {
            lastSource = work.path + "/source\(run)"
            // Kill after a random number of applied groups (the last run goes to the end).
            let killAfter: Int? = kills < 2 ? 20 + Int(generator.next() % 400) : nil
            let child = Process()
            child.executableURL = URL(fileURLWithPath: executable)
            child.arguments = ["replica", lastSource, replica, String(seed)]
            let out = Pipe()
            let errors = Pipe()
            child.standardOutput = out
            child.standardError = errors
            let seen = Mutex<(text: String, killed: Bool)>(("", false))
            out.fileHandleForReading.readabilityHandler = { handle in
                let chunk = String(decoding: handle.availableData, as: UTF8.self)
                let killNow = seen.withLock { s -> Bool in
                    s.text += chunk
                    guard let killAfter, !s.killed else { return false }
                    let applied = s.text.split(separator: "\n").filter { $0.hasPrefix("R ") }.count
                    if applied >= killAfter { s.killed = true }
                    return s.killed
                }
                if killNow { kill(child.processIdentifier, SIGKILL) }
            }
            try child.run()
            child.waitUntilExit()
            out.fileHandleForReading.readabilityHandler = nil
            let (text, killed) = seen.withLock { $0 }
            if killed && child.terminationReason == .uncaughtSignal {
                kills += 1
                continue
            }
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            XCTAssertEqual(child.terminationStatus, 0, "run \(run): \(message)")
            if text.contains("DONE") && killAfter == nil { break }
        }
        XCTAssertEqual(kills, 2, "the replica was killed twice mid-apply (seed \(seed))")

        let source = try ReplicaApplyTests.open(lastSource)
        let copy = try ReplicaApplyTests.open(replica)
        var keys: [String] = []
        for p in ["00000001", "00000002", "00000003", "00000004"].map({ PartitionKey(region: "replica", ispb: $0) }) {
            let records = try source.readAll(p)
            XCTAssertEqual(try copy.readAll(p), records, "records of \(p) (seed \(seed))")
            XCTAssertEqual(copy.consumerState(p), source.consumerState(p), "consumer state of \(p) (seed \(seed))")
            keys += records.map { String(decoding: $0.key, as: UTF8.self) }
        }
        XCTAssertGreaterThan(keys.count, 500)
        for key in keys {
            XCTAssertEqual(copy.lookup(key: Array(key.utf8)), source.lookup(key: Array(key.utf8)), "idempotency of \(key)")
        }
        XCTAssertEqual(try copy.quarantineEntries(from: 0, maxCount: 10_000), try source.quarantineEntries(from: 0, maxCount: 10_000))
        source.close()
        copy.close()
        XCTAssertEqual(try ReplicaApplyTests.segmentChecksums(replica), try ReplicaApplyTests.segmentChecksums(lastSource),
                       "segment files byte-identical (seed \(seed))")
    }
}
