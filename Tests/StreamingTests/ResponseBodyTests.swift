import Streaming
import XCTest

final class ResponseBodyTests: XCTestCase {
    func testResourceIDsAreThirtyTwoLowercaseHexDigits() {
        XCTAssertEqual(PullResponseBody.resourceID(high: 0, low: 1), String(repeating: "0", count: 31) + "1")
        XCTAssertEqual(PullResponseBody.resourceID(high: 0x0123_4567_89ab_cdef, low: .max),
                       "0123456789abcdefffffffffffffffff")
        XCTAssertEqual(PullResponseBody.boundary(random: 0xfe), "rtp-00000000000000fe")
    }

    /// RFC 2046 framing, byte for byte: delimiter, the two part headers, a blank line, the
    /// payload untouched; CRLF before each further delimiter and before the close delimiter.
    func testMultipartFraming() throws {
        let parts = [PullResponseBody.Part(idHigh: 1, idLow: 2, payload: Array("<a/>".utf8)),
                     PullResponseBody.Part(idHigh: 3, idLow: 4, payload: Array("<b>\r\n</b>".utf8))]
        let (chunks, contentType) = try XCTUnwrap(PullResponseBody.multipart(parts, boundary: "rtp-x"))
        XCTAssertEqual(contentType, "multipart/mixed; boundary=rtp-x")
        XCTAssertEqual(chunks.count, 5)
        let expected = "--rtp-x\r\nContent-Type: application/xml; charset=utf-8\r\nPI-ResourceId: "
            + "00000000000000010000000000000002\r\n\r\n<a/>"
            + "\r\n--rtp-x\r\nContent-Type: application/xml; charset=utf-8\r\nPI-ResourceId: "
            + "00000000000000030000000000000004\r\n\r\n<b>\r\n</b>"
            + "\r\n--rtp-x--\r\n"
        XCTAssertEqual(String(decoding: chunks.joined(), as: UTF8.self), expected)
        XCTAssertEqual(chunks[1], parts[0].payload)
    }

    /// A message holding the delimiter could forge a part: that boundary is refused.
    func testAPayloadHoldingTheBoundaryIsRefused() {
        let evil = Array("<x>\r\n--rtp-0000000000000007\r\nPI-ResourceId: forged\r\n\r\n</x>".utf8)
        let parts = [PullResponseBody.Part(idHigh: 1, idLow: 2, payload: evil)]
        XCTAssertNil(PullResponseBody.multipart(parts, boundary: PullResponseBody.boundary(random: 7)))
        XCTAssertNotNil(PullResponseBody.multipart(parts, boundary: PullResponseBody.boundary(random: 8)))
        XCTAssertNil(PullResponseBody.multipart([PullResponseBody.Part(idHigh: 0, idLow: 0, payload: Array("--b".utf8))],
                                                boundary: "b"), "at the very start")
    }
}
