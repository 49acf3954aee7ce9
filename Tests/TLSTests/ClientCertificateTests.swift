import XCTest
@testable import TLS

/// Client certificates: required, verified (CA, dates, CRL, purpose), and carrying an ISPB.
final class ClientCertificateTests: XCTestCase {
    /// Handshake with `client` (nil: no certificate); returns the link after both sides settle.
    private func connect(_ client: DevCertificates.CertificateFiles?, version: TLSVersion = .tls13,
                         server: TLSServerConfig = fixture.serverConfig()) throws -> Link {
        let link = try Link(clientConfig: fixture.clientConfig(client, maxVersion: version), serverConfig: server)
        link.handshake()
        return link
    }

    private func assertRefused(_ link: Link, _ problem: CertificateProblem, reasonContains text: String,
                               file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(link.server.handshakeComplete, file: file, line: line)
        XCTAssertNil(link.server.peerIdentity, file: file, line: line)
        XCTAssertEqual(failureKind(link.serverResult), .peerCertificate(problem), failureReason(link.serverResult),
                       file: file, line: line)
        XCTAssertTrue(failureReason(link.serverResult).contains(text),
                      "\"\(failureReason(link.serverResult))\" lacks \"\(text)\"", file: file, line: line)
        // The server's alert reaches the client, which fails too (in TLS 1.3 after it
        // thought its own handshake was done).
        XCTAssertEqual(failureKind(link.clientResult), .alertReceived, failureReason(link.clientResult),
                       file: file, line: line)
        XCTAssertTrue(OpenSSLErrorQueue.drain().isEmpty, "error queue left empty", file: file, line: line)
    }

    func testNoClientCertificateIsRefusedTLS13() throws {
        let link = try connect(nil)
        assertRefused(link, .missing, reasonContains: "client certificate required")
        XCTAssertTrue(failureReason(link.clientResult).contains("certificate required"), failureReason(link.clientResult))
    }

    func testNoClientCertificateIsRefusedTLS12() throws {
        let link = try connect(nil, version: .tls12)
        assertRefused(link, .missing, reasonContains: "client certificate required")
        XCTAssertFalse(link.client.handshakeComplete)
    }

    func testCertificateFromAnotherCAIsRefused() throws {
        let link = try connect(fixture.test.otherAuthorityClient)
        assertRefused(link, .unknownCA, reasonContains: "unknown CA")
        XCTAssertTrue(failureReason(link.serverResult).contains("CN=\(fixture.test.ispb)"), "names the subject")
        XCTAssertTrue(failureReason(link.clientResult).contains("unknown ca"), failureReason(link.clientResult))
    }

    func testExpiredCertificateIsRefused() throws {
        let link = try connect(fixture.test.expiredClient)
        assertRefused(link, .expired, reasonContains: "certificate expired")
    }

    func testExpiredCertificateIsRefusedTLS12() throws {
        let link = try connect(fixture.test.expiredClient, version: .tls12)
        assertRefused(link, .expired, reasonContains: "certificate expired")
    }

    func testRevokedCertificateIsRefusedWhenTheCRLIsConfigured() throws {
        let link = try connect(fixture.test.revokedClient, server: fixture.serverConfig(crl: true))
        assertRefused(link, .revoked, reasonContains: "certificate revoked")
        XCTAssertTrue(failureReason(link.clientResult).contains("revoked"), failureReason(link.clientResult))
    }

    func testRevokedCertificateIsAcceptedWithoutCRL() throws {
        let link = try connect(fixture.test.revokedClient, server: fixture.serverConfig(crl: false))
        XCTAssertTrue(link.server.handshakeComplete, "without --tls-crl nothing is revoked")
    }

    func testValidCertificateIsAcceptedWithCRL() throws {
        let link = try connect(fixture.client(Fixture.ispbA), server: fixture.serverConfig(crl: true))
        XCTAssertTrue(link.server.handshakeComplete, failureReason(link.serverResult))
        XCTAssertEqual(link.server.peerIdentity?.ispb, Fixture.ispbA)
    }

    func testServerAuthOnlyCertificateIsRefused() throws {
        let pair = try fixture.issueClient(name: "server-eku", subject: [("CN", "11112222")],
                                           extendedKeyUsage: "serverAuth")
        assertRefused(try connect(pair), .wrongPurpose, reasonContains: "purpose")
    }

