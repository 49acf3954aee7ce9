import ArgumentParser

/// `loadtest selftest`: checks the load generator's own pure logic without sockets or clocks —
/// that the ledger flags every kind of violation it claims to (and no false ones on clean
/// histories), and that the response and multipart scanners read what the hub writes, fed
/// whole and one byte at a time. Exit status 1 on any failed check.
struct SelfTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Checks the ledger (each violation kind detected, clean histories pass) and the parsers.")

    func run() throws {
        var checks = Checks()
        LedgerChecks.run(&checks)
        ParserChecks.run(&checks)
        print("selftest: \(checks.passed) checks passed, \(checks.failures.count) failed")
        for f in checks.failures { print("  FAILED: \(f)") }
        if !checks.failures.isEmpty { throw ExitCode(1) }
    }
}

struct Checks {
    var passed = 0
    var failures: [String] = []

    mutating func expect(_ condition: Bool, _ what: @autoclosure () -> String) {
        if condition { passed += 1 } else { failures.append(what()) }
    }
}

/// Histories of one or two PSPs, each violation kind injected once.
enum LedgerChecks {
    static let idleMs: UInt64 = 5000

    static func id(_ n: UInt64) -> ResourceKey { ResourceKey(high: 0xABCD, low: n) }
    static func part(_ n: UInt64, _ bytes: Int = 100) -> PartInfo { PartInfo(resourceID: id(n), status: nil, bodyBytes: bytes) }

    static func ledger(unknownAreViolations: Bool = true) -> Ledger {
        Ledger(config: .init(idleMs: idleMs, unknownIDsAreViolations: unknownAreViolations))
    }

    /// Sends 1...n to PSP 0 with 100-byte bodies.
    static func sendAll(_ l: Ledger, _ n: UInt64, to psp: Int = 0) {
        for i in 1...n { l.sent(id(i), recipient: psp, length: 100, nowMs: 0) }
    }

