import Streaming
import XCTest

final class TokenTests: XCTestCase {
    /// A keyed test MAC (not cryptographic): production injects HMAC-SHA256.
    let mac: PullToken.MAC = { m in
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var out: [UInt8] = []
        for round in 0..<2 {
            for b in m + [UInt8(round)] { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            out += withUnsafeBytes(of: h) { Array($0) }
        }
        return out
    }

    func testRoundTripAndBinding() {
        let t = PullToken(stream: 0x0102_0304_0506_0708, sequence: 42)
        let text = t.encode(ispb: "12345678", mac: mac)
        XCTAssertEqual(text.utf8.count, PullToken.encodedLength)
        XCTAssertTrue(text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 })
        XCTAssertEqual(PullToken.decode(text[...], ispb: "12345678", mac: mac), t)
        // Another ISPB's path: refused.
        XCTAssertNil(PullToken.decode(text[...], ispb: "87654321", mac: mac))
    }

    func testEveryBitFlipIsRefused() {
        let text = Array(PullToken(stream: 7, sequence: 3).encode(ispb: "12345678", mac: mac).utf8)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        for i in text.indices {
            for c in alphabet where c != text[i] {
                var forged = text
                forged[i] = c
                XCTAssertNil(PullToken.decode(Substring(String(decoding: forged, as: UTF8.self)), ispb: "12345678", mac: mac),
                             "forged token accepted at position \(i)")
            }
        }
        XCTAssertNil(PullToken.decode("short", ispb: "12345678", mac: mac))
        XCTAssertNil(PullToken.decode(Substring(String(repeating: "=", count: 38)), ispb: "12345678", mac: mac))
    }

    func testBase64URLKnownAnswers() {
        XCTAssertEqual(Base64URL.encode(Array("f".utf8)), "Zg")
        XCTAssertEqual(Base64URL.encode(Array("fo".utf8)), "Zm8")
        XCTAssertEqual(Base64URL.encode(Array("foo".utf8)), "Zm9v")
        XCTAssertEqual(Base64URL.encode([0xfb, 0xff]), "-_8")
        XCTAssertEqual(Base64URL.decode("-_8"), [0xfb, 0xff])
        XCTAssertNil(Base64URL.decode("-_9"), "non-canonical trailing bits")
    }
}
