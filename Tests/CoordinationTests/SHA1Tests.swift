@testable import Coordination
import XCTest

final class SHA1Tests: XCTestCase {
    func testKnownVectors() {
        XCTAssertEqual(SHA1.hex([]), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(SHA1.hex(Array("abc".utf8)), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(SHA1.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        XCTAssertEqual(SHA1.hex([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    func testPaddingBoundaries() {
        // 55, 56 and 64 bytes straddle the one-or-two-block padding decision.
        XCTAssertEqual(SHA1.hex([UInt8](repeating: 0x61, count: 55)), "c1c8bbdc22796e28c0e15163d20899b65621d65a")
        XCTAssertEqual(SHA1.hex([UInt8](repeating: 0x61, count: 56)), "c2db330f6083854c99d4b5bfb6e8f29f201be699")
        XCTAssertEqual(SHA1.hex([UInt8](repeating: 0x61, count: 64)), "0098ba824b5c16427bd7a1122a5a442a25ec644d")
    }
}

final class RedisClockTests: XCTestCase {
    func time(_ s: String, _ us: String) -> RedisReply { .array([.bulk(Array(s.utf8)), .bulk(Array(us.utf8))]) }

    func testOffsetIsTakenAtTheRoundTripMidpoint() {
        var clock = RedisClock()
        XCTAssertNil(clock.nowMs(monotonicNs: 5_000_000_000))
        // Sent at monotonic 10 s, answered at 10.004 s; Redis said 1_800_000_000.250 s.
        XCTAssertTrue(clock.sample(time("1800000000", "250000"), sentNs: 10_000_000_000, receivedNs: 10_004_000_000))
        XCTAssertEqual(clock.nowMs(monotonicNs: 10_002_000_000), 1_800_000_000_250)
        XCTAssertEqual(clock.nowMs(monotonicNs: 12_002_000_000), 1_800_000_002_250)
    }

    func testMalformedRepliesAreRejected() {
        var clock = RedisClock()
        XCTAssertFalse(clock.sample(.status("PONG"), sentNs: 0, receivedNs: 1))
        XCTAssertFalse(clock.sample(time("x", "1"), sentNs: 0, receivedNs: 1))
        XCTAssertFalse(clock.sample(time("1", "1000000"), sentNs: 0, receivedNs: 1))
        XCTAssertNil(clock.offsetMs)
        XCTAssertEqual(RedisClock.milliseconds(time("1", "999999")), 1_999)
    }
}
