@testable import Coordination
import EventLoop
import Glibc
import TestSupport
import XCTest

/// Coordination's scripts against one real redis-server for the class.
final class CoordinationTests: XCTestCase {
    nonisolated(unsafe) static var server: RedisServer?

    override class func setUp() {
        super.setUp()
        server = try? RedisServer()
    }

    override class func tearDown() {
        server = nil
        super.tearDown()
    }

    let ispb = "12345678"
    var server: RedisServer!
    var h: LoopHarness!
    var client: RedisClient!

    override func setUpWithError() throws {
        server = try XCTUnwrap(CoordinationTests.server, "redis-server could not be started")
        if !server.isRunning { try server.start() }
        try server.command(["SCRIPT", "FLUSH"])
        try server.flushAll()
        h = try LoopHarness()
        client = try connectedClient(h, clientConfig(server.port))
    }

    override func tearDown() {
        client?.close()
        client = nil
        h.close()
        h = nil
        server = nil
    }

    func coordination(slots: Int = 6, idleMs: UInt64 = 30_000, rateLimit: Int = 0, rateWindowMs: UInt64 = 1_000) -> Coordination {
        var config = CoordinationConfig()
        config.slotsPerISPB = slots
        config.streamIdleMs = idleMs
        config.rateLimitPerWindow = rateLimit
        config.rateWindowMs = rateWindowMs
        return Coordination(client: client, config: config, logger: testLogger())
    }

    func acquire(_ c: Coordination, _ stream: UInt64, ispb: String? = nil) throws -> SlotDecision {
        try h.wait { c.acquireSlot(ispb: ispb ?? self.ispb, stream: stream, completion: $0) }
    }

    func touch(_ c: Coordination, _ stream: UInt64, _ cursor: [UInt8]) throws -> Result<Void, RedisFailure> {
        try h.wait { c.touch(ispb: ispb, stream: stream, cursor: cursor, completion: $0) }
    }

    func load(_ c: Coordination, _ stream: UInt64) throws -> [UInt8]? {
        try h.wait { c.loadCursor(ispb: ispb, stream: stream, completion: $0) }.get()
    }

    func members() throws -> Int64? {
        try server.command(["ZCARD", "rtp:{\(ispb)}:slots"]).integer
    }

    // MARK: slots

    func testSixSlotsAreGrantedAndTheSeventhIsDeniedUntilTheEarliestExpiry() throws {
        let c = coordination()
        for stream in 1...6 {
            XCTAssertEqual(try acquire(c, UInt64(stream)), .granted(used: stream, limit: 6))
        }
        let denied = try acquire(c, 7)
        guard case .denied(let retryMs, let used, let limit) = denied else { return XCTFail("\(denied)") }
        XCTAssertEqual(used, 6)
        XCTAssertEqual(limit, 6)
        XCTAssertGreaterThan(retryMs, 25_000, "the earliest lease was taken moments ago")
        XCTAssertLessThanOrEqual(retryMs, 30_000)
        XCTAssertEqual(denied.retryAfterSeconds, 30, "seconds until the earliest expiry, rounded up")
        XCTAssertEqual(try members(), 6)
        XCTAssertEqual(try server.command(["EXISTS", "rtp:{\(ispb)}:slots"]).integer, 1, "key with the ISPB hash tag")

        XCTAssertEqual(try acquire(c, 3), .granted(used: 6, limit: 6), "a stream holding a slot gets it again")
        XCTAssertEqual(try acquire(c, 1, ispb: "87654321"), .granted(used: 1, limit: 6), "slots are per ISPB")
    }

