import Foundation
import HTTP
import TLS
import TestSupport
import XCTest

/// What a client holding a valid certificate must not be able to do to a message or to the
/// hub: acknowledge without receiving, learn what the error catalog does not say, or get a
/// request half-understood. Real binary, mutual TLS, Redis.
final class HostileClientTests: XCTestCase {
    /// HEAD of `stream/start` and of a pointer is 405 with a correct `Allow` and changes
    /// nothing: the message they would have leased and acknowledged is still delivered, once,
    /// to a GET.
    func testHeadNeverLeasesOrAcknowledges() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "0"])
        let outbox = Outbox()
        let ids = try outbox.send(2, from: hub.client(Pull.a), to: Pull.b)
        let client = try hub.client(Pull.b)

        let headStart = try client.request("HEAD", Pull.startPath(Pull.b))
        XCTAssertEqual(headStart.status, 405)
        XCTAssertEqual(headStart.header("Allow"), "GET, DELETE")
        XCTAssertNil(headStart.header("PI-ResourceId"))
        XCTAssertNil(headStart.header("PI-Pull-Next"))

        let first = try client.start(accept: Pull.xml)
        XCTAssertEqual(first.ids, [ids[0]])
        let pointer = try XCTUnwrap(first.next)
        let headNext = try client.request("HEAD", pointer)
        XCTAssertEqual(headNext.status, 405)
        XCTAssertEqual(headNext.header("Allow"), "GET, DELETE")
        for method in ["OPTIONS", "PUT", "PATCH", "POST"] {
            let length = method == "OPTIONS" || method == "POST" ? [] : [("Content-Length", "0")]
            let r = try client.request(method, pointer, headers: length)
            XCTAssertEqual(r.status, 405, method)
            XCTAssertEqual(r.header("Allow"), "GET, DELETE", method)
        }
        XCTAssertEqual(try hub.metrics()["rtpstream_pull_messages_acknowledged_total"] ?? 0, 0,
                       "nothing acknowledged by HEAD or other methods")

        // The pointer still names the same batch: a retry of the *start* is not possible, but
        // abandoning the stream (DELETE of the first pointer acknowledges ids[0]) and a fresh
        // start must deliver ids[1], and only then is ids[1] acknowledged.
        let second = try client.pull(pointer, accept: Pull.xml)
        XCTAssertEqual(second.ids, [ids[1]])
        XCTAssertEqual(second.bodies.first, outbox.bodies[ids[1]])
        XCTAssertEqual(try client.delete(XCTUnwrap(second.next)).status, 200)
        XCTAssertEqual(try hub.metrics()["rtpstream_pull_messages_acknowledged_total"], 2)

        // The admin listener's read-only routes still answer HEAD.
        let admin = try BlockingClient(port: hub.server.adminPort, timeoutMs: 5000)
        try admin.send(Array("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        XCTAssertEqual(try admin.readResponse(headRequest: true).status, 200)
    }

    /// The 404 detail does not echo the request path (the catalog's promise): nothing a client
    /// sends is reflected into a response it did not author.
    func testNotFoundDoesNotEchoThePath() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "0"])
        let client = try hub.client(Pull.a)
        let r = try client.request("GET", "/api/v1/zzz-echo-me/<b>")
        XCTAssertEqual(r.status, 404)
        let text = String(decoding: r.body, as: UTF8.self)
        XCTAssertFalse(text.contains("zzz-echo-me"), text)
    }

    /// Requests that used to be half-understood: a multipart body with no part was a 207 with
    /// zero parts; an empty Transfer-Encoding followed by a folded line was 501. Both are 400
    /// problems now, and the connection is not reused after them.
    func testEmptyMultipartAndMalformedTransferEncodingAre400() throws {
        let hub = try HubHarness(tls: false, arguments: ["--long-poll-seconds", "0"])
        func ask(_ request: String) throws -> (Int, String) {
            let c = try BlockingClient(port: hub.apiPort, timeoutMs: 5000)
            try c.send(Array(request.utf8))
            let r = try c.readResponse()
            return (r.status, r.bodyText)
        }
        let empty = "--B--\r\n"
        let (s1, b1) = try ask("POST /api/v1/in/\(Pull.a)/msgs HTTP/1.1\r\nHost: x\r\n"
                               + "Content-Type: multipart/mixed; boundary=B\r\nContent-Length: \(empty.utf8.count)\r\n\r\n\(empty)")
        XCTAssertEqual(s1, 400, b1)
        XCTAssertTrue(b1.contains("urn:rtpstream:problem:malformed-multipart"), b1)
        XCTAssertTrue(b1.contains("at least one message"), b1)

        let (s2, b2) = try ask("POST /api/v1/in/\(Pull.a)/msgs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n")
        XCTAssertEqual(s2, 400, b2)
        let (s3, _) = try ask("POST /api/v1/in/\(Pull.a)/msgs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
        XCTAssertEqual(s3, 501, "a well-formed coding we do not implement is still 501")
        XCTAssertEqual(try hub.metrics()["rtpstream_send_messages_total{outcome=\"stored\"}"] ?? 0, 0, "nothing stored")
    }

    /// A certificate whose CN names two ISPBs (`CN=87654321 12345678`, issued by the test CA
    /// with the openssl command line) is refused at the handshake under the default rule and
    /// under `CN:run` (which used to read it as 87654321); a normal client still works.
    func testACertificateNamingTwoISPBsIsRefused() throws {
        let ca = try TestCertificates.directory()
        let work = TempDir("rtpstream-two-ispbs")
        let key = work.path + "/k.pem", csr = work.path + "/r.csr", ext = work.path + "/ext", cert = work.path + "/c.pem"
        try "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n".write(toFile: ext, atomically: true, encoding: .utf8)
        var (status, output) = try runCommand("/usr/bin/openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                                                                   "-subj", "/O=x/CN=87654321 12345678", "-out", csr])
        XCTAssertEqual(status, 0, output)
        (status, output) = try runCommand("/usr/bin/openssl", ["x509", "-req", "-in", csr, "-CA", "\(ca)/ca.pem", "-CAkey", "\(ca)/ca-key.pem",
                                                               "-CAcreateserial", "-CAserial", work.path + "/ca.srl", "-days", "2",
                                                               "-extfile", ext, "-out", cert])
        XCTAssertEqual(status, 0, output)
        let twoISPBs = try TLSContext.client(TLSClientConfig(certPath: cert, keyPath: key, caPath: "\(ca)/ca.pem", serverName: "localhost"))
        for rule in [nil, "CN:run"] {
            let hub = try HubHarness(arguments: ["--long-poll-seconds", "0"] + (rule.map { ["--tls-ispb-rule", $0] } ?? []))
            XCTAssertThrowsError(try BlockingTLSClient(port: hub.apiPort, context: twoISPBs)
                .roundTrip("GET /api/v1/out/87654321/stream/start HTTP/1.1\r\nHost: x\r\n\r\n"), "rule \(rule ?? "default")")
            XCTAssertEqual(try hub.client(Pull.b).start(accept: Pull.xml).status, 204, "a normal client still works")
            XCTAssertEqual(try hub.metrics()["rtpstream_tls_failures_total{reason=\"certificate_no_ispb\"}"], 1,
                           "refused as naming no single ISPB, rule \(rule ?? "default")")
        }
    }
}
