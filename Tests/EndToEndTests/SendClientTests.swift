import HTTP
import HTTPClient
import XCTest

/// The pure parts of the HTTPClient module `rtpstream send` is built on: endpoints, request
/// framing, reading the hub's problem and multipart answers. (Its sockets and TLS are exercised
/// by every other Send*Tests through the real hub.)
final class SendClientTests: XCTestCase {
    /// A response as the client parser reads it off the wire.
    func response(_ status: Int, _ headers: [(String, String)], _ body: [UInt8]) throws -> HTTPClientResponse {
        var head = "HTTP/1.1 \(status) X\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        var parser = HTTPResponseParser()
        (Array(head.utf8) + body).withUnsafeBytes { parser.feed($0) }
        guard case .response(let r) = parser.next() else { throw HTTPClientError("unparsable test response") }
        return r
    }

    func testEndpointsParseSchemeHostAndPort() throws {
        XCTAssertEqual(try HTTPEndpoint(url: "https://127.0.0.1:8443"), HTTPEndpoint(tls: true, host: "127.0.0.1", port: 8443))
        XCTAssertEqual(try HTTPEndpoint(url: "http://hub.example/"), HTTPEndpoint(tls: false, host: "hub.example", port: 80))
        XCTAssertEqual(try HTTPEndpoint(url: "https://hub.example"), HTTPEndpoint(tls: true, host: "hub.example", port: 443))
        XCTAssertEqual(try HTTPEndpoint(url: "https://[::1]:9443"), HTTPEndpoint(tls: true, host: "::1", port: 9443))
        XCTAssertEqual(HTTPEndpoint(tls: true, host: "::1", port: 9443).description, "https://[::1]:9443")
        for bad in ["127.0.0.1:8443", "ftp://x", "https://x:0", "https://x:99999", "https://x:port", "https://x/api", "https://[::1", "https://"] {
            XCTAssertThrowsError(try HTTPEndpoint(url: bad), bad)
        }
    }

    func testRequestsAreFramedWithContentLengthUnlessTheCallerFramedThem() {
        let post = HTTPClientRequest(method: "POST", path: "/api/v1/in/12345678/msgs",
                                     headers: [HTTPHeader("Content-Type", "application/xml")], body: Array("<a/>".utf8))
        XCTAssertEqual(String(decoding: post.serialized(host: "127.0.0.1:8443"), as: UTF8.self),
                       "POST /api/v1/in/12345678/msgs HTTP/1.1\r\nHost: 127.0.0.1:8443\r\nContent-Type: application/xml\r\nContent-Length: 4\r\n\r\n<a/>")
        let emptyPost = HTTPClientRequest(method: "POST", path: "/x")
        XCTAssertTrue(String(decoding: emptyPost.serialized(host: "h"), as: UTF8.self).contains("Content-Length: 0\r\n"))
        let get = HTTPClientRequest(method: "GET", path: "/x", headers: [HTTPHeader("Host", "ignored")])
        XCTAssertEqual(String(decoding: get.serialized(host: "h:1"), as: UTF8.self), "GET /x HTTP/1.1\r\nHost: h:1\r\n\r\n")
        let chunked = HTTPClientRequest(method: "POST", path: "/x", headers: [HTTPHeader("Transfer-Encoding", "chunked")],
                                        body: Array("0\r\n\r\n".utf8))
        XCTAssertFalse(String(decoding: chunked.serialized(host: "h"), as: UTF8.self).contains("Content-Length"))
    }

    func testProblemDocumentsAreReadFromTheHubsRendering() throws {
        let p = Problem(.schemaInvalid, detail: "Element 'Ccy': value <USD> & \"other\" is not 'BRL'")
        let doc = try XCTUnwrap(ProblemDocument(p.xmlDocument))
        XCTAssertEqual(doc.type, "urn:rtpstream:problem:schema-invalid")
        XCTAssertEqual(doc.slug, "schema-invalid")
        XCTAssertEqual(doc.status, 422)
        XCTAssertEqual(doc.title, ProblemType.schemaInvalid.title)
        XCTAssertEqual(doc.detail, "Element 'Ccy': value <USD> & \"other\" is not 'BRL'")
        XCTAssertNil(ProblemDocument(Array("<Envelope/>".utf8)))
        let answer = try response(422, [("Content-Type", Problem.contentType)], p.xmlDocument)
        XCTAssertEqual(answer.problem, doc)
        XCTAssertNil(try response(201, [], []).problem)
    }

    func testMultipartAnswersAreSplitIntoParts() throws {
        let problem = Problem(.senderMismatch, detail: "message sender 87654321 is not 12345678")
        let built = Multipart.build(parts: [
            ([HTTPHeader("PI-Part-Status", "201"), HTTPHeader("PI-ResourceId", String(repeating: "a", count: 32))], []),
            ([HTTPHeader("Content-Type", Problem.contentType), HTTPHeader("PI-Part-Status", "403")], Array(problem.xmlElement.utf8)),
        ], boundary: "rtp-parts-0123456789abcdef")
        let answer = try response(207, [("Content-Type", built.contentType)], built.chunks.flatMap { $0 })
        let parts = try XCTUnwrap(try answer.multipartParts())
        XCTAssertEqual(parts.map { $0.header("pi-part-status") }, ["201", "403"])
        XCTAssertEqual(parts[0].header("pi-resourceid"), String(repeating: "a", count: 32))
        XCTAssertEqual(ProblemDocument(parts[1].body)?.slug, "sender-mismatch")
        XCTAssertNil(try response(201, [], []).multipartParts())
        let truncated = try response(207, [("Content-Type", built.contentType)], Array(built.chunks.flatMap { $0 }.prefix(40)))
        XCTAssertThrowsError(try truncated.multipartParts())
    }
}
