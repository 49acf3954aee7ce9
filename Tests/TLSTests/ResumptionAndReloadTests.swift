import XCTest
@testable import TLS

/// Session resumption (cache + tickets) and reload by building a new context.
final class ResumptionAndReloadTests: XCTestCase {
    private func resumes(version: TLSVersion) throws {
        let server = try TLSContext.server(fixture.serverConfig())
        let client = try TLSContext.client(fixture.clientConfig(fixture.client(Fixture.ispbA), maxVersion: version))
        let first = Link(client: client, server: server)
        first.handshake()
        XCTAssertTrue(first.server.handshakeComplete, failureReason(first.serverResult))
        XCTAssertFalse(first.server.sessionReused)
        let session = try XCTUnwrap(first.client.resumableSession, "the server issued a resumable session")

        let second = Link(client: client, server: server, session: session)
        second.handshake()
        XCTAssertTrue(second.server.handshakeComplete, failureReason(second.serverResult))
        XCTAssertTrue(second.server.sessionReused, "second connection resumes")
        XCTAssertTrue(second.client.sessionReused)
        XCTAssertEqual(second.server.protocolVersion, version.description)
        XCTAssertEqual(second.server.peerIdentity?.ispb, Fixture.ispbA, "identity survives resumption")
        XCTAssertEqual(second.server.peerIdentity, first.server.peerIdentity)
        XCTAssertEqual(second.clientSends(Array("after resumption".utf8)), .ok)
        XCTAssertEqual(second.serverReceived, Array("after resumption".utf8))
    }

    func testSecondConnectionResumesTLS13() throws { try resumes(version: .tls13) }

    func testSecondConnectionResumesTLS12() throws { try resumes(version: .tls12) }

    private func resumesAfterTheFirstConnectionIsDropped(version: TLSVersion, tickets: Bool) throws {
        let server = try TLSContext.server(fixture.serverConfig())
        var config = fixture.clientConfig(fixture.client(Fixture.ispbA), maxVersion: version)
        config.sessionTickets = tickets
        let client = try TLSContext.client(config)
        var first: Link? = Link(client: client, server: server)
        first!.handshake()
        let session = try XCTUnwrap(first!.client.resumableSession)
        first = nil  // both engines freed without close_notify, as when a TCP connection just ends
        let second = Link(client: client, server: server, session: session)
        second.handshake()
        XCTAssertTrue(second.server.sessionReused, "\(version) tickets=\(tickets)")
    }

    func testDroppedConnectionStaysResumable() throws {
        try resumesAfterTheFirstConnectionIsDropped(version: .tls13, tickets: true)
        try resumesAfterTheFirstConnectionIsDropped(version: .tls12, tickets: true)
        try resumesAfterTheFirstConnectionIsDropped(version: .tls12, tickets: false)
    }

    func testFailedConnectionIsNotResumable() throws {
        // A session whose connection later failed (here: a corrupted record) is not offered again.
        let server = try TLSContext.server(fixture.serverConfig())
        var config = fixture.clientConfig(fixture.client(Fixture.ispbA), maxVersion: .tls12)
        config.sessionTickets = false
        let client = try TLSContext.client(config)
        let first = Link(client: client, server: server)
        first.handshake()
        let session = try XCTUnwrap(first.client.resumableSession)
        XCTAssertEqual(Array("x".utf8).withUnsafeBytes { first.client.writePlaintext($0) }, .ok)
        var record: [UInt8] = []
        first.client.takeCiphertext(into: &record)
        record[record.count - 1] ^= 0xff
        record.withUnsafeBytes { first.server.feed($0) }
        var plaintext: [UInt8] = []
        XCTAssertEqual(failureKind(first.server.readPlaintext(into: &plaintext)), .protocolViolation)
        let second = Link(client: client, server: server, session: session)
        second.handshake()
        XCTAssertTrue(second.server.handshakeComplete)
        XCTAssertFalse(second.server.sessionReused, "the server dropped the failed connection's session")
    }