    static func run(_ c: inout Checks) {
        // A clean history: two streams, acknowledgements, a retry, DELETE.
        do {
            let l = ledger()
            sendAll(l, 4)
            let a = l.openStream(psp: 0), b = l.openStream(psp: 0)
            l.requestSent(stream: a, nowMs: 10)
            l.delivered(stream: a, parts: [part(1), part(2)], retry: false, nowMs: 11)
            l.requestSent(stream: b, nowMs: 12)
            l.delivered(stream: b, parts: [part(3)], retry: false, nowMs: 13)
            l.ackRequested(stream: a, ids: [id(1), id(2)])
            l.ackConfirmed(stream: a, ids: [id(1), id(2)])
            l.delivered(stream: a, parts: [part(4)], retry: false, nowMs: 20)
            l.delivered(stream: a, parts: [part(4)], retry: true, nowMs: 21)   // retried pointer
            l.ackRequested(stream: a, ids: [id(4)])
            l.ackConfirmed(stream: a, ids: [id(4)])
            l.ackRequested(stream: b, ids: [id(3)])
            l.ackConfirmed(stream: b, ids: [id(3)])
            let r = l.finish(nowMs: 100)
            c.expect(r.violationTotal == 0, "clean history: no violations (got \(r.violations))")
            c.expect(r.redeliveredByRetry == 1 && r.acknowledged == 4 && l.isDrained, "clean history: counts")
        }
        // Delivered before its 201 arrived: reconciled, not a violation.
        do {
            let l = ledger()
            let a = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [part(1)], retry: false, nowMs: 1)
            l.sent(id(1), recipient: 0, length: 100, nowMs: 2)
            l.ackRequested(stream: a, ids: [id(1)])
            l.ackConfirmed(stream: a, ids: [id(1)])
            c.expect(l.finish(nowMs: 3).violationTotal == 0, "delivery before 201: reconciled")
        }
        // Lost: sent, never delivered.
        expectKind(&c, .lost, "lost") { l in
            sendAll(l, 2)
            let a = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [part(1)], retry: false, nowMs: 1)
        }
        // Delivered after its acknowledgement was confirmed.
        expectKind(&c, .deliveredAfterAck, "delivered after ack") { l in
            sendAll(l, 1)
            let a = l.openStream(psp: 0), b = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [part(1)], retry: false, nowMs: 1)
            l.ackRequested(stream: a, ids: [id(1)])
            l.ackConfirmed(stream: a, ids: [id(1)])
            l.delivered(stream: b, parts: [part(1)], retry: false, nowMs: 2)
        }
        // Delivered elsewhere while its acknowledgement was pending, and the ack then confirmed.
        expectKind(&c, .deliveredAfterAck, "delivered while ack pending, ack confirmed") { l in
            sendAll(l, 1)
            let a = l.openStream(psp: 0), b = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [part(1)], retry: false, nowMs: 1)
            l.ackRequested(stream: a, ids: [id(1)])
            l.delivered(stream: b, parts: [part(1)], retry: false, nowMs: 2)
            l.ackConfirmed(stream: a, ids: [id(1)])
        }
        // … but explained when the hub answered that request 410 (the stream had expired).
        do {
            let l = ledger()
            sendAll(l, 1)
            let a = l.openStream(psp: 0), b = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [part(1)], retry: false, nowMs: 1)
            l.ackRequested(stream: a, ids: [id(1)])
            l.delivered(stream: b, parts: [part(1)], retry: false, nowMs: 2)
            l.gone(stream: a, held: [id(1)])
            l.ackRequested(stream: b, ids: [id(1)])
            l.ackConfirmed(stream: b, ids: [id(1)])
            let r = l.finish(nowMs: 3)
            c.expect(r.violationTotal == 0 && r.redeliveredAfterGone == 1, "redelivery explained by 410 (got \(r.violations))")
        }
        // Leased to two streams at once.
        expectKind(&c, .leasedTwice, "leased twice") { l in
            sendAll(l, 1)
            let a = l.openStream(psp: 0), b = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [part(1)], retry: false, nowMs: 1)
            l.delivered(stream: b, parts: [part(1)], retry: false, nowMs: 2)
        }
        // Abandoned: redelivered after the idle time is explained; before it is not.
        do {
            let l = ledger()
            sendAll(l, 2)
            let a = l.openStream(psp: 0), b = l.openStream(psp: 0)
            l.requestSent(stream: a, nowMs: 1000)
            l.delivered(stream: a, parts: [part(1), part(2)], retry: false, nowMs: 1001)
            l.abandoned(stream: a, held: [id(1), id(2)])
            c.expect(!l.isDrained && l.heldByAbandoned == 2, "abandoned batch awaits redelivery")
            l.delivered(stream: b, parts: [part(1), part(2)], retry: false, nowMs: 1000 + idleMs + 200)
            l.ackRequested(stream: b, ids: [id(1), id(2)])
            l.ackConfirmed(stream: b, ids: [id(1), id(2)])
            let r = l.finish(nowMs: 9000)
            c.expect(r.violationTotal == 0 && r.redeliveredAfterAbandon == 2 && l.isDrained,
                     "redelivery after abandonment + idle time explained (got \(r.violations))")
        }
        expectKind(&c, .leasedTwice, "abandoned stream's batch redelivered before the idle time") { l in
            sendAll(l, 1)
            let a = l.openStream(psp: 0), b = l.openStream(psp: 0)
            l.requestSent(stream: a, nowMs: 1000)
            l.delivered(stream: a, parts: [part(1)], retry: false, nowMs: 1001)
            l.abandoned(stream: a, held: [id(1)])
            l.delivered(stream: b, parts: [part(1)], retry: false, nowMs: 1000 + idleMs / 2)
        }
        // The same stream got it again without a retry.
        expectKind(&c, .unexplainedRedelivery, "same stream again without retry") { l in
            sendAll(l, 1)
            let a = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [part(1)], retry: false, nowMs: 1)
            l.delivered(stream: a, parts: [part(1)], retry: false, nowMs: 2)
        }
        // Another PSP's message.
        expectKind(&c, .wrongRecipient, "delivered to the wrong PSP") { l in
            sendAll(l, 1, to: 1)
            let a = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [part(1)], retry: false, nowMs: 1)
        }
        expectKind(&c, .wrongRecipient, "delivered to the wrong PSP before its 201") { l in
            let a = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [part(1)], retry: false, nowMs: 1)
            l.sent(id(1), recipient: 1, length: 100, nowMs: 2)
        }
        expectKind(&c, .lengthMismatch, "body of another size") { l in
            sendAll(l, 1)
            let a = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [part(1, 99)], retry: false, nowMs: 1)
        }
        expectKind(&c, .unknownID, "never sent") { l in
            sendAll(l, 1)
            let a = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [part(1), part(7)], retry: false, nowMs: 1)
        }
        do {
            let l = ledger(unknownAreViolations: false)
            let a = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [part(7)], retry: false, nowMs: 1)
            c.expect(l.finish(nowMs: 2).violationTotal == 0, "unknown ids tolerated against a hub with older messages")
        }
        expectKind(&c, .malformed, "part without an id") { l in
            let a = l.openStream(psp: 0)
            l.delivered(stream: a, parts: [PartInfo(resourceID: nil, status: nil, bodyBytes: 1)], retry: false, nowMs: 1)
        }
    }

    /// Runs `history` on a fresh ledger and expects exactly violations of `kind`.
    static func expectKind(_ c: inout Checks, _ kind: Ledger.Kind, _ name: String, _ history: (Ledger) -> Void) {
        let l = ledger()
        history(l)
        let r = l.finish(nowMs: 1_000_000)
        let kinds = Set(r.violationCounts.keys)
        c.expect(kinds == [kind], "\(name): expected only \(kind.rawValue), got \(r.violationCounts)")
    }
}

