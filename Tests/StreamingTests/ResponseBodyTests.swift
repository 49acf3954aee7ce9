import Streaming
import XCTest

final class ResponseBodyTests: XCTestCase {
    func testResourceIDsAreThirtyTwoLowercaseHexDigits() {
        XCTAssertEqual(PullResponseBody.resourceID(high: 0, low: 1), String(repeating: "0", count: 31) + "1")
        XCTAssertEqual(PullResponseBody.resourceID(high: 0x0123_4567_89ab_cdef, low: .max),
                       "0123456789abcdefffffffffffffffff")
        XCTAssertEqual(PullResponseBody.boundary(random: 0, 0xfe), "rtp-000000000000000000000000000000fe")
    }

    /// RFC 2046 framing, byte for byte: delimiter, the two part headers, a blank line, the
    /// payload untouched; CRLF before each further delimiter and before the close delimiter.
    func testMultipartFraming() throws {
        let parts = [PullResponseBody.Part(idHigh: 1, idLow: 2, payload: Array("<a/>".utf8)),
                     PullResponseBody.Part(idHigh: 3, idLow: 4, payload: Array("<b>\r\n</b>".utf8))]
        let (chunks, contentType) = PullResponseBody.multipart(parts, boundary: "rtp-x")
        XCTAssertEqual(contentType, "multipart/mixed; boundary=rtp-x")
        XCTAssertEqual(chunks.count, 1, "one contiguous body")
        let expected = "--rtp-x\r\nContent-Type: application/xml; charset=utf-8\r\nPI-ResourceId: "
            + "00000000000000010000000000000002\r\n\r\n<a/>"
            + "\r\n--rtp-x\r\nContent-Type: application/xml; charset=utf-8\r\nPI-ResourceId: "
            + "00000000000000030000000000000004\r\n\r\n<b>\r\n</b>"
            + "\r\n--rtp-x--\r\n"
        XCTAssertEqual(String(decoding: chunks.joined(), as: UTF8.self), expected)
    }

    /// Boundaries carry 128 random bits: distinct, and of the documented shape.
    func testBoundariesAreUnpredictableShape() {
        let b = PullResponseBody.boundary(random: 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210)
        XCTAssertEqual(b, "rtp-0123456789abcdeffedcba9876543210")
    }
}
