import HTTP
import XCTest

final class BodyCodingTests: XCTestCase {
    func testMultipartRoundTripSharesPayloads() throws {
        let payloads: [[UInt8]] = (0..<10).map { Array("<Document n=\"\($0)\">\r\n--not-a-boundary\r\n</Document>".utf8) }
        let (chunks, contentType) = Multipart.build(
            parts: payloads.enumerated().map { ([HTTPHeader("Content-Type", "application/xml"), HTTPHeader("PI-ResourceId", "id\($0.offset)")], $0.element) },
            boundary: "rtp-0123456789abcdef")
        XCTAssertEqual(contentType, "multipart/mixed; boundary=rtp-0123456789abcdef")
        XCTAssertEqual(chunks.count, 21)
        let body = chunks.flatMap { $0 }
        let boundary = try XCTUnwrap(MediaType(contentType)?.parameters["boundary"])
        let parts = try Multipart.parse(body, boundary: boundary, partsMax: 10)
        XCTAssertEqual(parts.count, 10)
        for (i, p) in parts.enumerated() {
            XCTAssertEqual(p.body, payloads[i])
            XCTAssertEqual(p.header("PI-ResourceId"), "id\(i)")
            XCTAssertEqual(p.header("content-type"), "application/xml")
        }
    }

    func testMultipartWithPreambleEpilogueAndLimits() throws {
        let body = Array("preamble\r\n--b\r\nContent-Type: application/xml\r\n\r\n<a/>\r\n--b\r\n\r\n<b/>\r\n--b--\r\nepilogue".utf8)
        let parts = try Multipart.parse(body, boundary: "b", partsMax: 10)
        XCTAssertEqual(parts.map { String(decoding: $0.body, as: UTF8.self) }, ["<a/>", "<b/>"])
        XCTAssertThrowsError(try Multipart.parse(body, boundary: "b", partsMax: 1)) {
            XCTAssertEqual(($0 as? MultipartError)?.kind, .tooManyParts)
        }
        XCTAssertThrowsError(try Multipart.parse(Array("--b\r\n\r\n<a/>".utf8), boundary: "b", partsMax: 10))
        XCTAssertThrowsError(try Multipart.parse(Array("--b\r\nBad Header\r\n\r\nx\r\n--b--".utf8), boundary: "b", partsMax: 10))
        XCTAssertThrowsError(try Multipart.parse(Array("no boundary here".utf8), boundary: "b", partsMax: 10))
        // A closing boundary alone is well framed but carries nothing: its own kind (a request
        // with no message is a problem, not a 207 with zero parts).
        XCTAssertThrowsError(try Multipart.parse(Array("--b--\r\n".utf8), boundary: "b", partsMax: 10)) {
            XCTAssertEqual(($0 as? MultipartError)?.kind, .noParts)
        }
        XCTAssertThrowsError(try Multipart.parse(Array("no boundary here".utf8), boundary: "b", partsMax: 10)) {
            XCTAssertEqual(($0 as? MultipartError)?.kind, .malformed)
        }
    }

    func testMediaTypeParsing() {
        let m = MediaType("Multipart/Mixed; boundary=\"a b\\\"c\"; charset=UTF-8")
        XCTAssertEqual(m?.essence, "multipart/mixed")
        XCTAssertEqual(m?.parameters["boundary"], "a b\"c")
        XCTAssertEqual(m?.parameters["charset"], "UTF-8")
        XCTAssertEqual(MediaType("application/xml")?.essence, "application/xml")
        XCTAssertNil(MediaType("xml"))
        XCTAssertNil(MediaType("a/b; noequals"))
    }