    /// A release sent right before an acquire is applied before it, also on a Redis that has
    /// never seen the scripts or lost them in a restart (no NOSCRIPT retry reorders them).
    func testAReleaseIsNotOvertakenByTheNextAcquire() throws {
        for round in 0..<2 {
            if round == 1 {
                // A restart loses every script: the reconnect must load them before traffic.
                var recovered = false
                client.onRecovered = { recovered = true }
                server.stop()
                try server.start()
                // The client notices the restart on its next command, then probes and reconnects.
                _ = try? h.wait { self.client.send(RedisCommand("PING"), completion: $0) }
                XCTAssertTrue(h.run(until: { recovered }, timeoutMs: 10_000), "client did not recover")
            }
            let c = coordination()
            let base = UInt64(round * 100)
            for stream in 1...6 { _ = try acquire(c, base + UInt64(stream)) }
            var released: Result<Void, RedisFailure>?
            var seventh: SlotDecision?
            c.release(ispb: ispb, stream: base + 1) { released = $0 }
            c.acquireSlot(ispb: ispb, stream: base + 7) { seventh = $0 }
            XCTAssertTrue(h.run(until: { released != nil && seventh != nil }))
            XCTAssertEqual(seventh, .granted(used: 6, limit: 6), "round \(round): the release was overtaken")
            try server.flushAll()
        }
    }

    func testReleaseFreesASlotAndForgetsTheCursor() throws {
        let c = coordination()
        for stream in 1...6 { _ = try acquire(c, UInt64(stream)) }
        XCTAssertEqual(try touch(c, 4, [1, 2, 3]).map { true }, .success(true))
        if case .granted = try acquire(c, 7) { XCTFail("7th granted while 6 are held") }
        let released = try h.wait { c.release(ispb: ispb, stream: 4, completion: $0) }
        XCTAssertNoThrow(try released.get())
        XCTAssertNil(try load(c, 4))
        XCTAssertEqual(try acquire(c, 7), .granted(used: 6, limit: 6))
        if case .granted = try acquire(c, 8) { XCTFail("8th granted") }
    }

    func testExpiredLeasesFreeTheirSlots() throws {
        let c = coordination()
        var clock: UInt64 = 1_800_000_000_000
        c.now = { clock }
        for stream in 1...6 {
            _ = try acquire(c, UInt64(stream))
            clock += 1_000
        }
        clock = 1_800_000_000_000 + 29_999
        XCTAssertEqual(try acquire(c, 7), .denied(retryAfterMs: 1, used: 6, limit: 6), "1 ms before the first expiry")
        clock += 1
        XCTAssertEqual(try acquire(c, 7), .granted(used: 6, limit: 6), "the first lease expired, the other five hold")
        clock += 5_000
        XCTAssertEqual(try acquire(c, 8), .granted(used: 2, limit: 6), "four more expired; 7 and 8 hold")
    }

    func testTouchSlidesTheLease() throws {
        let c = coordination(slots: 1)
        var clock: UInt64 = 1_800_000_000_000
        c.now = { clock }
        XCTAssertEqual(try acquire(c, 1), .granted(used: 1, limit: 1))
        clock += 20_000
        XCTAssertNoThrow(try touch(c, 1, [9]).get())
        clock += 20_000   // past the first lease's expiry, within the slid one
        XCTAssertEqual(try acquire(c, 2), .denied(retryAfterMs: 10_000, used: 1, limit: 1))
        clock += 10_000
        XCTAssertEqual(try acquire(c, 2), .granted(used: 1, limit: 1))
    }

    func testExpiryWithRedisClockEstimate() throws {
        let c = coordination(idleMs: 300)
        for stream in 1...6 { _ = try acquire(c, UInt64(stream)) }
        let denied = try acquire(c, 7)
        guard case .denied(let retryMs, _, _) = denied else { return XCTFail("\(denied)") }
        XCTAssertLessThanOrEqual(retryMs, 300)
        XCTAssertEqual(denied.retryAfterSeconds, 1, "Retry-After is at least one second")
        h.sleep(ms: UInt64(retryMs) + 100)
        XCTAssertEqual(try acquire(c, 7), .granted(used: 1, limit: 6), "all six abandoned leases expired")
    }

    // MARK: cursors

    func testCursorIsStoredWithTheIdleTTLAndLoadedBinarySafe() throws {
        let c = coordination(idleMs: 400)
        let cursor: [UInt8] = [0, 1, 0, 255, 13, 10] + Array("seq=42".utf8)
        XCTAssertNil(try load(c, 5), "never stored")
        XCTAssertNoThrow(try touch(c, 5, cursor).get())
        XCTAssertEqual(try load(c, 5), cursor)
        let ttl = try XCTUnwrap(try server.command(["PTTL", "rtp:{\(ispb)}:cur:5"]).integer)
        XCTAssertGreaterThan(ttl, 0)
        XCTAssertLessThanOrEqual(ttl, 400)
        XCTAssertNoThrow(try touch(c, 5, [7]).get())
        XCTAssertEqual(try load(c, 5), [7], "the last touch wins")
        h.sleep(ms: 500)
        XCTAssertNil(try load(c, 5), "expired with the idle timeout")
    }

