@testable import Coordination
import XCTest

final class CircuitBreakerTests: XCTestCase {
    func breaker() -> CircuitBreaker { CircuitBreaker(failuresToOpen: 3, coolDownMsMin: 100, coolDownMsMax: 1_000) }

    func testStartsOpenWithAProbeDueAtOnce() {
        var b = breaker()
        XCTAssertEqual(b.state, .open)
        XCTAssertFalse(b.allowsCommands)
        XCTAssertTrue(b.beginProbe(nowMs: 0))
        XCTAssertEqual(b.state, .halfOpen)
        XCTAssertFalse(b.allowsCommands, "half-open lets only the probe through")
        b.probeSucceeded()
        XCTAssertEqual(b.state, .closed)
        XCTAssertTrue(b.allowsCommands)
    }

    func testOpensAfterConsecutiveFailuresOnly() {
        var b = breaker()
        _ = b.beginProbe(nowMs: 0)
        b.probeSucceeded()
        XCTAssertFalse(b.recordFailure(nowMs: 10))
        XCTAssertFalse(b.recordFailure(nowMs: 11))
        b.recordSuccess()   // the streak is broken
        XCTAssertFalse(b.recordFailure(nowMs: 12))
        XCTAssertFalse(b.recordFailure(nowMs: 13))
        XCTAssertEqual(b.state, .closed)
        XCTAssertTrue(b.recordFailure(nowMs: 14))
        XCTAssertEqual(b.state, .open)
        XCTAssertEqual(b.probeAtMs, 114)
        XCTAssertFalse(b.recordFailure(nowMs: 15), "already open")
    }

    func testCoolDownDoublesPerFailedProbeUpToTheCapAndResetsOnClose() {
        var b = breaker()
        _ = b.beginProbe(nowMs: 0)
        b.probeSucceeded()
        XCTAssertTrue(b.trip(nowMs: 1_000))
        XCTAssertFalse(b.trip(nowMs: 1_000), "tripping an open breaker changes nothing")
        var now: UInt64 = 1_000
        var waits: [UInt64] = []
        for _ in 0..<6 {
            XCTAssertFalse(b.beginProbe(nowMs: b.probeAtMs - 1), "no probe before the cool-down")
            waits.append(b.probeAtMs - now)
            now = b.probeAtMs
            XCTAssertTrue(b.beginProbe(nowMs: now))
            XCTAssertTrue(b.recordFailure(nowMs: now), "a failed probe opens again")
        }
        XCTAssertEqual(waits, [100, 200, 400, 800, 1_000, 1_000])
        XCTAssertTrue(b.beginProbe(nowMs: b.probeAtMs))
        b.probeSucceeded()
        XCTAssertTrue(b.trip(nowMs: 50_000))
        XCTAssertEqual(b.probeAtMs, 50_100, "closing resets the back-off")
    }
}
