import Foundation
import HTTP
import TestSupport
import XCTest

/// 1 vs 10 messages by `Accept`, the multipart body checked by three parsers (ours, Python's
/// `email` package in a subprocess, and RFC 2046 delimiter splitting written here), 406 for
/// anything else, gzip when accepted.
final class PullRepresentationTests: XCTestCase {
    func testOneOrTenMessagesByAcceptWithGzip() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1"])
        let outbox = Outbox()
        let ids = try outbox.send(25, from: hub.client(Pull.a), to: Pull.b)
        let client = try hub.client(Pull.b)

        // 406 before anything is opened or acknowledged.
        for accept in ["text/html", "application/json", "multipart/form-data", "application/xml;q=0"] {
            let r = try client.start(accept: accept)
            XCTAssertEqual(r.status, 406, accept)
            XCTAssertEqual(r.problemType, "urn:rtpstream:problem:not-acceptable")
        }

        // Ten as multipart/mixed.
        let ten = try client.start(accept: Pull.multipart)
        XCTAssertEqual(ten.status, 200)
        XCTAssertEqual(ten.ids, Array(ids[0..<10]))
        XCTAssertEqual(ten.bodies, ids[0..<10].map { outbox.bodies[$0]! })
        try checkIndependently(ten.response, ids: Array(ids[0..<10]), outbox: outbox, gzip: false)
        XCTAssertNil(ten.response.header("PI-ResourceId"), "ids are per part")

        // A 406 on a pointer leaves the stream as it was.
        XCTAssertEqual(try client.pull(XCTUnwrap(ten.next), accept: "image/png").status, 406)

        // One as application/xml (also */*, no Accept, and a lower-q multipart).
        var pointer = try XCTUnwrap(ten.next)
        for (n, accept) in [Pull.xml, "*/*", nil, "multipart/mixed;q=0.4, application/xml;q=0.9"].enumerated() {
            let one = try client.pull(pointer, accept: accept)
            XCTAssertEqual(one.status, 200, "\(accept ?? "none")")
            XCTAssertEqual(one.ids, [ids[10 + n]])
            XCTAssertEqual(one.response.header("Content-Type"), "application/xml; charset=utf-8")
            XCTAssertEqual(one.response.header("PI-ResourceId"), ids[10 + n])
            XCTAssertEqual(one.response.body, outbox.bodies[ids[10 + n]])
            pointer = try XCTUnwrap(one.next)
        }

