import Streaming
import XCTest

/// Deterministic cases of `PartitionConsumers` that the pull path's end-to-end tests found or
/// that the model reaches only rarely.
final class ConsumerTests: XCTestCase {
    func consumers(end: UInt64, floor: UInt64 = 0, acked: Set<UInt64> = []) -> PartitionConsumers {
        PartitionConsumers(ispb: "12345678", slotsMax: 6, ackFloor: floor, ackedAbove: acked, endOffset: end)
    }

    /// A lease restored after a restart sits above the scan position; when its stream expires
    /// the offsets return to the front. The next batch must hold each of them once (the scan
    /// meets them again in the same lease).
    func testReturnedOffsetsAboveTheScanAreLeasedOnce() {
        let c = consumers(end: 20)
        XCTAssertTrue(c.restore(id: 7, sequence: 3, batch: [0, 1, 2], nowMs: 0))
        XCTAssertEqual(c.expire(nowMs: 30_000, idleMs: 30_000), [7])
        XCTAssertTrue(c.open(id: 8, nowMs: 30_000))
        XCTAssertEqual(c.leaseNext(id: 8, after: 0, max: 10, nowMs: 30_000), .leased(Array(0..<10)))
        XCTAssertEqual(c.leasedCount, 10)
        XCTAssertEqual(c.leasedAgainCount, 3, "the three returned ones")
    }

    /// Returned offsets come before fresh ones, lowest first.
    func testAbandonedBatchGoesToTheFront() {
        let c = consumers(end: 30)
        XCTAssertTrue(c.open(id: 1, nowMs: 0))
        XCTAssertTrue(c.open(id: 2, nowMs: 0))
        XCTAssertEqual(c.leaseNext(id: 1, after: 0, max: 10, nowMs: 0), .leased(Array(0..<10)))
        XCTAssertEqual(c.leaseNext(id: 2, after: 0, max: 5, nowMs: 0), .leased(Array(10..<15)))
        XCTAssertTrue(c.close(id: 1, nowMs: 1))
        XCTAssertEqual(c.resolve(id: 1, sequence: 1), .closed)
        c.acknowledged(id: 2, offsets: Array(10..<15))
        XCTAssertEqual(c.leaseNext(id: 2, after: 1, max: 10, nowMs: 2), .leased(Array(0..<10)))
        XCTAssertEqual(c.stream(2)?.sequence, 2)
        XCTAssertEqual(c.leasedAgainCount, 10)
    }

    /// Two requests of the same pointer (a client retrying on a second connection while the
    /// first acknowledgement is in flight): both acknowledge, only the first leases; the second
    /// is answered with what the first got. The stream does not expire while either waits.
    func testConcurrentRequestsOfOnePointer() {
        let c = consumers(end: 30)
        XCTAssertTrue(c.open(id: 1, nowMs: 0))
        XCTAssertEqual(c.leaseNext(id: 1, after: 0, max: 10, nowMs: 0), .leased(Array(0..<10)))
        let batch = c.batchToAcknowledge(id: 1)
        c.beginRequest(id: 1, nowMs: 0)
        c.beginRequest(id: 1, nowMs: 0)
        XCTAssertEqual(c.acknowledged(id: 1, offsets: batch), 10)
        c.endRequest(id: 1, nowMs: 0)
        XCTAssertEqual(c.leaseNext(id: 1, after: 1, max: 10, nowMs: 0), .leased(Array(10..<20)))
        XCTAssertEqual(c.expire(nowMs: 60_000, idleMs: 30_000), [], "one request still in progress")
        XCTAssertEqual(c.acknowledged(id: 1, offsets: batch), 0, "already acknowledged")
        c.endRequest(id: 1, nowMs: 60_000)
        XCTAssertEqual(c.leaseNext(id: 1, after: 1, max: 10, nowMs: 60_000), .answerCurrent)
        XCTAssertEqual(c.stream(1)?.batch, Array(10..<20), "the second acknowledgement did not clear the new batch")
        XCTAssertEqual(c.ackFloor, 10)
        XCTAssertEqual(c.expire(nowMs: 90_000, idleMs: 30_000), [1])
    }

    /// Nothing available: the pointer stays; a closed stream answers `.gone`.
    func testEmptyLeaseKeepsThePointerAndClosedIsGone() {
        let c = consumers(end: 0)
        XCTAssertTrue(c.open(id: 1, nowMs: 0))
        XCTAssertEqual(c.leaseNext(id: 1, after: 0, max: 10, nowMs: 0), .nothingAvailable)
        XCTAssertEqual(c.resolve(id: 1, sequence: 0), .current)
        c.appended(endOffset: 1)
        XCTAssertTrue(c.hasAvailable)
        c.close(id: 1, nowMs: 0)
        XCTAssertEqual(c.leaseNext(id: 1, after: 0, max: 10, nowMs: 0), .gone)
    }

    /// A restored stream keeps only what is still its own; a closed stream is not resurrected
    /// by a cursor; restores respect the slot limit.
    func testRestoreFiltersAndRefuses() {
        let c = consumers(end: 10, floor: 2, acked: [4])
        XCTAssertTrue(c.open(id: 1, nowMs: 0))
        XCTAssertEqual(c.leaseNext(id: 1, after: 0, max: 1, nowMs: 0), .leased([2]))
        XCTAssertTrue(c.restore(id: 2, sequence: 5, batch: [1, 2, 3, 4, 5, 3, 12], nowMs: 0))
        XCTAssertEqual(c.stream(2)?.batch, [3, 5], "acknowledged, leased elsewhere, duplicate and unwritten offsets dropped")
        XCTAssertEqual(c.resolve(id: 2, sequence: 5), .current)
        XCTAssertEqual(c.resolve(id: 2, sequence: 4), .previous)
        c.close(id: 2, nowMs: 0)
        XCTAssertFalse(c.restore(id: 2, sequence: 5, batch: [3], nowMs: 0), "closed here: 410, not restored")
        for id in UInt64(10)..<15 { XCTAssertTrue(c.open(id: id, nowMs: 0)) }
        XCTAssertFalse(c.restore(id: 3, sequence: 1, batch: [6], nowMs: 0), "all slots taken")
        XCTAssertFalse(c.isLeased(6))
    }

    /// Out-of-order acknowledgements fold into the floor.
    func testOutOfOrderAcknowledgementsFoldIntoTheFloor() {
        let c = consumers(end: 20)
        XCTAssertTrue(c.open(id: 1, nowMs: 0))
        XCTAssertTrue(c.open(id: 2, nowMs: 0))
        XCTAssertEqual(c.leaseNext(id: 1, after: 0, max: 10, nowMs: 0), .leased(Array(0..<10)))
        XCTAssertEqual(c.leaseNext(id: 2, after: 0, max: 10, nowMs: 0), .leased(Array(10..<20)))
        c.acknowledged(id: 2, offsets: Array(10..<20))
        XCTAssertEqual(c.ackFloor, 0)
        XCTAssertEqual(c.backlog, 10)
        c.acknowledged(id: 1, offsets: Array(0..<10))
        XCTAssertEqual(c.ackFloor, 20)
        XCTAssertEqual(c.backlog, 0)
        XCTAssertFalse(c.hasAvailable)
    }
}
