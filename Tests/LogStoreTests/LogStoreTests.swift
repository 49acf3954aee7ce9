import Foundation
import Synchronization
import Logging
import MetricsTestKit
import XCTest
@testable import LogStore

/// The store on the real disk (PosixFileIO, temp directories), with its threads.
final class LogStoreTests: XCTestCase {
    var dir: TempDirectory!
    var capture: LogCapture!
    var metrics: TestMetrics!

    override func setUp() {
        dir = TempDirectory()
        capture = LogCapture()
        metrics = TestMetrics()
    }

    override func tearDown() { dir.cleanup() }

    func config(_ tweak: (inout LogStoreConfig) -> Void = { _ in }) -> LogStoreConfig {
        var c = LogStoreConfig()
        c.segmentBytesMax = 64 << 10
        c.journalBytesMax = 256 << 10
        c.indexIntervalBytes = 1024
        c.payloadBytesMax = 16 << 10
        c.quarantinePayloadBytesMax = 1 << 10
        c.partitionBytesMax = 64 << 10
        c.metricsFactory = metrics
        tweak(&c)
        return c
    }

    func open(_ c: LogStoreConfig? = nil) throws -> LogStore {
        try LogStore.open(directory: dir.path, config: c ?? config(), completions: InlineCompletionSink(), logger: capture.logger)
    }

    func testAppendThenReadBackAcrossSegmentsAndRestart() throws {
        let store = try open()
        var expected: [Record] = []
        for i in 0..<300 {
            let r = record("12345678/M\(i)", payload(i, count: 100 + i * 7), ts: Int64(i))
            let result = try store.appendAndWait(partition(1), [r]).get()
            XCTAssertEqual(result, [.appended(offset: UInt64(i))])
            expected.append(Record(offset: UInt64(i), timestampMs: r.timestampMs, id: r.id, key: r.key, payload: r.payload))
        }
        XCTAssertEqual(store.durableEndOffset(partition(1)), 300)
        XCTAssertEqual(try store.readAll(partition(1)), expected)
        // Reads starting in the middle, bounded by count and bytes.
        let middle = try store.read(partition(1), from: 123, maxRecords: 5, maxBytes: 1 << 20)
        XCTAssertEqual(middle, Array(expected[123..<128]))
        let one = try store.read(partition(1), from: 200, maxRecords: 50, maxBytes: 1)
        XCTAssertEqual(one, [expected[200]], "at least one record even over maxBytes")
        XCTAssertEqual(try store.read(partition(1), from: 300, maxRecords: 5, maxBytes: 1000), [])
        store.close()

        let segments = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/partitions/test:00000001")
            .filter { $0.hasSuffix(".log") }.sorted()
        XCTAssertGreaterThan(segments.count, 3, "segments roll by size")
        XCTAssertEqual(segments.first, "00000000000000000000.log")
        XCTAssertTrue(segments.allSatisfy { $0.count == 24 })

        let reopened = try open()
        XCTAssertTrue(reopened.recoveryReport.cuts.isEmpty)
        XCTAssertEqual(reopened.durableEndOffset(partition(1)), 300)
        XCTAssertEqual(try reopened.readAll(partition(1)), expected)
        XCTAssertEqual(reopened.partitions(), [partition(1)])
        reopened.close()
    }

    /// The tail cache serves exactly what the disk holds: the same reads with the cache on, off
    /// and after a restart (cache empty) agree, including ranges straddling the cache's start.
    func testTailCacheAgreesWithTheDisk() throws {
        let cached = try open(config { $0.tailCacheBytesMax = 8 << 10 })
        var expected: [Record] = []
        for i in 0..<120 {
            let r = record("12345678/T\(i)", payload(i, count: 200 + i), ts: Int64(i))
            _ = try cached.appendAndWait(partition(1), [r]).get()
            expected.append(Record(offset: UInt64(i), timestampMs: r.timestampMs, id: r.id, key: r.key, payload: r.payload))
        }
        let probes: [(UInt64, Int, Int)] = [(119, 5, 1 << 20), (100, 10, 1 << 20), (90, 30, 1 << 20), (0, 3, 1 << 20),
                                              (110, 10, 600), (60, 100, 1 << 20), (120, 5, 1 << 20)]
        func reads(_ store: LogStore) throws -> [[Record]] {
            try probes.map { try store.read(partition(1), from: $0.0, maxRecords: $0.1, maxBytes: $0.2) }
        }
        let fromCache = try reads(cached)
        cached.close()
        let uncached = try open(config { $0.tailCacheBytesMax = 0 })
        XCTAssertEqual(try reads(uncached), fromCache)
        XCTAssertEqual(try uncached.readAll(partition(1)), expected)
        uncached.close()
        XCTAssertEqual(fromCache[0].map(\.offset), [119])
        XCTAssertEqual(fromCache[1].map(\.offset), Array(100..<110))
        XCTAssertEqual(fromCache[5].count, 60)
        XCTAssertEqual(fromCache[6], [])
    }

