import XCTest
import TLS

/// HMAC-SHA256 known answers (RFC 4231), randomness, constant-time comparison.
final class CryptoTests: XCTestCase {
    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    func testRFC4231TestCase1() {
        let tag = Crypto.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8))
        XCTAssertEqual(hex(tag), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    func testRFC4231TestCase2() {
        let tag = Crypto.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        XCTAssertEqual(hex(tag), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    func testRFC4231TestCase6KeyLongerThanBlock() {
        let tag = Crypto.hmacSHA256(key: [UInt8](repeating: 0xaa, count: 131),
                                    message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))
        XCTAssertEqual(hex(tag), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    func testEmptyKeyAndMessage() {
        // HMAC-SHA256("", "") — a well-known value.
        XCTAssertEqual(hex(Crypto.hmacSHA256(key: [], message: [])),
                       "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    func testPreparedKeyGivesTheSameTags() {
        let key = Crypto.HMACSHA256Key(Array("Jefe".utf8))
        XCTAssertEqual(hex(key.tag(Array("what do ya want for nothing?".utf8))),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        XCTAssertEqual(hex(key.tag(Array("what do ya want for nothing?".utf8))),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "reusable")
        let long = Crypto.HMACSHA256Key([UInt8](repeating: 0xaa, count: 131))
        XCTAssertEqual(hex(long.tag(Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))),
                       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        XCTAssertEqual(Crypto.HMACSHA256Key([]).tag([]), Crypto.hmacSHA256(key: [], message: []))
    }

    func testRandomBytes() {
        XCTAssertEqual(Crypto.randomBytes(0), [])
        let a = Crypto.randomBytes(32)
        let b = Crypto.randomBytes(32)
        XCTAssertEqual(a.count, 32)
        XCTAssertNotEqual(a, b)
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(Crypto.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(Crypto.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(Crypto.constantTimeEqual([1, 2, 3], [1, 2]))
        XCTAssertTrue(Crypto.constantTimeEqual([], []))
    }
}
