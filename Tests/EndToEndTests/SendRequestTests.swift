import Foundation
import HTTP
import HTTPClient
import ISO20022
import TestSupport
import XCTest

/// The send endpoint's request handling through the real binary with mutual TLS (one hub for
/// the class, shipped schema): multipart outcomes, gzip, media types, framing, authorization,
/// routing failures, idempotency. Each test pulls its own recipients.
final class SendRequestTests: XCTestCase {
    nonisolated(unsafe) static var shared: HubHarness?

    override class func setUp() {
        super.setUp()
        shared = try? HubHarness(arguments: ["--long-poll-seconds", "0"])
    }

    override class func tearDown() {
        shared = nil
        super.tearDown()
    }

    var hub: HubHarness { get throws { try XCTUnwrap(Self.shared, "hub did not start") } }

    static let sender = "12345678"

    /// Valid SPI pacs.008 messages from `sender`, addressed directly to `recipient`.
    func message(_ tag: String, _ sequence: UInt64, to recipient: String, from sender: String = SendRequestTests.sender) -> [UInt8] {
        Pacs008Generator(runTag: tag, addressing: .direct).make(sender: sender, recipient: recipient, sequence: sequence)
    }

    /// A generated message made schema-invalid (USD is not an SPI currency).
    func invalidMessage(_ tag: String, _ sequence: UInt64, to recipient: String) -> [UInt8] {
        Array(String(decoding: message(tag, sequence, to: recipient), as: UTF8.self)
            .replacingOccurrences(of: "Ccy=\"BRL\"", with: "Ccy=\"USD\"").utf8)
    }

    func testMultipartWithMixedPartsIs207AndStoresTheValidOnes() throws {
        let hub = try hub
        let client = try SendSupport.client(hub, Self.sender)
        let auditBefore = try SendSupport.auditLines(hub).count
        let parts: [[UInt8]] = [
            message("MIXED001", 1, to: "20000001"),
            invalidMessage("MIXED001", 2, to: "20000001"),
            message("MIXED001", 3, to: "20000002"),
            message("MIXED001", 4, to: "20000002", from: "87654321"),   // another PSP's message
            message("MIXED001", 5, to: "20000001"),                     // declared text/plain
            Array("<Envelope xmlns=\"https://www.bcb.gov.br/pi/pacs.008/1.16\"><AppHdr>".utf8),
        ]
        let (body, headers) = SendSupport.multipart(parts, types: [
            "application/xml; charset=utf-8", "application/xml", "application/xml", "application/xml", "text/plain",
            "application/xml",
        ])
        let r = try SendSupport.post(client, Self.sender, body, headers: headers)
        XCTAssertEqual(r.status, 207)
        let answer = try XCTUnwrap(try r.multipartParts(), "a multipart answer")
        XCTAssertEqual(answer.map { $0.header("pi-part-status") }, ["201", "422", "201", "403", "415", "422"])
        XCTAssertEqual(answer.map { ProblemDocument($0.body)?.slug },
                       [nil, "schema-invalid", nil, "sender-mismatch", "unsupported-media-type", "not-well-formed"])
        XCTAssertTrue(ProblemDocument(answer[1].body)?.detail.contains("'USD'") ?? false)
        XCTAssertTrue(ProblemDocument(answer[3].body)?.detail.contains("87654321") ?? false)
        let id1 = try XCTUnwrap(answer[0].header("pi-resourceid"))
        let id3 = try XCTUnwrap(answer[2].header("pi-resourceid"))
        XCTAssertNotEqual(id1, id3)

        XCTAssertEqual(try SendSupport.pullAll(hub, "20000001"), [.init(id: id1, body: parts[0])])
        XCTAssertEqual(try SendSupport.pullAll(hub, "20000002"), [.init(id: id3, body: parts[2])])
        XCTAssertEqual(try SendSupport.pullAll(hub, "87654321"), [], "a rejected part is delivered to no one")

        let audit = try SendSupport.auditLines(hub).dropFirst(auditBefore)
        XCTAssertEqual(audit.map { $0["part"] as? Int }, [2, 4, 5, 6])
        XCTAssertEqual(audit.map { $0["reason"] as? String }, ["schema-invalid", "sender-mismatch", "unsupported-media-type", "not-well-formed"])
        XCTAssertEqual(audit.map { $0["sender"] as? String }, [Self.sender, "87654321", Self.sender, Self.sender])
        XCTAssertEqual(audit.compactMap { $0["messageId"] as? String },
                       [Pacs008Generator(runTag: "MIXED001", addressing: .direct).messageId(sender: "87654321", sequence: 4)])
    }