    func testIdempotencyWithinBatchPendingDurableAndAfterRestart() throws {
        let store = try open()
        let a = record("11111111/A", [1], id: 100)
        let b = record("11111111/B", [2], id: 200)
        // In one batch: the second A is a duplicate of the first.
        XCTAssertEqual(try store.appendAndWait(partition(1), [a, b, a]).get(),
                       [.appended(offset: 0), .appended(offset: 1), .duplicate(partition: partition(1), offset: 0, id: a.id)])
        // Durable: sent again, even to another partition, nothing is stored.
        XCTAssertEqual(try store.appendAndWait(partition(2), [b]).get(), [.duplicate(partition: partition(1), offset: 1, id: b.id)])
        XCTAssertEqual(store.durableEndOffset(partition(2)), 0)
        // Pending: two appends of the same new key back to back, before any commit completes.
        let c = record("11111111/C", [3], id: 300)
        let w1 = Waiter<Result<[AppendOutcome], LogStoreError>>()
        let w2 = Waiter<Result<[AppendOutcome], LogStoreError>>()
        store.append(partition(1), [c]) { w1.fulfil($0) }
        store.append(partition(1), [c]) { w2.fulfil($0) }
        XCTAssertEqual(try w1.wait()?.get(), [.appended(offset: 2)])
        XCTAssertEqual(try w2.wait()?.get(), [.duplicate(partition: partition(1), offset: 2, id: c.id)])
        XCTAssertEqual(store.lookup(key: c.key), IdempotencyEntry(partition: partition(1), offset: 2, id: c.id, timestampMs: c.timestampMs))
        XCTAssertNil(store.lookup(key: Array("11111111/Z".utf8)))
        XCTAssertEqual(metrics.counterTotal(label: "logstore_duplicate_records_total"), 3)
        store.close()

        // After a restart (keys from the checkpoint's key file) ...
        let reopened = try open()
        XCTAssertEqual(try reopened.appendAndWait(partition(1), [a, c]).get(),
                       [.duplicate(partition: partition(1), offset: 0, id: a.id), .duplicate(partition: partition(1), offset: 2, id: c.id)])
        XCTAssertEqual(reopened.durableEndOffset(partition(1)), 3)
        reopened.close()
    }

    func testIdempotencyKeysOlderThanTheDedupWindowAreForgotten() throws {
        let clock = ManualClock(1_000_000)
        let store = try open(config { $0.dedupWindowMs = 60_000; $0.nowMs = clock.now })
        let old = record("22222222/OLD", [1], ts: 1_000_000)
        XCTAssertEqual(try store.appendAndWait(partition(1), [old]).get(), [.appended(offset: 0)])
        clock.set(1_000_000 + 61_000)
        // The next commit group expires the key; then the same key is stored again.
        XCTAssertEqual(try store.appendAndWait(partition(1), [record("22222222/NEW", [2], ts: 1_061_000)]).get(), [.appended(offset: 1)])
        XCTAssertNil(store.lookup(key: old.key))
        XCTAssertEqual(try store.appendAndWait(partition(1), [old]).get(), [.appended(offset: 2)])
        store.close()
    }

