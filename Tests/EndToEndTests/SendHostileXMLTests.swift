import Foundation
import Glibc
import HTTP
import HTTPClient
import ISO20022
import TestSupport
import XCTest

/// Hostile XML through the real endpoint (mutual TLS, shipped schema): every request is
/// refused with its problem, nothing it points at is read or fetched, nothing of it leaks into
/// responses or logs, the server's memory stays bounded and it keeps serving.
final class SendHostileXMLTests: XCTestCase {
    static let sender = "12345678"
    static let namespace = "https://www.bcb.gov.br/pi/pacs.008/1.16"
    /// Upper bound on a refusal's wall time: these are answered in milliseconds; the bound only
    /// catches pathological work (entity expansion, quadratic parsing) on a loaded machine.
    static let refusalSecondsMax = 5.0
    /// Upper bound on the hub's resident-set growth across all hostile requests.
    static let rssGrowthKiBMax = 32 * 1024

    func testHostileDocumentsAreRefusedQuicklyWithBoundedMemoryAndNoLeaks() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "0"])
        let client = try SendSupport.client(hub, Self.sender)
        let generator = Pacs008Generator(runTag: "HOSTILE1", addressing: .direct)
        // Warm up (worker threads, validation contexts) before the baseline.
        for i in 1...4 {
            XCTAssertEqual(try SendSupport.post(client, Self.sender, generator.make(sender: Self.sender, recipient: "87654321", sequence: UInt64(i))).status, 201)
        }
        let pid = hub.server.process.processIdentifier
        let rssBefore = try SendSupport.rssKiB(pid)

        // A local file an external entity points at, and a port an external DTD points at.
        let work = TempDir("rtpstream-hostile")
        let secret = "XXE-SECRET-\(UUID().uuidString)"
        let secretPath = work.path + "/secret.txt"
        try secret.write(toFile: secretPath, atomically: true, encoding: .utf8)
        let trap = try ListenTrap()

        let laughs = """
        <?xml version="1.0"?>
        <!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
        <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
        <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
        <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
        <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
        <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
        <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
        <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
        <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
        <Envelope xmlns="\(Self.namespace)"><AppHdr>&lol9;</AppHdr></Envelope>
        """
        let xxe = """
        <?xml version="1.0"?>
        <!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file://\(secretPath)">]>
        <Envelope xmlns="\(Self.namespace)"><AppHdr><BizMsgIdr>&xxe;</BizMsgIdr></AppHdr></Envelope>
        """
        let externalDTD = """
        <?xml version="1.0"?>
        <!DOCTYPE Envelope SYSTEM "http://127.0.0.1:\(trap.port)/evil.dtd">
        <Envelope xmlns="\(Self.namespace)"><AppHdr/></Envelope>
        """
        let parameterEntity = """
        <?xml version="1.0"?>
        <!DOCTYPE Envelope [<!ENTITY % remote SYSTEM "http://127.0.0.1:\(trap.port)/p.dtd"> %remote;]>
        <Envelope xmlns="\(Self.namespace)"/>
        """
        let xinclude = """
        <?xml version="1.0"?>
        <Envelope xmlns="\(Self.namespace)" xmlns:xi="http://www.w3.org/2001/XInclude"><AppHdr><xi:include parse="text" href="file://\(secretPath)"/></AppHdr></Envelope>
        """
        let deep = "<Envelope xmlns=\"\(Self.namespace)\">" + String(repeating: "<a>", count: 10_000)
            + String(repeating: "</a>", count: 10_000) + "</Envelope>"
        var invalidUTF8 = generator.make(sender: Self.sender, recipient: "87654321", sequence: 100)
        let name = Array("Pagador de Teste".utf8)
        let at = try XCTUnwrap(Multipart.search(name, in: invalidUTF8, from: 0))
        invalidUTF8.replaceSubrange(at..<(at + 3), with: [0x50, 0xC3, 0x28])   // a broken 2-byte sequence

        let cases: [(name: String, body: [UInt8], status: Int, slug: String)] = [
            ("billion laughs", Array(laughs.utf8), 422, "doctype-forbidden"),
            ("XXE to a local file", Array(xxe.utf8), 422, "doctype-forbidden"),
            ("external DTD", Array(externalDTD.utf8), 422, "doctype-forbidden"),
            ("external parameter entity", Array(parameterEntity.utf8), 422, "doctype-forbidden"),
            ("XInclude of a local file", Array(xinclude.utf8), 422, "schema-invalid"),
            ("10,000-deep nesting", Array(deep.utf8), 422, "depth-exceeded"),
            ("invalid UTF-8", invalidUTF8, 422, "not-well-formed"),
        ]
        var responses = ""
        for round in 1...5 {
            for c in cases {
                let t0 = Date()
                let r = try SendSupport.post(client, Self.sender, c.body)
                let seconds = Date().timeIntervalSince(t0)
                XCTAssertEqual(r.status, c.status, "\(c.name): \(r.problem?.detail ?? "")")
                XCTAssertEqual(r.problem?.slug, c.slug, "\(c.name): \(r.problem?.detail ?? "")")
                XCTAssertLessThan(seconds, Self.refusalSecondsMax, "\(c.name) took \(seconds) s")
                if round == 1 { responses += "\(r.headers)\n" + String(decoding: r.body, as: UTF8.self) + "\n" }
            }
        }

        // 100 MB text node: refused on its Content-Length before any of the body is read.
        let huge = try SendSupport.client(hub, Self.sender).open()
        let t0 = Date()
        try huge.write(Array("""
        POST /api/v1/in/\(Self.sender)/msgs HTTP/1.1\r
        Host: localhost\r
        Content-Type: application/xml\r
        Content-Length: \(100 << 20)\r
        \r\n
        """.utf8))
        let tooLarge = try huge.readResponse()
        XCTAssertEqual(tooLarge.status, 413)
        XCTAssertEqual(tooLarge.problem?.slug, "body-too-large")
        XCTAssertLessThan(Date().timeIntervalSince(t0), Self.refusalSecondsMax)

        // Still serving, memory bounded, nothing fetched, nothing leaked.
        let after = try SendSupport.post(client, Self.sender, generator.make(sender: Self.sender, recipient: "87654321", sequence: 5))
        XCTAssertEqual(after.status, 201)
        let rssAfter = try SendSupport.rssKiB(pid)
        XCTAssertLessThan(rssAfter - rssBefore, Self.rssGrowthKiBMax, "RSS grew from \(rssBefore) KiB to \(rssAfter) KiB")
        XCTAssertFalse(trap.wasContacted, "the hub fetched an external DTD or entity")
        XCTAssertFalse(responses.contains(secret), "a response carries the XXE target's content")
        XCTAssertFalse(SendSupport.auditText(hub).contains(secret), "the audit log carries the XXE target's content")
        XCTAssertFalse(hub.server.stderr.contains(secret), "the server log carries the XXE target's content")
        XCTAssertFalse(SendSupport.auditText(hub).contains("lollollol"), "entity expansion reached the audit log")
        XCTAssertEqual(try SendSupport.auditLines(hub).count, cases.count * 5, "one audit line per refused message")
        XCTAssertEqual(try SendSupport.pullAll(hub, "87654321").count, 5, "only the valid messages were delivered")
        print("hostile XML: hub RSS \(rssBefore) KiB before, \(rssAfter) KiB after \(cases.count * 5 + 1) hostile requests")
    }
}

/// A listening socket nobody should connect to: an external DTD or entity URL points here.
final class ListenTrap {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw ClientError("trap: bind/listen failed: \(errno)") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { close(fd) }

    /// True when a connection is waiting to be accepted.
    var wasContacted: Bool {
        let c = accept(fd, nil, nil)
        if c >= 0 { close(c); return true }
        return false
    }
}