        // gzip'd multipart: the rest (11 left: at most ten).
        let zipped = try client.pull(pointer, accept: "application/xml;q=0.5, multipart/mixed", gzip: true)
        XCTAssertEqual(zipped.response.header("Content-Encoding"), "gzip")
        XCTAssertEqual(zipped.ids, Array(ids[14..<24]))
        XCTAssertEqual(zipped.response.body.prefix(2), [0x1f, 0x8b])
        try checkIndependently(zipped.response, ids: Array(ids[14..<24]), outbox: outbox, gzip: true)
        let last = try client.pull(XCTUnwrap(zipped.next), accept: Pull.xml, gzip: true)
        XCTAssertEqual(last.response.header("Content-Encoding"), "gzip")
        XCTAssertEqual(last.ids, [ids[24]])
        XCTAssertEqual(last.bodies, [outbox.bodies[ids[24]]!])
        XCTAssertEqual(try client.delete(XCTUnwrap(last.next)).status, 200)
    }

    /// The multipart body parsed by Python's `email` package and split by RFC 2046's
    /// delimiters here, neither of them the hub's own parser.
    func checkIndependently(_ r: HTTPClientResponse, ids: [String], outbox: Outbox, gzip: Bool,
                            file: StaticString = #filePath, line: UInt = #line) throws {
        let contentType = try XCTUnwrap(r.header("Content-Type"), file: file, line: line)
        XCTAssertTrue(contentType.hasPrefix("multipart/mixed; boundary="), contentType, file: file, line: line)

        let python = try pythonParts(contentType: contentType, body: r.body, gzip: gzip)
        XCTAssertEqual(python.defects, [], file: file, line: line)
        XCTAssertEqual(python.parts.count, ids.count, file: file, line: line)
        for (part, id) in zip(python.parts, ids) {
            XCTAssertEqual(part.headers["PI-ResourceId"], id, file: file, line: line)
            XCTAssertEqual(part.headers["Content-Type"], "application/xml; charset=utf-8", file: file, line: line)
            XCTAssertEqual(part.body, outbox.bodies[id], file: file, line: line)
        }

        // RFC 2046 §5.1.1: "--boundary" opens, CRLF "--boundary" separates, "--boundary--" closes.
        var body = r.body
        if gzip { body = try Gzip.decompress(body, maxBytes: 16 << 20) }
        let b = try XCTUnwrap(boundary(of: contentType), file: file, line: line)
        let text = String(decoding: body, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("--\(b)\r\n"), file: file, line: line)
        XCTAssertTrue(text.hasSuffix("\r\n--\(b)--\r\n"), file: file, line: line)
        let inner = text.dropFirst("--\(b)\r\n".count).dropLast("\r\n--\(b)--\r\n".count)
        let parts = inner.components(separatedBy: "\r\n--\(b)\r\n")
        XCTAssertEqual(parts.count, ids.count, file: file, line: line)
        for (part, id) in zip(parts, ids) {
            let split = try XCTUnwrap(part.range(of: "\r\n\r\n"), file: file, line: line)
            let head = part[..<split.lowerBound].components(separatedBy: "\r\n")
            XCTAssertTrue(head.contains("PI-ResourceId: \(id)"), "\(head)", file: file, line: line)
            XCTAssertTrue(head.contains("Content-Type: application/xml; charset=utf-8"), "\(head)", file: file, line: line)
            XCTAssertEqual(Array(part[split.upperBound...].utf8), outbox.bodies[id], file: file, line: line)
        }
    }

    struct PythonParts {
        var parts: [(headers: [String: String], body: [UInt8])]
        var defects: [String]
    }

    /// Parses a multipart body with Python's `email.parser` (policy HTTP) in a subprocess.
    func pythonParts(contentType: String, body: [UInt8], gzip: Bool) throws -> PythonParts {
        let dir = TempDir("pull-multipart")
        let bodyPath = dir.url.appendingPathComponent("body").path
        let scriptPath = dir.url.appendingPathComponent("parse.py").path
        try Data(body).write(to: URL(fileURLWithPath: bodyPath))
        try """
        import base64, gzip, json, sys
        import email.parser, email.policy
        content_type, path, zipped = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
        body = open(path, "rb").read()
        if zipped:
            body = gzip.decompress(body)
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\\r\\n\\r\\n" + body)
        assert msg.is_multipart(), "not multipart"
        parts = [{"headers": dict(p.raw_items()), "body": base64.b64encode(p.get_payload(decode=True)).decode()}
                 for p in msg.iter_parts()]
        defects = [type(d).__name__ for d in msg.defects] + [type(d).__name__ for p in msg.iter_parts() for d in p.defects]
        print(json.dumps({"parts": parts, "defects": defects}))
        """.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let (status, output) = try runCommand("/usr/bin/env", ["python3", scriptPath, contentType, bodyPath, gzip ? "1" : "0"])
        guard status == 0, let json = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
              let parts = json["parts"] as? [[String: Any]], let defects = json["defects"] as? [String] else {
            throw ClientError("python multipart parse failed (\(status)): \(output)")
        }
        return PythonParts(parts: try parts.map { p in
            guard let headers = p["headers"] as? [String: String], let b64 = p["body"] as? String,
                  let data = Data(base64Encoded: b64) else { throw ClientError("bad part \(p)") }
            return (headers, Array(data))
        }, defects: defects)
    }
}
