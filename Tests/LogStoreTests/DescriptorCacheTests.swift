import Foundation
import Synchronization
import XCTest
@testable import LogStore

/// The store keeps at most `openSegmentsMax` segment files open, however many partitions are
/// written and read, and loses nothing by closing them: counted on the real descriptor table
/// (/proc/self/fd), before and after a restart, with readers on other threads. While the store
/// works, a descriptor in use by another thread (the checkpointer's fdatasync, a reader) cannot
/// close at that instant: the bound checked is the cap plus those two.
final class DescriptorCacheTests: XCTestCase {
    var dir: TempDirectory!
    override func setUp() { dir = TempDirectory() }
    override func tearDown() { dir.cleanup() }

    /// Descriptors of this process open on segment files of the store under test.
    func openSegmentFiles() -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)") else { return false }
            return target.hasPrefix(dir.path) && target.hasSuffix(".log") && target.contains("/partitions/")
        }.count
    }

    /// The cap plus segments in use by the checkpointer and one reader at that instant.
    let inUseMax = 2

    func open(_ cap: Int) throws -> LogStore {
        var c = LogStoreConfig()
        c.segmentBytesMax = 32 << 10
        c.journalBytesMax = 256 << 10
        c.indexIntervalBytes = 1024
        c.payloadBytesMax = 16 << 10
        c.quarantinePayloadBytesMax = 1 << 10
        c.partitionBytesMax = 1 << 20
        c.openSegmentsMax = cap
        return try LogStore.open(directory: dir.path, config: c, completions: InlineCompletionSink(), logger: LogCapture().logger)
    }

    func testOpenSegmentFilesStayWithinTheCapAcrossManyPartitionsAndRestart() throws {
        let cap = 4
        let partitions = 60
        let expected = try writeAndRead(cap: cap, partitions: partitions)
        XCTAssertEqual(openSegmentFiles(), 0, "the closed store released every segment file")

        // Recovery scans every partition's segments: still within the cap, nothing lost.
        let reopened = try open(cap)
        XCTAssertLessThanOrEqual(openSegmentFiles(), cap + inUseMax)
        XCTAssertTrue(reopened.recoveryReport.cuts.isEmpty, "\(reopened.recoveryReport.cuts)")
        for p in 1...partitions {
            XCTAssertEqual(try reopened.readAll(partition(p)), expected[p], "partition \(p) after restart")
        }
        XCTAssertLessThanOrEqual(openSegmentFiles(), cap + inUseMax)
        reopened.close()
    }

    private func writeAndRead(cap: Int, partitions: Int) throws -> [Int: [Record]] {
        let store = try open(cap)
        defer { store.close() }
        var expected: [Int: [Record]] = [:]
        for round in 0..<6 {
            for p in 1...partitions {
                let r = record("\(p)/M\(round)", payload(p * 100 + round, count: 6000), ts: Int64(round))
                let result = try store.appendAndWait(partition(p), [r]).get()
                guard case .appended(let offset) = result[0] else { throw LogStoreError.io("append: \(result)") }
                expected[p, default: []].append(Record(offset: offset, timestampMs: r.timestampMs, id: r.id, key: r.key, payload: r.payload))
                XCTAssertLessThanOrEqual(openSegmentFiles(), cap + inUseMax, "after partition \(p), round \(round)")
            }
        }
        // Readers on several threads while the writer appends: every record reads back.
        let failures = Mutex<[String]>([])
        let written = expected
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for p in stride(from: 1 + t, through: partitions, by: 4) {
                do {
                    let got = try store.readAll(partition(p))
                    if got != written[p] { failures.withLock { $0.append("partition \(p) differs") } }
                } catch { failures.withLock { $0.append("partition \(p): \(error)") } }
            }
        }
        XCTAssertEqual(failures.withLock { $0 }, [])
        XCTAssertLessThanOrEqual(openSegmentFiles(), cap + inUseMax)
        XCTAssertGreaterThan(store.core.descriptors.evictedCount, 0, "the cap was reached")
        return expected
    }
}