    func testTLS12ResumesBySessionIDWhenTicketsAreNotUsed() throws {
        // A client whose context refuses tickets exercises the server's session cache.
        let server = try TLSContext.server(fixture.serverConfig())
        var config = fixture.clientConfig(fixture.client(Fixture.ispbB), maxVersion: .tls12)
        config.sessionTickets = false
        let client = try TLSContext.client(config)
        let first = Link(client: client, server: server)
        first.handshake()
        let session = try XCTUnwrap(first.client.resumableSession)
        let second = Link(client: client, server: server, session: session)
        second.handshake()
        XCTAssertTrue(second.server.sessionReused)
        XCTAssertEqual(second.server.peerIdentity?.ispb, Fixture.ispbB)
    }

    func testReloadKeepsOldEnginesAndDoesNotResumeAcrossContexts() throws {
        let client = try TLSContext.client(fixture.clientConfig(fixture.test.revokedClient))
        var current: TLSContext? = try TLSContext.server(fixture.serverConfig(crl: false))
        weak let original = current
        let old = Link(client: client, server: current!)
        old.handshake()
        XCTAssertTrue(old.server.handshakeComplete, "before the CRL is configured the client is accepted")
        let session = try XCTUnwrap(old.client.resumableSession)

        // SIGHUP: the operator added the CRL; the server builds a new context and drops its own
        // reference to the old one.
        current = try TLSContext.server(fixture.serverConfig(crl: true))
        XCTAssertNotNil(original, "the old engine keeps its context alive")
        XCTAssertTrue(old.server.context === original)

        XCTAssertEqual(old.clientSends(pattern(70_000)), .ok)
        XCTAssertEqual(old.serverReceived, pattern(70_000), "established connection keeps working")
        XCTAssertEqual(old.serverSends(pattern(5_000)), .ok)
        XCTAssertEqual(old.clientReceived, pattern(5_000))

        // New connections use the new context: no resumption of old sessions (new ticket keys,
        // empty cache), so the revoked certificate is verified again and refused.
        let fresh = Link(client: client, server: current!, session: session)
        fresh.handshake()
        XCTAssertFalse(fresh.server.sessionReused)
        XCTAssertEqual(failureKind(fresh.serverResult), .peerCertificate(.revoked), failureReason(fresh.serverResult))

        let valid = try TLSContext.client(fixture.clientConfig(fixture.client(Fixture.ispbA)))
        let other = Link(client: valid, server: current!)
        other.handshake()
        XCTAssertTrue(other.server.handshakeComplete)

        // When the last old engine goes, so does the old context.
        old.server.shutdown()
        old.pump()
        XCTAssertEqual(old.clientResult, .closed)
    }

    func testOldContextIsFreedWithItsLastEngine() throws {
        weak var weakContext: TLSContext?
        var engine: TLSEngine?
        do {
            let context = try TLSContext.server(fixture.serverConfig())
            weakContext = context
            engine = TLSEngine(context: context)
        }
        XCTAssertNotNil(weakContext)
        engine = nil
        XCTAssertNil(engine)
        XCTAssertNil(weakContext, "no engine left: the SSL_CTX is released")
    }

    func testContextIsSharedAcrossThreads() throws {
        // One context, engines on several threads at once (as with several loops).
        let server = try TLSContext.server(fixture.serverConfig())
        let client = try TLSContext.client(fixture.clientConfig(fixture.client(Fixture.ispbA)))
        let results = ResultBox()
        DispatchQueue.concurrentPerform(iterations: 8) { index in
            let link = Link(client: client, server: server)
            link.handshake()
            let payload = pattern(20_000, seed: UInt8(index))
            _ = link.clientSends(payload)
            results.add(link.server.peerIdentity?.ispb == Fixture.ispbA && link.serverReceived == payload)
        }
        XCTAssertEqual(results.values, Array(repeating: true, count: 8))
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [Bool] = []
    func add(_ value: Bool) { lock.lock(); stored.append(value); lock.unlock() }
    var values: [Bool] { lock.lock(); defer { lock.unlock() }; return stored }
}