/// The response-head parser and the multipart scanner on what the hub writes.
enum ParserChecks {
    static func run(_ c: inout Checks) {
        let id1 = "0123456789abcdef0123456789abcdef", id2 = "fedcba9876543210fedcba9876543210"
        let xml1 = "<?xml version=\"1.0\"?>\n<Envelope>one\r\n--not-a-boundary</Envelope>\n"
        let xml2 = "<Envelope>two</Envelope>\n"
        let body = "--rtp-b1\r\nContent-Type: application/xml; charset=utf-8\r\nPI-ResourceId: \(id1)\r\n\r\n\(xml1)"
            + "\r\n--rtp-b1\r\nContent-Type: application/xml; charset=utf-8\r\npi-resourceid: \(id2)\r\n\r\n\(xml2)\r\n--rtp-b1--\r\n"
        let head = "HTTP/1.1 200 OK\r\nPI-Pull-Next: /api/v1/out/10000001/stream/tok\r\n"
            + "Content-Type: multipart/mixed; boundary=\"rtp-b1\"\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
        let bytes = Array((head + body).utf8)

        // Whole, then in every split into two pieces (head parse across partial reads).
        for split in [bytes.count] + Array(stride(from: 1, to: bytes.count, by: 7)) {
            var scan = 0
            var parsed: ResponseHead?
            for end in [split, bytes.count] {
                bytes[0..<end].withUnsafeBytes { raw in
                    if case .head(let h) = ResponseHead.parse(raw, scanFrom: &scan, headBytesMax: 65536) { parsed = parsed ?? h }
                }
                if parsed != nil { break }
            }
            guard let h = parsed else {
                c.expect(false, "head parsed when split at \(split)")
                continue
            }
            if split != bytes.count { continue }
            c.expect(h.status == 200 && h.contentLength == body.utf8.count, "status and length")
            c.expect(h.pullNext == Array("/api/v1/out/10000001/stream/tok".utf8), "PI-Pull-Next")
            c.expect(h.boundary == Array("rtp-b1".utf8), "quoted boundary")
            var parts: [PartInfo] = []
            Array(body.utf8).withUnsafeBytes { raw in
                do { try PartScanner.scan(raw, boundary: h.boundary!, into: &parts) } catch { c.expect(false, "scan: \(error)") }
            }
            c.expect(parts.map(\.resourceID) == [ResourceKey(id1), ResourceKey(id2)], "both ids, header names in any case")
            c.expect(parts.map(\.bodyBytes) == [xml1.utf8.count, xml2.utf8.count], "part sizes despite a CR and a fake delimiter in a body")
        }
        var scan = 0
        let incomplete = Array("HTTP/1.1 204 No Content\r\nRetry-After: 3\r\n".utf8)
        incomplete.withUnsafeBytes { raw in
            if case .needMore = ResponseHead.parse(raw, scanFrom: &scan, headBytesMax: 65536) { c.expect(true, "") } else { c.expect(false, "incomplete head needs more") }
        }
        let tooMany = Array("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nPI-Slots: 6/6\r\nContent-Length: 0\r\n\r\n".utf8)
        scan = 0
        tooMany.withUnsafeBytes { raw in
            if case .head(let h) = ResponseHead.parse(raw, scanFrom: &scan, headBytesMax: 65536) {
                c.expect(h.status == 429 && h.retryAfterSeconds == 3 && h.slots, "429 with Retry-After and PI-Slots")
            } else {
                c.expect(false, "429 head parses")
            }
        }
        let truncated = Array("--b\r\nPI-ResourceId: \(id1)\r\n\r\nxml".utf8)
        var parts: [PartInfo] = []
        truncated.withUnsafeBytes { raw in
            c.expect((try? PartScanner.scan(raw, boundary: Array("b".utf8), into: &parts)) == nil, "unclosed part is an error")
        }
        c.expect(ResourceKey("0123456789ABCDEF0123456789abcdef") == ResourceKey(id1), "hex in either case")
        c.expect(ResourceKey("0123") == nil && ResourceKey(String(repeating: "g", count: 32)) == nil, "bad ids refused")
    }
}
