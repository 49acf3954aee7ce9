import HTTP
import XCTest

final class RouterAndProblemTests: XCTestCase {
    func testRouterParametersLiteralsAndMethods() {
        var router = Router<String>()
        router.add(.post, "/api/v1/in/{ispb}/msgs", "send")
        router.add(.get, "/api/v1/out/{ispb}/stream/start", "start")
        router.add(.get, "/api/v1/out/{ispb}/stream/{token}", "next")
        router.add(.delete, "/api/v1/out/{ispb}/stream/{token}", "delete")

        guard case .found(let r, let p) = router.match(method: .get, path: "/api/v1/out/12345678/stream/start") else {
            return XCTFail("no match")
        }
        XCTAssertEqual(r, "start")
        XCTAssertEqual(p["ispb"], "12345678")

        guard case .found(let r2, let p2) = router.match(method: .get, path: "/api/v1/out/12345678/stream/abc") else {
            return XCTFail("no match")
        }
        XCTAssertEqual(r2, "next")
        XCTAssertEqual(p2["token"], "abc")

        guard case .found("delete", _) = router.match(method: .delete, path: "/api/v1/out/1/stream/abc") else {
            return XCTFail("no match")
        }
        guard case .methodNotAllowed(let allowed) = router.match(method: .put, path: "/api/v1/in/1/msgs") else {
            return XCTFail("expected 405")
        }
        XCTAssertEqual(allowed, [.post])
        guard case .notFound = router.match(method: .get, path: "/api/v1/out//stream/start") else {
            return XCTFail("empty parameter must not match")
        }
        guard case .notFound = router.match(method: .get, path: "/api/v1/out/1/stream/start/extra") else {
            return XCTFail("extra segment must not match")
        }
    }

    /// HEAD is never implied by GET (a GET route may change state: following a pull pointer
    /// acknowledges); the Allow list names each method once.
    func testHeadOnlyWhereAddedAndAllowListsEachMethodOnce() {
        var router = Router<String>()
        router.add(.get, "/api/v1/out/{ispb}/stream/start", "start")
        router.add(.get, "/api/v1/out/{ispb}/stream/{token}", "next")
        router.add(.delete, "/api/v1/out/{ispb}/stream/{token}", "delete")
        router.add(.get, "/healthz", "health")
        router.add(.head, "/healthz", "health")

        guard case .methodNotAllowed(let a1) = router.match(method: .head, path: "/api/v1/out/1/stream/start") else {
            return XCTFail("HEAD of a GET route must be 405")
        }
        // `start` also matches `{token}`: GET twice, DELETE once.
        XCTAssertEqual(a1, [.get, .delete])
        guard case .methodNotAllowed(let a2) = router.match(method: .head, path: "/api/v1/out/1/stream/tok") else {
            return XCTFail("HEAD of a pointer must be 405")
        }
        XCTAssertEqual(a2, [.get, .delete])
        guard case .methodNotAllowed = router.match(method: .options, path: "/api/v1/out/1/stream/tok") else {
            return XCTFail("OPTIONS must be 405")
        }
        guard case .found("health", _) = router.match(method: .head, path: "/healthz") else {
            return XCTFail("a route added for HEAD answers it")
        }
    }

    func testProblemXMLIsEscapedAndCapped() {
        let p = Problem(.headerNotAllowed, detail: "<script>&\u{01}" + String(repeating: "z", count: 5000))
        let xml = String(decoding: p.xmlDocument, as: UTF8.self)
        XCTAssertTrue(xml.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"))
        XCTAssertTrue(xml.contains("<type>urn:rtpstream:problem:header-not-allowed</type>"))
        XCTAssertTrue(xml.contains("<status>400</status>"))
        XCTAssertTrue(xml.contains("&lt;script&gt;&amp;"))
        XCTAssertFalse(xml.contains("\u{01}"))
        XCTAssertLessThan(xml.utf8.count, 1500)
    }

    func testCatalogTypesAreUnique() {
        let slugs = ProblemType.all.map(\.slug)
        XCTAssertEqual(Set(slugs).count, slugs.count)
    }

    func testResponseHeadSerialization() {
        let r = HTTPResponse(status: 201, headers: [HTTPHeader("PI-ResourceId", "abc")], body: Array("xy".utf8))
        let head = String(decoding: r.serializeHead(keepAlive: false, date: "D"), as: UTF8.self)
        XCTAssertEqual(head, "HTTP/1.1 201 Created\r\nPI-ResourceId: abc\r\nContent-Length: 2\r\nDate: D\r\nConnection: close\r\n\r\n")
        let noContent = HTTPResponse(status: 204)
        XCTAssertFalse(String(decoding: noContent.serializeHead(keepAlive: true, date: nil), as: UTF8.self)
            .contains("Content-Length"))
    }
}