    func testMultipartAllStoredIs201AndAllFailedAlikeTakesTheirStatus() throws {
        let hub = try hub
        let client = try SendSupport.client(hub, Self.sender)
        let good = (1...3).map { message("ALLGOOD1", $0, to: "20000000") }
        let all = SendSupport.multipart(good)
        let stored = try SendSupport.post(client, Self.sender, all.body, headers: all.headers)
        XCTAssertEqual(stored.status, 201)
        let ids = try XCTUnwrap(try stored.multipartParts()).compactMap { $0.header("pi-resourceid") }
        XCTAssertEqual(ids.count, 3)
        XCTAssertEqual(Set(ids).count, 3)

        let bad = (1...2).map { invalidMessage("ALLBAD01", $0, to: "20000000") }
        let m = SendSupport.multipart(bad)
        let refused = try SendSupport.post(client, Self.sender, m.body, headers: m.headers)
        XCTAssertEqual(refused.status, 422)
        XCTAssertEqual(try XCTUnwrap(try refused.multipartParts()).map { ProblemDocument($0.body)?.slug }, ["schema-invalid", "schema-invalid"])
        XCTAssertEqual(try SendSupport.pullAll(hub, "20000000").map(\.id), ids)
    }

    func testElevenPartsAre413AndNothingIsStored() throws {
        let hub = try hub
        let client = try SendSupport.client(hub, Self.sender)
        let m = SendSupport.multipart((1...11).map { message("ELEVEN01", $0, to: "20000003") })
        let r = try SendSupport.post(client, Self.sender, m.body, headers: m.headers)
        XCTAssertEqual(r.status, 413)
        XCTAssertEqual(r.problem?.slug, "too-many-parts")
        let ten = SendSupport.multipart((1...10).map { message("ELEVEN01", $0, to: "20000003") })
        XCTAssertEqual(try SendSupport.post(client, Self.sender, ten.body, headers: ten.headers).status, 201, "10 parts are fine")
        XCTAssertEqual(try SendSupport.pullAll(hub, "20000003").count, 10, "only the 10-part request stored anything")
    }

    func testGzipBodiesValidCorruptAndBomb() throws {
        let hub = try hub
        let client = try SendSupport.client(hub, Self.sender)
        let xml = message("GZIP0001", 1, to: "20000004")
        let gzipHeaders = SendSupport.xml + [HTTPHeader("Content-Encoding", "gzip")]
        let ok = try SendSupport.post(client, Self.sender, Gzip.compress([xml]), headers: gzipHeaders)
        XCTAssertEqual(ok.status, 201)

        var corrupt = Gzip.compress([message("GZIP0001", 2, to: "20000004")])
        corrupt[corrupt.count / 2] ^= 0xff
        corrupt.removeLast(8)
        let bad = try SendSupport.post(client, Self.sender, corrupt, headers: gzipHeaders)
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual(bad.problem?.slug, "invalid-content-encoding")

        // 100 MB of text node, about 100 KB compressed: stops at --decompressed-bytes-max (4 MiB).
        var bomb = Array("<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\"><x>".utf8)
        bomb += [UInt8](repeating: UInt8(ascii: "a"), count: 100 << 20)
        let compressed = Gzip.compress([bomb], level: 9)
        bomb = []
        XCTAssertLessThan(compressed.count, 1 << 20)
        let big = try SendSupport.client(hub, Self.sender).perform(
            HTTPClientRequest(method: "POST", path: SendSupport.sendPath(Self.sender), headers: gzipHeaders, body: compressed))
        XCTAssertEqual(big.status, 413)
        XCTAssertEqual(big.problem?.slug, "body-too-large")

        XCTAssertEqual(try SendSupport.pullAll(hub, "20000004"), [.init(id: try XCTUnwrap(ok.header("PI-ResourceId")), body: xml)])
    }

    func testWrongContentTypeOrEncodingIs415() throws {
        let hub = try hub
        let client = try SendSupport.client(hub, Self.sender)
        let xml = message("MEDIA001", 1, to: "20000004")
        let cases: [[HTTPHeader]] = [
            [HTTPHeader("Content-Type", "text/plain")],
            [HTTPHeader("Content-Type", "application/xml; charset=iso-8859-1")],
            [HTTPHeader("Content-Type", "application/json")],
            [],
            SendSupport.xml + [HTTPHeader("Content-Encoding", "br")],
            SendSupport.xml + [HTTPHeader("Content-Encoding", "deflate")],
        ]
        for headers in cases {
            let r = try SendSupport.post(client, Self.sender, xml, headers: headers)
            XCTAssertEqual(r.status, 415, "\(headers)")
            XCTAssertEqual(r.problem?.slug, "unsupported-media-type", "\(headers)")
        }
        XCTAssertEqual(try SendSupport.pullAll(hub, "20000004"), [])
    }