    func testAcceptNegotiation() {
        XCTAssertEqual(PullRepresentation.negotiate(accept: nil), .single)
        XCTAssertEqual(PullRepresentation.negotiate(accept: ""), .single)
        XCTAssertEqual(PullRepresentation.negotiate(accept: "*/*"), .single)
        XCTAssertEqual(PullRepresentation.negotiate(accept: "application/xml"), .single)
        XCTAssertEqual(PullRepresentation.negotiate(accept: "multipart/mixed"), .multipart)
        XCTAssertEqual(PullRepresentation.negotiate(accept: "application/xml;q=0.5, multipart/mixed"), .multipart)
        XCTAssertEqual(PullRepresentation.negotiate(accept: "multipart/mixed;q=0.2, application/xml"), .single)
        XCTAssertNil(PullRepresentation.negotiate(accept: "application/json"))
        XCTAssertNil(PullRepresentation.negotiate(accept: "text/html, multipart/mixed;q=0"))
        XCTAssertTrue(acceptsGzip("gzip, deflate"))
        XCTAssertFalse(acceptsGzip("gzip;q=0"))
        XCTAssertFalse(acceptsGzip("br"))
        XCTAssertFalse(acceptsGzip(nil))
    }

    func testGzipRoundTripAndLimits() throws {
        let text = Array(String(repeating: "<Document>pacs.008</Document>", count: 1000).utf8)
        let gz = Gzip.compress([Array(text[0..<100]), Array(text[100...])])
        XCTAssertEqual(Array(gz.prefix(2)), [0x1f, 0x8b])
        XCTAssertLessThan(gz.count, text.count / 10)
        XCTAssertEqual(try Gzip.decompress(gz, maxBytes: text.count), text)
        XCTAssertThrowsError(try Gzip.decompress(gz, maxBytes: text.count - 1)) { XCTAssertEqual($0 as? GzipError, .tooLarge) }
        XCTAssertThrowsError(try Gzip.decompress(Array(gz.prefix(gz.count / 2)), maxBytes: 1 << 20))
        XCTAssertThrowsError(try Gzip.decompress(Array("not gzip".utf8), maxBytes: 1 << 20))
        // Two members concatenated.
        XCTAssertEqual(try Gzip.decompress(gz + Gzip.compress([Array("x".utf8)]), maxBytes: 1 << 20), text + Array("x".utf8))
    }

    func testGzipBombStopsAtTheLimit() throws {
        // 64 MiB of zeros compress to ~64 KiB; inflating must stop at the limit.
        let zeros = [UInt8](repeating: 0, count: 64 << 20)
        let bomb = Gzip.compress([zeros], level: 9)
        XCTAssertLessThan(bomb.count, 200 << 10)
        XCTAssertThrowsError(try Gzip.decompress(bomb, maxBytes: 4 << 20)) { XCTAssertEqual($0 as? GzipError, .tooLarge) }
    }
}

final class ResponseParserTests: XCTestCase {
    func testPipelinedResponsesByteAtATime() {
        let stream = Array(("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nPI-ResourceId: a\r\n\r\nhello"
            + "HTTP/1.1 204 No Content\r\nPI-Pull-Next: /x\r\n\r\n"
            + "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n").utf8)
        for pieceSize in [stream.count, 1, 7] {
            var p = HTTPResponseParser()
            var got: [HTTPClientResponse] = []
            var off = 0
            while off < stream.count {
                let n = min(pieceSize, stream.count - off)
                stream[off..<off + n].withUnsafeBytes { p.feed($0) }
                off += n
                while case .response(let r) = p.next() { got.append(r) }
            }
            XCTAssertEqual(got.map(\.status), [200, 204, 429], "piece size \(pieceSize)")
            XCTAssertEqual(got.first?.body, Array("hello".utf8))
            XCTAssertEqual(got[1].header("pi-pull-next"), "/x")
            XCTAssertEqual(got[2].header("Retry-After"), "3")
        }
    }

    func testMalformedResponsesAreErrors() {
        for text in ["HTTX/1.1 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
                     "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"] {
            var p = HTTPResponseParser()
            Array(text.utf8).withUnsafeBytes { p.feed($0) }
            guard case .error = p.next() else { return XCTFail("accepted \(text.debugDescription)") }
        }
    }
}