    func testFlushAllThenTouchAndReregisterRestoreSlotsAndCursors() throws {
        let c = coordination()
        for stream in 1...6 {
            _ = try acquire(c, UInt64(stream))
            XCTAssertNoThrow(try touch(c, UInt64(stream), [UInt8(stream)]).get())
        }
        try server.flushAll()
        try server.command(["SCRIPT", "FLUSH"])
        XCTAssertNil(try load(c, 1))
        XCTAssertEqual(try members(), 0)

        XCTAssertNoThrow(try touch(c, 1, [1]).get(), "a touch after the flush re-adds its lease")
        XCTAssertEqual(try members(), 1)
        let live = (2...6).map { (ispb: ispb, stream: UInt64($0), cursor: [UInt8($0)]) }
            + [(ispb: "87654321", stream: UInt64(9), cursor: [9])]
        let result = try h.wait { c.reregister(live, completion: $0) }
        XCTAssertNoThrow(try result.get())
        XCTAssertEqual(try members(), 6)
        for stream in 1...6 { XCTAssertEqual(try load(c, UInt64(stream)), [UInt8(stream)]) }
        XCTAssertEqual(try server.command(["ZCARD", "rtp:{87654321}:slots"]).integer, 1)
        if case .granted = try acquire(c, 7) { XCTFail("the 7th must be denied once the six are registered again") }
    }

    func testReregisterBatchesLargeSetsPerISPB() throws {
        var config = CoordinationConfig()
        config.reregisterBatchMax = 8
        let c = Coordination(client: client, config: config, logger: testLogger())
        let live = (0..<50).map { (ispb: ispb, stream: UInt64($0), cursor: Array("c\($0)".utf8)) }
        XCTAssertNoThrow(try h.wait { c.reregister(live, completion: $0) }.get())
        XCTAssertEqual(try members(), 50, "every stream of every batch registered")
        XCTAssertEqual(try load(c, 49), Array("c49".utf8))
        XCTAssertNoThrow(try h.wait { c.reregister([], completion: $0) }.get())
    }

    // MARK: rate window

    func testRateLimitAllowsNThenLimitsThenAllowsAfterTheWindow() throws {
        let c = coordination(rateLimit: 5, rateWindowMs: 400)
        for _ in 0..<5 { XCTAssertEqual(try h.wait { c.checkRate(ispb: ispb, completion: $0) }, .allowed) }
        let limited = try h.wait { c.checkRate(ispb: ispb, completion: $0) }
        guard case .limited(let retryMs) = limited else { return XCTFail("6th request allowed: \(limited)") }
        XCTAssertGreaterThan(retryMs, 0)
        XCTAssertLessThanOrEqual(retryMs, 800, "at most the rest of this window and the next")
        XCTAssertEqual(limited.retryAfterSeconds, 1)
        XCTAssertEqual(try h.wait { c.checkRate(ispb: "87654321", completion: $0) }, .allowed, "windows are per ISPB")
        h.sleep(ms: UInt64(retryMs) + 20)
        XCTAssertEqual(try h.wait { c.checkRate(ispb: ispb, completion: $0) }, .allowed, "allowed when the wait is over")
        XCTAssertEqual(try server.command(["EXISTS", "rtp:{\(ispb)}:rate"]).integer, 1)
    }

