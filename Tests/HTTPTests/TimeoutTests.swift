import HTTP
import XCTest

/// The connection timeout state machine, driven by a manual clock: no sockets, no sleeping.
final class TimeoutTests: XCTestCase {
    var policy: TimeoutPolicy {
        var p = TimeoutPolicy()
        p.idleMs = 60_000
        p.headMs = 10_000
        p.bodyMs = 30_000
        p.writeStallMs = 20_000
        p.handshakeMs = 5_000
        return p
    }

    func testIdleConnectionExpires() {
        let t = ConnectionTimeouts(policy: policy, nowMs: 1_000)
        XCTAssertEqual(t.deadlineMs, 61_000)
        XCTAssertNil(t.expired(nowMs: 60_999))
        XCTAssertEqual(t.expired(nowMs: 61_000), .idle)
    }

    func testTrickledHeadersKeepTheFirstByteDeadline() {
        var t = ConnectionTimeouts(policy: policy, nowMs: 0)
        // First byte of a head at 5 s, then one byte every second: the deadline never moves.
        for now in stride(from: UInt64(5_000), through: 14_000, by: 1_000) {
            t.observe(nowMs: now, readPhase: .head, handlerBusy: false, writePending: false, wroteBytes: false)
            XCTAssertEqual(t.deadlineMs, 15_000)
        }
        XCTAssertEqual(t.expired(nowMs: 15_000), .head)
    }

    func testTrickledBodyExpires() {
        var t = ConnectionTimeouts(policy: policy, nowMs: 0)
        t.observe(nowMs: 100, readPhase: .head, handlerBusy: false, writePending: false, wroteBytes: false)
        t.observe(nowMs: 200, readPhase: .body, handlerBusy: false, writePending: false, wroteBytes: false)
        t.observe(nowMs: 20_000, readPhase: .body, handlerBusy: false, writePending: false, wroteBytes: false)
        XCTAssertEqual(t.deadlineMs, 30_200)
        XCTAssertEqual(t.expired(nowMs: 30_200), .body)
    }

    func testBusyHandlerHasNoReadDeadlineAndIdleRestartsAfterIt() {
        var t = ConnectionTimeouts(policy: policy, nowMs: 0)
        t.observe(nowMs: 10, readPhase: .idle, handlerBusy: true, writePending: false, wroteBytes: false)
        XCTAssertNil(t.deadlineMs)
        XCTAssertNil(t.expired(nowMs: 1_000_000))
        t.observe(nowMs: 100_000, readPhase: .idle, handlerBusy: false, writePending: false, wroteBytes: false)
        XCTAssertEqual(t.deadlineMs, 160_000)
    }

    func testWriteStallExpiresUnlessBytesMove() {
        var t = ConnectionTimeouts(policy: policy, nowMs: 0)
        t.observe(nowMs: 1_000, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: true)
        XCTAssertEqual(t.deadlineMs, 21_000)
        t.observe(nowMs: 15_000, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: true)
        XCTAssertEqual(t.deadlineMs, 35_000)
        t.observe(nowMs: 30_000, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: false)
        XCTAssertEqual(t.deadlineMs, 35_000)
        XCTAssertEqual(t.expired(nowMs: 35_000), .writeStall)
        // Once everything is written, the connection is idle again.
        t.observe(nowMs: 34_000, readPhase: .idle, handlerBusy: false, writePending: false, wroteBytes: true)
        XCTAssertEqual(t.kind, .idle)
    }

    /// A response queued into a full socket after a handler that took longer than the stall
    /// allowance (a long poll, a large compression on the worker pool) gets the whole
    /// allowance from the moment it became pending; pipelined requests arriving and being
    /// answered meanwhile without write progress do not push the deadline. (Before: the
    /// allowance counted from the last observation before the handler, so the deadline was
    /// already past and the connection was reset at once.)
    func testWriteStallCountsFromWhenOutputBecamePending() {
        var t = ConnectionTimeouts(policy: policy, nowMs: 0)
        t.observe(nowMs: 1_000, readPhase: .idle, handlerBusy: true, writePending: false, wroteBytes: false)
        XCTAssertNil(t.deadlineMs)
        t.observe(nowMs: 26_000, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: false)
        XCTAssertEqual(t.kind, .writeStall)
        XCTAssertEqual(t.deadlineMs, 46_000)
        XCTAssertNil(t.expired(nowMs: 45_999))
        for (i, now) in stride(from: UInt64(27_000), through: 45_000, by: 1_000).enumerated() {
            t.observe(nowMs: now, readPhase: i % 2 == 0 ? .head : .idle, handlerBusy: i % 3 == 0,
                      writePending: true, wroteBytes: false)
            XCTAssertEqual(t.deadlineMs, 46_000, "at \(now)")
        }
        XCTAssertEqual(t.expired(nowMs: 46_000), .writeStall)
        // Progress moves it; a drained queue ends it.
        t.observe(nowMs: 45_500, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: true)
        XCTAssertEqual(t.deadlineMs, 65_500)
        t.observe(nowMs: 46_000, readPhase: .idle, handlerBusy: false, writePending: false, wroteBytes: true)
        XCTAssertEqual(t.kind, .idle)
    }

