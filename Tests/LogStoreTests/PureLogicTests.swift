import TestSupport
import XCTest
@testable import LogStore

final class PureLogicTests: XCTestCase {
    func testAckTrackerFoldsOutOfOrderAcksIntoTheFloor() {
        var t = AckTracker()
        t.acknowledge([2, 3])
        XCTAssertEqual(t.state, ConsumerState(ackFloor: 0, ackedAboveFloor: [2, 3]))
        t.acknowledge([0])
        XCTAssertEqual(t.state.ackFloor, 1)
        t.acknowledge([1])
        XCTAssertEqual(t.state, ConsumerState(ackFloor: 4, ackedAboveFloor: []))
        t.acknowledge([1, 2, 6])  // idempotent below the floor
        XCTAssertEqual(t.state, ConsumerState(ackFloor: 4, ackedAboveFloor: [6]))
        XCTAssertTrue(t.state.isAcknowledged(6))
        XCTAssertFalse(t.state.isAcknowledged(5))
    }

    func testAckTrackerLeasesReplaceAndRelease() {
        var t = AckTracker()
        t.recordLease(Lease(stream: 9, sequence: 1, offsets: [0, 1]))
        t.recordLease(Lease(stream: 2, sequence: 1, offsets: [2]))
        t.recordLease(Lease(stream: 9, sequence: 2, offsets: [3]))
        XCTAssertEqual(t.state.leases, [Lease(stream: 2, sequence: 1, offsets: [2]), Lease(stream: 9, sequence: 2, offsets: [3])])
        t.releaseLease(stream: 2)
        XCTAssertEqual(t.state.leases.map(\.stream), [9])
        XCTAssertEqual(AckTracker(t.state), t)
    }

    func testIdempotencyIndexWindowAndCap() {
        var index = IdempotencyIndex(entriesMax: 3)
        let h = { (n: UInt64) in KeyHash(first: n, second: n) }
        for i in 0..<3 { XCTAssertEqual(index.insert(h(UInt64(i)), .init(partition: 0, offset: UInt64(i), timestampMs: Int64(i) * 10)), 0) }
        // The cap forgets the oldest key early.
        XCTAssertEqual(index.insert(h(3), .init(partition: 0, offset: 3, timestampMs: 30)), 1)
        XCTAssertNil(index.lookup(h(0)))
        XCTAssertEqual(index.lookup(h(3))?.offset, 3)
        // The window forgets keys older than the cutoff.
        XCTAssertEqual(index.expire(before: 25), 2)
        XCTAssertNil(index.lookup(h(2)))
        XCTAssertEqual(index.count, 1)
        // Re-inserting a key keeps it alive past its old queue entry.
        index.insert(h(3), .init(partition: 0, offset: 9, timestampMs: 100))
        XCTAssertEqual(index.expire(before: 50), 0)
        XCTAssertEqual(index.lookup(h(3))?.offset, 9)
    }

    func testKeyTableMatchesADictionaryUnderCollisionsAndDeletes() {
        var table = KeyTable(minimumCapacity: 8)
        var reference: [KeyHash: IdempotencyIndex.Location] = [:]
        var g = SplitMix64(seed: 42)
        // Few distinct low bits: long probe runs that wrap around the end of the table.
        func key() -> KeyHash { KeyHash(first: (g.next() % 8) << 0 | (g.next() % 4) << 60, second: g.next() % 64) }
        for step in 0..<20_000 {
            let k = key()
            switch g.next() % 3 {
            case 0, 1:
                let v = IdempotencyIndex.Location(partition: UInt32(step % 7), offset: UInt64(step), timestampMs: Int64(step))
                table.set(k, v)
                reference[k] = v
            default:
                XCTAssertEqual(table.remove(k), reference.removeValue(forKey: k), "step \(step)")
            }
            if step % 500 == 0 {
                XCTAssertEqual(table.count, reference.count, "step \(step)")
                let wrong = reference.filter { table[$0.key] != $0.value }.count
                XCTAssertEqual(wrong, 0, "step \(step): lookups disagree with the reference")
            }
        }
        XCTAssertTrue(Dictionary(uniqueKeysWithValues: table.all.map { ($0.0, $0.1) }) == reference, "contents differ")
        // The batch insert (with prefetching) agrees with one-by-one inserts.
        var batch: [(KeyHash, IdempotencyIndex.Location)] = []
        for i in 0..<3_000 {
            batch.append((key(), IdempotencyIndex.Location(partition: 9, offset: UInt64(i), timestampMs: -Int64(i))))
        }
        var one = table
        for (k, v) in batch { one.set(k, v) }
        table.setAll(batch)
        XCTAssertEqual(table.count, one.count)
        XCTAssertEqual(one.all.filter { table[$0.0] != $0.1 }.count, 0, "setAll differs from set")
        // The all-zero fingerprint (the empty marker) is still a usable key.
        let zero = IdempotencyIndex.Location(partition: 1, offset: 2, timestampMs: 3)
        table.set(KeyHash(first: 0, second: 0), zero)
        XCTAssertEqual(table[KeyHash(first: 0, second: 0)], zero)
    }