    func testAppendsWaitForTheIdempotencyIndexAfterOpenWhileReadsAndAcksAreServed() throws {
        let store = try open()
        let a = record("12121212/A", [1], id: 1)
        XCTAssertEqual(try store.appendAndWait(partition(9), [a]).get(), [.appended(offset: 0)])
        store.close()

        let io = GatedFileIO()
        let reopened = try LogStore.open(directory: dir.path, config: config(), io: io, completions: InlineCompletionSink(),
                                         logger: capture.logger)
        XCTAssertFalse(reopened.idempotencyIndexReady)
        // Served while the index loads:
        XCTAssertEqual(try reopened.read(partition(9), from: 0, maxRecords: 10, maxBytes: 1 << 20).map(\.key), [a.key])
        XCTAssertNoThrow(try reopened.acknowledgeAndWait(partition(9), [0]).get())
        // Held until it is ready, then deduplicated against the loaded keys, in order.
        let held = Waiter<Result<[AppendOutcome], LogStoreError>>()
        let after = Waiter<Result<[AppendOutcome], LogStoreError>>()
        let c = record("12121212/C", [3], id: 3)
        reopened.append(partition(9), [a, c]) { held.fulfil($0) }
        reopened.append(partition(9), [c]) { after.fulfil($0) }
        XCTAssertNil(held.wait(seconds: 0.3, expectingTimeout: true), "append answered before the index was ready")
        io.release()
        XCTAssertEqual(try held.wait()?.get(), [.duplicate(partition: partition(9), offset: 0, id: a.id), .appended(offset: 1)])
        XCTAssertEqual(try after.wait()?.get(), [.duplicate(partition: partition(9), offset: 1, id: c.id)])
        XCTAssertTrue(reopened.idempotencyIndexReady)
        XCTAssertEqual(reopened.recoveryReport.keysLoaded, 1)
        reopened.close()
    }

    func testAckJournalAndLeasesSurviveRestart() throws {
        let store = try open()
        _ = try store.appendAndWait(partition(3), (0..<10).map { record("33333333/\($0)", [UInt8($0)]) }).get()
        XCTAssertNoThrow(try store.acknowledgeAndWait(partition(3), [0, 1, 2, 5, 7]).get())
        store.recordLease(partition(3), stream: 77, sequence: 4, offsets: [3, 4])
        store.recordLease(partition(3), stream: 78, sequence: 1, offsets: [6])
        store.releaseLease(partition(3), stream: 78)
        // Leases ride the next commit group: an acknowledgement queued after them is a barrier.
        XCTAssertNoThrow(try store.acknowledgeAndWait(partition(3), [0]).get())
        // Acks beyond the durable end are refused.
        guard case .failure(.invalidOffset) = store.acknowledgeAndWait(partition(3), [10]) else { return XCTFail("accepted") }
        let expected = ConsumerState(ackFloor: 3, ackedAboveFloor: [5, 7], leases: [Lease(stream: 77, sequence: 4, offsets: [3, 4])])
        XCTAssertEqual(store.consumerState(partition(3)), expected)
        store.close()

        let reopened = try open()
        XCTAssertEqual(reopened.consumerState(partition(3)), expected)
        XCTAssertNoThrow(try reopened.acknowledgeAndWait(partition(3), [3, 4]).get())
        XCTAssertEqual(reopened.consumerState(partition(3)).ackFloor, 6)
        reopened.close()
    }

    func testQuarantineLogRoundTripAndPayloadCap() throws {
        let store = try open()
        let entry = QuarantineEntry(timeMs: 42, sender: "12345678", messageId: "M9", reasonCode: "schema-invalid",
                                    detail: "pacs.008: missing GrpHdr", payload: payload(9, count: 5000))
        XCTAssertEqual(try store.quarantineAndWait(entry).get(), 0)
        XCTAssertEqual(try store.quarantineAndWait(QuarantineEntry(timeMs: 43, sender: "1", messageId: nil, reasonCode: "r",
                                                                   detail: "", payload: [])).get(), 1)
        store.close()
        let reopened = try open()
        let entries = try reopened.quarantineEntries(from: 0, maxCount: 10)
        XCTAssertEqual(entries.count, 2)
        XCTAssertEqual(entries[0].entry.payload, Array(entry.payload.prefix(1 << 10)))
        XCTAssertEqual(entries[0].entry.payloadBytesOriginal, 5000)
        XCTAssertEqual(entries[0].entry.detail, entry.detail)
        XCTAssertNil(entries[1].entry.messageId)
        XCTAssertEqual(reopened.quarantineOffsets().end, 2)
        XCTAssertEqual(reopened.partitions(), [], "the quarantine log is not a partition")
        XCTAssertEqual(metrics.counterTotal(label: "logstore_quarantined_total"), 2)
        reopened.close()
    }