    /// Progress is dated when it happened: bytes written just after one observation and
    /// reported by the next (the timer's, 10 s later) do not push the deadline to 10 s + the
    /// allowance. (Before: the stalled connection was reset up to one allowance late: 40 s
    /// instead of 31 s with 30 s, measured on the real binary.)
    func testWriteProgressIsDatedWhenItHappened() {
        var t = ConnectionTimeouts(policy: policy, nowMs: 0)
        t.observe(nowMs: 1_000, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: true, wroteAtMs: 1_000)
        XCTAssertEqual(t.deadlineMs, 21_000)
        // The kernel took more until 1.4 s, then nothing; the next look is at 10 s.
        t.observe(nowMs: 10_000, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: true, wroteAtMs: 1_400)
        XCTAssertEqual(t.deadlineMs, 21_400)
        XCTAssertEqual(t.expiredAtTimer(nowMs: 21_400), .writeStall)
        // A date in the future (clock skew between sources) counts as now; never backwards.
        t.observe(nowMs: 21_500, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: true, wroteAtMs: 99_999)
        XCTAssertEqual(t.deadlineMs, 41_500)
        t.observe(nowMs: 22_000, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: true, wroteAtMs: 5_000)
        XCTAssertEqual(t.deadlineMs, 41_500)
    }

    /// A timer that fires late (the loop or the process stalled) reports nothing once, so that
    /// the connection is asked again after its socket was polled; a second late check in a
    /// row, or a timely one, reports the expiry.
    func testALateTimerGetsOneTurnOfGrace() {
        var t = ConnectionTimeouts(policy: policy, nowMs: 0)
        t.observe(nowMs: 1_000, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: true)
        XCTAssertEqual(t.deadlineMs, 21_000)
        XCTAssertNil(t.expiredAtTimer(nowMs: 20_999))
        XCTAssertEqual(t.expiredAtTimer(nowMs: 21_000 + ConnectionTimeouts.lateToleranceMs), .writeStall, "on time")

        var late = ConnectionTimeouts(policy: policy, nowMs: 0)
        late.observe(nowMs: 1_000, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: true)
        XCTAssertNil(late.expiredAtTimer(nowMs: 22_600), "fired 1.6 s late: one turn of grace")
        // The turn's poll saw the client read: progress moves the deadline.
        late.observe(nowMs: 22_601, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: true)
        XCTAssertNil(late.expiredAtTimer(nowMs: 22_601))
        XCTAssertEqual(late.deadlineMs, 42_601)

        var stalled = ConnectionTimeouts(policy: policy, nowMs: 0)
        stalled.observe(nowMs: 1_000, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: true)
        XCTAssertNil(stalled.expiredAtTimer(nowMs: 22_600))
        stalled.observe(nowMs: 24_000, readPhase: .idle, handlerBusy: false, writePending: true, wroteBytes: false)
        XCTAssertEqual(stalled.expiredAtTimer(nowMs: 24_000), .writeStall, "no progress after the grace: reset")
        // A loop stalled turn after turn still ends the connection on every second check.
        var always = ConnectionTimeouts(policy: policy, nowMs: 0)
        XCTAssertNil(always.expiredAtTimer(nowMs: 70_000))
        XCTAssertEqual(always.expiredAtTimer(nowMs: 75_000), .idle)
    }

    func testHandshakeDeadlineThenIdle() {
        var t = ConnectionTimeouts(policy: policy, nowMs: 0, handshaking: true)
        XCTAssertEqual(t.deadlineMs, 5_000)
        t.observe(nowMs: 4_000, readPhase: .idle, handlerBusy: false, writePending: false, wroteBytes: false,
                  handshakeDone: false)
        XCTAssertEqual(t.expired(nowMs: 5_000), .handshake)
        t.observe(nowMs: 4_500, readPhase: .idle, handlerBusy: false, writePending: false, wroteBytes: false,
                  handshakeDone: true)
        XCTAssertEqual(t.kind, .idle)
        XCTAssertEqual(t.deadlineMs, 64_500)
    }
}