    func testFIFOQueueReleasesPoppedElements() {
        final class Token {}
        var q = FIFOQueue<Token>()
        weak var popped: Token?
        do {
            let t = Token()
            popped = t
            q.append(t)
            q.append(Token())
            _ = q.removeFirst()
        }
        XCTAssertNil(popped, "a popped element must not stay referenced by the queue")
        XCTAssertEqual(q.count, 1)
    }

    func testFIFOQueueCompactsAndKeepsOrder() {
        var q = FIFOQueue<Int>()
        for i in 0..<10_000 { q.append(i) }
        for i in 0..<9_000 { XCTAssertEqual(q.removeFirst(), i) }
        for i in 10_000..<10_010 { q.append(i) }
        XCTAssertEqual(q.count, 1_010)
        XCTAssertEqual(q.first, 9_000)
    }

    func testPartitionKeyValidationAndParsing() {
        XCTAssertTrue(PartitionKey(region: "sp-1", ispb: "12345678").isValid)
        XCTAssertFalse(PartitionKey(region: "SP", ispb: "12345678").isValid)
        XCTAssertFalse(PartitionKey(region: "a", ispb: "1234567").isValid)
        XCTAssertFalse(PartitionKey(region: "../x", ispb: "12345678").isValid)
        XCTAssertEqual(PartitionKey("local:00000001"), PartitionKey(region: "local", ispb: "00000001"))
        XCTAssertNil(PartitionKey("local:0000000x"))
        XCTAssertEqual(ResourceID(bytes: ResourceID(high: 0x0102, low: 0xff).bytes), ResourceID(high: 0x0102, low: 0xff))
        XCTAssertEqual(ResourceID(high: 1, low: 2).description, "00000000000000010000000000000002")
    }

    func testTailCacheEvictsOldestAndRestartsAfterAGap() {
        func rec(_ o: UInt64, _ n: Int) -> Record {
            Record(offset: o, timestampMs: 0, id: ResourceID(high: 0, low: o), key: [1], payload: [UInt8](repeating: 7, count: n))
        }
        var cache = TailCache()
        cache.add((0..<10).map { rec($0, 100) }, bytesMax: 10 * TailCache.cost(rec(0, 100)))
        XCTAssertEqual(cache.startOffset, 0)
        XCTAssertEqual(cache.count, 10)
        cache.add([rec(10, 100)], bytesMax: 10 * TailCache.cost(rec(0, 100)))
        XCTAssertEqual(cache.startOffset, 1, "the oldest falls out first")
        XCTAssertNil(cache.read(from: 0, end: 11, maxRecords: 5, maxBytes: 1 << 20), "evicted: read the disk")
        XCTAssertEqual(cache.read(from: 8, end: 11, maxRecords: 5, maxBytes: 1 << 20)?.map(\.offset), [8, 9, 10])
        XCTAssertEqual(cache.read(from: 8, end: 10, maxRecords: 5, maxBytes: 1 << 20)?.map(\.offset), [8, 9], "not past the durable end")
        cache.add([rec(20, 100)], bytesMax: 1 << 20)
        XCTAssertEqual(cache.startOffset, 20, "a gap starts the cache anew")
        XCTAssertEqual(cache.count, 1)
        cache.add([rec(21, 100)], bytesMax: 0)
        XCTAssertEqual(cache.count, 1, "a zero budget caches nothing")
    }
}