    func testPostWithoutLengthIs411AndChunkedUploadIsStored() throws {
        let hub = try hub
        let client = try SendSupport.client(hub, Self.sender)
        let c = try client.open()
        try c.write(Array("POST /api/v1/in/\(Self.sender)/msgs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/xml\r\n\r\n".utf8))
        let r = try c.readResponse()
        XCTAssertEqual(r.status, 411)
        XCTAssertEqual(r.problem?.slug, "length-required")

        let xml = message("CHUNKED1", 1, to: "20000005")
        var chunked = Array("POST /api/v1/in/\(Self.sender)/msgs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        var rest = xml[...]
        for size in [1, 700, 4096] where !rest.isEmpty {
            let piece = rest.prefix(size)
            rest = rest.dropFirst(piece.count)
            chunked += Array("\(String(piece.count, radix: 16))\r\n".utf8) + piece + [13, 10]
        }
        chunked += Array("\(String(rest.count, radix: 16))\r\n".utf8) + rest + Array("\r\n0\r\n\r\n".utf8)
        let c2 = try SendSupport.client(hub, Self.sender).open()
        try c2.write(chunked)
        let stored = try c2.readResponse()
        XCTAssertEqual(stored.status, 201, stored.problem?.detail ?? "")
        XCTAssertEqual(try SendSupport.pullAll(hub, "20000005"), [.init(id: try XCTUnwrap(stored.header("PI-ResourceId")), body: xml)])
    }

    func testSenderAndCertificateAndRecipientChecks() throws {
        let hub = try hub
        let client = try SendSupport.client(hub, Self.sender)
        let auditBefore = try SendSupport.auditLines(hub).count

        // The message's sender is another PSP: 403 sender-mismatch.
        let foreign = message("AUTHZ001", 1, to: "20000005", from: "87654321")
        let mismatch = try SendSupport.post(client, Self.sender, foreign)
        XCTAssertEqual(mismatch.status, 403)
        XCTAssertEqual(mismatch.problem?.slug, "sender-mismatch")

        // The path names another ISPB than the certificate's: 403 forbidden-ispb, whatever the body.
        let forbidden = try SendSupport.post(client, "87654321", foreign)
        XCTAssertEqual(forbidden.status, 403)
        XCTAssertEqual(forbidden.problem?.slug, "forbidden-ispb")

        // Addressed to the hub with the hub itself as creditor agent: no usable recipient.
        let toHub = Pacs008Generator(runTag: "AUTHZ001", addressing: .viaHub("99999010"))
            .make(sender: Self.sender, recipient: "99999010", sequence: 2)
        let unroutable = try SendSupport.post(client, Self.sender, toHub)
        XCTAssertEqual(unroutable.status, 422)
        XCTAssertEqual(unroutable.problem?.slug, "recipient-unresolved")

        // Via the hub with a real creditor agent: routed to it.
        let viaHub = Pacs008Generator(runTag: "AUTHZ001", addressing: .viaHub("99999010"))
            .make(sender: Self.sender, recipient: "20000005", sequence: 3)
        let routed = try SendSupport.post(client, Self.sender, viaHub)
        XCTAssertEqual(routed.status, 201)
        XCTAssertEqual(try SendSupport.pullAll(hub, "20000005").map(\.id), [try XCTUnwrap(routed.header("PI-ResourceId"))])
        XCTAssertEqual(try SendSupport.pullAll(hub, "87654321"), [])

        // forbidden-ispb is refused before the body is looked at: not a rejected message.
        let audit = try SendSupport.auditLines(hub).dropFirst(auditBefore)
        XCTAssertEqual(audit.map { $0["reason"] as? String }, ["sender-mismatch", "recipient-unresolved"])
    }

    func testSameMessageTwiceGetsTheSameIdAndIsStoredOnce() throws {
        let hub = try hub
        let client = try SendSupport.client(hub, Self.sender)
        let xml = message("IDEMPOT1", 1, to: "10000000")
        let first = try SendSupport.post(client, Self.sender, xml)
        XCTAssertEqual(first.status, 201)
        let id = try XCTUnwrap(first.header("PI-ResourceId"))
        XCTAssertEqual(try SendSupport.post(client, Self.sender, xml).header("PI-ResourceId"), id)
        // Again inside a multipart request, next to a new message, and twice in one request.
        let other = message("IDEMPOT1", 2, to: "10000000")
        let m = SendSupport.multipart([other, xml, other])
        let r = try SendSupport.post(client, Self.sender, m.body, headers: m.headers)
        XCTAssertEqual(r.status, 201)
        let ids = try XCTUnwrap(try r.multipartParts()).map { $0.header("pi-resourceid") }
        XCTAssertEqual(ids[1], id)
        XCTAssertEqual(ids[0], ids[2])
        XCTAssertNotEqual(ids[0], id)
        let delivered = try SendSupport.pullAll(hub, "10000000")
        XCTAssertEqual(delivered.map(\.id), [id, try XCTUnwrap(ids[0])], "each message stored once")
    }
}