    func testKeyUsageWithoutDigitalSignatureIsRefused() throws {
        let pair = try fixture.issueClient(name: "ku-encipher", subject: [("CN", "11112222")],
                                           keyUsage: "critical,keyEncipherment")
        assertRefused(try connect(pair), .wrongPurpose, reasonContains: "unsuitable certificate purpose")
    }

    func testCertificateWithoutExtendedKeyUsageIsRefusedByDefault() throws {
        let pair = try fixture.issueClient(name: "no-eku", subject: [("CN", "11112222")], extendedKeyUsage: nil)
        assertRefused(try connect(pair), .wrongPurpose, reasonContains: "clientAuth")

        var lenient = fixture.serverConfig()
        lenient.requireClientAuthExtendedKeyUsage = false
        let link = try connect(pair, server: lenient)
        XCTAssertTrue(link.server.handshakeComplete, failureReason(link.serverResult))
        XCTAssertEqual(link.server.peerIdentity?.ispb, "11112222")
    }

    // MARK: - ISPB rule, end to end

    private func runRuleServer() throws -> TLSServerConfig {
        var server = fixture.serverConfig()
        server.ispbRule = try ISPBRule(parsing: "CN:run")
        return server
    }

    func testISPBFoundInsideTheCommonNameUnderRunRule() throws {
        let pair = try fixture.issueClient(name: "cn-run", subject: [("O", "Banco 1"), ("CN", "spi-33334444.banco.example")])
        let link = try connect(pair, server: try runRuleServer())
        XCTAssertTrue(link.server.handshakeComplete, failureReason(link.serverResult))
        XCTAssertEqual(link.server.peerIdentity?.ispb, "33334444")
        // The default rule wants the whole CN: the same certificate is refused.
        assertRefused(try connect(pair), .noISPB, reasonContains: "no single ISPB in subject under rule CN:whole")
    }

    /// A CN naming two ISPBs resolves to neither, under either rule (the hostile-client probe:
    /// `CN=87654321 12345678` used to act as 87654321).
    func testTwoISPBsInTheSubjectAreRefused() throws {
        let pair = try fixture.issueClient(name: "two", subject: [("CN", "87654321 12345678")])
        assertRefused(try connect(pair), .noISPB, reasonContains: "CN:whole")
        assertRefused(try connect(pair, server: try runRuleServer()), .noISPB, reasonContains: "CN:run")
    }

    func testSubjectWithoutISPBIsRefusedAtHandshake() throws {
        let pair = try fixture.issueClient(name: "no-ispb", subject: [("O", "55556666"), ("CN", "spi.banco.example")])
        assertRefused(try connect(pair, server: try runRuleServer()), .noISPB, reasonContains: "no single ISPB in subject under rule CN:run")
    }

    func testFourteenDigitCNPJIsNotAnISPB() throws {
        let pair = try fixture.issueClient(name: "cnpj", subject: [("CN", "Banco CNPJ 12345678000195")])
        assertRefused(try connect(pair, version: .tls12, server: try runRuleServer()), .noISPB, reasonContains: "CNPJ 12345678000195")
    }

    func testOrganizationalUnitRuleScansEveryValue() throws {
        let pair = try fixture.issueClient(name: "ou", subject: [("OU", "ICP-Brasil"), ("OU", "ISPB 77778888"),
                                                                 ("CN", "99990000")])
        var server = fixture.serverConfig()
        server.ispbRule = try ISPBRule(parsing: "OU")
        let link = try connect(pair, server: server)
        XCTAssertTrue(link.server.handshakeComplete, failureReason(link.serverResult))
        XCTAssertEqual(link.server.peerIdentity?.ispb, "77778888", "OU wins over CN under rule OU")
    }

    func testSerialNumberWholeRule() throws {
        let exact = try fixture.issueClient(name: "sn-exact", subject: [("serialNumber", "00000000"), ("CN", "bcb")])
        let loose = try fixture.issueClient(name: "sn-loose", subject: [("serialNumber", "ID 00000000"), ("CN", "x")])
        var server = fixture.serverConfig()
        server.ispbRule = try ISPBRule(parsing: "serialNumber:whole")
        let accepted = try connect(exact, server: server)
        XCTAssertEqual(accepted.server.peerIdentity?.ispb, "00000000", failureReason(accepted.serverResult))
        assertRefused(try connect(loose, server: server), .noISPB, reasonContains: "serialNumber:whole")
    }
}