    func testRateWindowSlidesOverTwoCountersExactly() throws {
        let c = coordination(rateLimit: 5, rateWindowMs: 1_000)
        let windowStart: UInt64 = 1_800_000_000_000
        var clock = windowStart
        c.now = { clock }
        func check() throws -> RateDecision { try h.wait { c.checkRate(ispb: ispb, completion: $0) } }
        for _ in 0..<5 { XCTAssertEqual(try check(), .allowed) }
        // Full: in the next window the 5 still weigh 5 * (1000 - elapsed) / 1000, which leaves
        // room for one at elapsed 200: 1000 + 200 ms from now.
        XCTAssertEqual(try check(), .limited(retryAfterMs: 1_200))
        clock = windowStart + 1_199
        XCTAssertEqual(try check(), .limited(retryAfterMs: 1))
        clock = windowStart + 1_200
        XCTAssertEqual(try check(), .allowed, "estimate 4 + 1 fits")
        XCTAssertEqual(try check(), .limited(retryAfterMs: 200), "estimate 4 + 1 (this one) + 1: wait until p weighs 3")
        clock = windowStart + 1_400
        XCTAssertEqual(try check(), .allowed)
        // A node whose clock estimate lags into the previous window counts in the stored window
        // instead of resetting it.
        clock = windowStart + 999
        if case .allowed = try check() { XCTFail("a lagging clock reset the window") }
        clock = windowStart + 3_000
        for _ in 0..<5 { XCTAssertEqual(try check(), .allowed, "two windows later the past weighs nothing") }
    }

    func testRateLimitZeroIsOffWithoutRedis() throws {
        server.stop(SIGKILL)
        XCTAssertTrue(h.run(until: { client.state != .closed }, timeoutMs: 2_000))
        let c = coordination(rateLimit: 0)
        var decision: RateDecision?
        c.checkRate(ispb: ispb) { decision = $0 }
        XCTAssertEqual(decision, .allowed, "answered at once, Redis down")
        let limited = coordination(rateLimit: 5)
        limited.checkRate(ispb: ispb) { decision = $0 }
        XCTAssertEqual(decision, .unavailable, "with a limit, a dead Redis answers unavailable at once")
    }

    // MARK: Redis trouble

    func testRedisDownAnswersUnavailableAndRecoveryReregisters() throws {
        let c = coordination()
        for stream in 1...6 { _ = try acquire(c, UInt64(stream)) }
        var recovered = 0
        client.onRecovered = { recovered += 1 }
        server.stop(SIGKILL)
        XCTAssertEqual(try acquire(c, 7), .unavailable)
        XCTAssertTrue(h.run(until: { client.state == .open }, timeoutMs: 2_000))
        var slot: SlotDecision?
        c.acquireSlot(ispb: ispb, stream: 8) { slot = $0 }
        XCTAssertEqual(slot, .unavailable, "answered before the call returned")
        var touched: Result<Void, RedisFailure>?
        c.touch(ispb: ispb, stream: 1, cursor: [1]) { touched = $0 }
        XCTAssertEqual(touched.map { (try? $0.get()) != nil }, false)
        var loaded: Result<[UInt8]?, RedisFailure>?
        c.loadCursor(ispb: ispb, stream: 1) { loaded = $0 }
        XCTAssertEqual(loaded.map { (try? $0.get()) != nil }, false)

        try server.start()   // an empty server: every lease is gone
        XCTAssertTrue(h.run(until: { recovered == 1 }, timeoutMs: 3_000))
        XCTAssertEqual(try members(), 0)
        let live = (1...6).map { (ispb: ispb, stream: UInt64($0), cursor: [UInt8($0)]) }
        XCTAssertNoThrow(try h.wait { c.reregister(live, completion: $0) }.get())
        if case .granted = try acquire(c, 7) { XCTFail("slots must be registered again after the restart") }
        XCTAssertEqual(try load(c, 6), [6])
    }

    func testKeysOfOneISPBShareOneHashTag() throws {
        let c = coordination()
        let keys = [c.slotsKey(ispb), c.rateKey(ispb), c.cursorKey(ispb, 1), c.cursorKey(ispb, UInt64.max)]
        XCTAssertEqual(keys, ["rtp:{12345678}:slots", "rtp:{12345678}:rate", "rtp:{12345678}:cur:1",
                              "rtp:{12345678}:cur:18446744073709551615"])
        // Redis Cluster hashes only the first {...} of a key: the ISPB, for every key.
        for key in keys {
            let open = try XCTUnwrap(key.firstIndex(of: "{"))
            let close = try XCTUnwrap(key[open...].firstIndex(of: "}"))
            XCTAssertEqual(key[key.index(after: open)..<close], Substring(ispb))
        }
    }
}