    func testTornTailIsCutAndReportedExactly() throws {
        let store = try open()
        let records = (0..<20).map { record("44444444/\($0)", payload($0, count: 300)) }
        _ = try store.appendAndWait(partition(4), records).get()
        store.close()
        // Simulate a crash mid-write after the last checkpoint: a frame's first half appended to
        // the active segment (as if the journal group was lost).
        let segment = dir.path + "/partitions/test:00000004/00000000000000000000.log"
        let before = try FileManager.default.attributesOfItem(atPath: segment)[.size] as! Int
        var torn: [UInt8] = []
        RecordFrame.append(to: &torn, offset: 20, timestampMs: 1, id: ResourceID(high: 1, low: 1), key: [1], payload: payload(1, count: 500))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: segment))
        handle.seekToEndOfFile()
        handle.write(Data(torn.prefix(200)))
        try handle.close()

        let reopened = try open()
        XCTAssertEqual(reopened.recoveryReport.cuts, [RecoveryCut(log: "test:00000004", file: segment, position: Int64(before), bytes: 200,
                                                                  firstOffset: 20, reason: "torn frame")])
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: segment)[.size] as? Int, before)
        XCTAssertEqual(reopened.durableEndOffset(partition(4)), 20)
        XCTAssertEqual(try reopened.readAll(partition(4)).map(\.payload), records.map(\.payload))
        XCTAssertEqual(metrics.counterTotal(label: "logstore_recovery_truncations_total"), 1)
        XCTAssertEqual(metrics.counterTotal(label: "logstore_recovery_truncated_bytes_total"), 200)
        XCTAssertTrue(capture.messages(atLeast: .error).contains { $0.message.contains("recovery cut") && $0.metadata["bytes"] == "200" })
        // Appends continue at the cut.
        XCTAssertEqual(try reopened.appendAndWait(partition(4), [record("44444444/x", [9])]).get(), [.appended(offset: 20)])
        reopened.close()
    }

    func testBitRotInASealedSegmentIsDetectedOnReadAndNeverServed() throws {
        let store = try open()
        for i in 0..<400 { _ = try store.appendAndWait(partition(5), [record("55555555/\(i)", payload(i, count: 400))]).get() }
        store.close()
        let segment = dir.path + "/partitions/test:00000005/00000000000000000000.log"
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: segment)))
        bytes[5000] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: segment))

        let reopened = try open()
        XCTAssertTrue(reopened.recoveryReport.cuts.isEmpty, "older segments are not scanned at open")
        var caught: LogStoreError?
        do { _ = try reopened.readAll(partition(5)) } catch { caught = error as? LogStoreError }
        guard case .corruption(let p, let offset, _)? = caught else { return XCTFail("corruption not reported: \(String(describing: caught))") }
        XCTAssertEqual(p, "test:00000005")
        // Records before the damaged one are served; the damaged one is not.
        let good = try reopened.read(partition(5), from: 0, maxRecords: Int(offset), maxBytes: 1 << 30)
        XCTAssertEqual(good.count, Int(offset))
        XCTAssertThrowsError(try reopened.read(partition(5), from: offset, maxRecords: 1, maxBytes: 0))
        XCTAssertGreaterThan(metrics.counterTotal(label: "logstore_corrupt_reads_total"), 0)
        reopened.close()
    }

    func testMissingIndexIsRebuiltAndStaleIndexIsIgnored() throws {
        let store = try open()
        let records = (0..<500).map { record("66666666/\($0)", payload($0, count: 333)) }
        for chunk in stride(from: 0, to: 500, by: 50) { _ = try store.appendAndWait(partition(6), Array(records[chunk..<(chunk + 50)])).get() }
        store.close()
        let pdir = dir.path + "/partitions/test:00000006"
        let indexes = try FileManager.default.contentsOfDirectory(atPath: pdir).filter { $0.hasSuffix(".idx") }.sorted()
        XCTAssertFalse(indexes.isEmpty)
        try FileManager.default.removeItem(atPath: pdir + "/" + indexes[0])
        // A wrong (but plausible) index for the second segment: positions shifted by 5 bytes.
        let second = pdir + "/" + indexes[1]
        var idx = try Array(Data(contentsOf: URL(fileURLWithPath: second)))
        for e in stride(from: 8, to: idx.count, by: 8) { idx[e + 4] &+= 5 }
        try Data(idx).write(to: URL(fileURLWithPath: second))

        let reopened = try open()
        for start in [0, 1, 77, 150, 151, 300, 499] {
            let got = try reopened.read(partition(6), from: UInt64(start), maxRecords: 3, maxBytes: 1 << 20)
            XCTAssertEqual(got.map(\.offset), Array(UInt64(start)..<UInt64(min(start + 3, 500))), "from \(start)")
            XCTAssertEqual(got.first?.payload, records[start].payload)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: pdir + "/" + indexes[0]), "rebuilt index written back")
        XCTAssertEqual(try reopened.readAll(partition(6)).count, 500)
        reopened.close()
    }

    func testRetentionDeletesOnlyAcknowledgedOldSegments() throws {
        let clock = ManualClock(10_000)
        let c = config { $0.retentionAgeMs = 1_000; $0.partitionBytesMax = 1 << 30; $0.nowMs = clock.now }
        let store = try open(c)
        for i in 0..<600 { _ = try store.appendAndWait(partition(7), [record("77777777/\(i)", payload(i, count: 300), ts: 10_000)]).get() }
        store.close()  // checkpoint: sealed segments become deletable
        let reopened = try open(c)
        // Nothing acknowledged: nothing deleted, however old.
        XCTAssertEqual(reopened.applyRetention(nowMs: 1_000_000).segmentsDeleted, 0)
        XCTAssertEqual(reopened.startOffset(partition(7)), 0)
        // Acknowledge the first 250: only segments entirely below the floor go.
        XCTAssertNoThrow(try reopened.acknowledgeAndWait(partition(7), Array(0..<250)).get())
        XCTAssertEqual(reopened.applyRetention(nowMs: 10_500).segmentsDeleted, 0, "not old enough")
        let report = reopened.applyRetention(nowMs: 1_000_000)
        XCTAssertGreaterThan(report.segmentsDeleted, 0)
        XCTAssertEqual(report.unacknowledgedRecordsDropped, 0)
        let start = reopened.startOffset(partition(7))
        XCTAssertGreaterThan(start, 0)
        XCTAssertLessThanOrEqual(start, 250)
        XCTAssertEqual(try reopened.readAll(partition(7)).first?.offset, start)
        XCTAssertEqual(try reopened.read(partition(7), from: 0, maxRecords: 1, maxBytes: 0).first?.offset, start, "reads clamp to the start")
        reopened.close()
    }

    func testSizeCapDropsUnacknowledgedDataLoudly() throws {
        let c = config { $0.partitionBytesMax = 64 << 10; $0.segmentBytesMax = 16 << 10; $0.payloadBytesMax = 8 << 10 }
        let store = try open(c)
        for i in 0..<400 { _ = try store.appendAndWait(partition(8), [record("88888888/\(i)", payload(i, count: 400))]).get() }
        store.close()
        let reopened = try open(c)
        let report = reopened.applyRetention(nowMs: 0)
        XCTAssertGreaterThan(report.segmentsDeleted, 0)
        XCTAssertEqual(report.unacknowledgedRecordsDropped, reopened.startOffset(partition(8)))
        XCTAssertEqual(metrics.counterTotal(label: "logstore_retention_dropped_unacked_records_total"), Int64(report.unacknowledgedRecordsDropped))
        XCTAssertTrue(capture.messages(atLeast: .critical).contains { $0.message.contains("UNACKNOWLEDGED") })
        let bytes = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/partitions/test:00000008")
            .filter { $0.hasSuffix(".log") }
            .reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: dir.path + "/partitions/test:00000008/" + $1)[.size] as? Int) ?? 0) }
        XCTAssertLessThanOrEqual(bytes, 64 << 10)
        reopened.close()
    }

    func testASecondStoreOnTheSameDirectoryIsRefused() throws {
        let store = try open()
        XCTAssertThrowsError(try open()) { error in
            guard case .io(let why)? = error as? LogStoreError else { return XCTFail("\(error)") }
            XCTAssertTrue(why.contains("in use by another process"))
        }
        store.close()
        let again = try open()
        again.close()
    }

    func testInvalidInputsAndBackPressure() throws {
        let store = try open(config { $0.queueOpsMax = 1; $0.groupWaitMicros = 200_000 })
        guard case .failure(.invalidPartitionKey) = store.appendAndWait(PartitionKey(region: "x", ispb: "123"), [record("k", [])]) else {
            return XCTFail("bad key accepted")
        }
        guard case .failure(.invalidRecord) = store.appendAndWait(partition(1), [record("", [])]) else { return XCTFail("empty key accepted") }
        guard case .failure(.invalidRecord) = store.appendAndWait(partition(1), [record("k", payload(1, count: 17 << 10))]) else {
            return XCTFail("oversized payload accepted")
        }
        // The writer holds the first group for 200 ms: the queue (1 op) is full meanwhile.
        let results = (0..<5).map { i -> Waiter<Result<[AppendOutcome], LogStoreError>> in
            let w = Waiter<Result<[AppendOutcome], LogStoreError>>()
            store.append(partition(1), [record("99999999/\(i)", [1])]) { w.fulfil($0) }
            return w
        }
        let outcomes = results.compactMap { $0.wait() }
        XCTAssertTrue(outcomes.contains { if case .failure(.overloaded) = $0 { true } else { false } })
        XCTAssertTrue(outcomes.contains { if case .success = $0 { true } else { false } })
        XCTAssertGreaterThan(metrics.counterTotal(label: "logstore_append_rejected_total", dimensions: [("reason", "overloaded")]), 0)
        store.close()
        guard case .failure(.closed) = store.appendAndWait(partition(1), [record("z", [])]) else { return XCTFail("append after close") }
    }

    func testManyPartitionsShareOneJournalFsyncPerGroup() throws {
        let store = try open(config { $0.groupWaitMicros = 20_000 })
        let waiters = (0..<50).map { i -> Waiter<Result<[AppendOutcome], LogStoreError>> in
            let w = Waiter<Result<[AppendOutcome], LogStoreError>>()
            store.append(partition(i % 10 + 1), [record("10000000/\(i)", payload(i, count: 100))]) { w.fulfil($0) }
            return w
        }
        for w in waiters { XCTAssertNoThrow(try w.wait()?.get()) }
        let fsyncs = try metrics.expectTimer("logstore_fsync_seconds", [("file", "journal")]).values.count
        XCTAssertLessThan(fsyncs, 50, "appends to different partitions share commit groups")
        let groups = try metrics.expectRecorder("logstore_commit_group_records").values
        XCTAssertEqual(groups.reduce(0, +), 50)
        XCTAssertEqual(metrics.counterTotal(label: "logstore_appended_records_total"), 50)
        for i in 1...10 { XCTAssertEqual(store.durableEndOffset(partition(i)), 5) }
        store.close()
    }

    func testJournalRollsAndCheckpointsWhileAppending() throws {
        let store = try open(config { $0.journalBytesMax = 64 << 10 })
        var expected: [[UInt8]] = []
        for i in 0..<200 {
            let p = payload(i, count: 1000)
            expected.append(p)
            _ = try store.appendAndWait(partition(2), [record("20000000/\(i)", p)]).get()
        }
        // Let the background checkpoints finish, then crash-free reopen without close: simulate
        // by opening a second store on a copy of the directory.
        let copy = TempDirectory()
        defer { copy.cleanup() }
        Thread.sleep(forTimeInterval: 0.2)
        try FileManager.default.copyItem(atPath: dir.path, toPath: copy.path)
        store.close()
        XCTAssertGreaterThan(metrics.counterTotal(label: "logstore_checkpoints_total"), 2)
        let journals = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/journal")
        XCTAssertLessThanOrEqual(journals.filter { $0.hasSuffix(".wal") }.count, 2, "retired journals are recycled or deleted")
        let reopened = try LogStore.open(directory: copy.path, config: config(), completions: InlineCompletionSink(), logger: capture.logger)
        XCTAssertEqual(try reopened.readAll(partition(2)).map(\.payload), expected)
        reopened.close()
    }
}

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let value: Mutex<Int64>
    init(_ start: Int64) { value = Mutex(start) }
    func set(_ v: Int64) { value.withLock { $0 = v } }
    var now: @Sendable () -> Int64 { { self.value.withLock { $0 } } }
}
