import Foundation
import XCTest
@testable import TLS

/// Building contexts: every bad input is refused with one line naming the file or setting.
final class ContextConfigTests: XCTestCase {
    private func assertConfigError(_ config: TLSServerConfig, contains texts: String...,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try TLSContext.server(config), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertFalse(message.contains("\n"), "one line", file: file, line: line)
            for text in texts {
                XCTAssertTrue(message.contains(text), "\"\(message)\" lacks \"\(text)\"", file: file, line: line)
            }
        }
        XCTAssertTrue(OpenSSLErrorQueue.drain().isEmpty, "error queue left empty", file: file, line: line)
    }

    private func scratchFile(_ name: String, _ text: String) throws -> String {
        let path = fixture.directory + "/scratch-" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testMissingCertificateFile() {
        var config = fixture.serverConfig()
        config.certPath = fixture.directory + "/missing.pem"
        assertConfigError(config, contains: "TLS certificate", "missing.pem", "No such file")
    }

    func testGarbageCertificateFile() throws {
        var config = fixture.serverConfig()
        config.certPath = try scratchFile("garbage.pem", "not a certificate\n")
        assertConfigError(config, contains: "garbage.pem", "no PEM certificate")
    }

    func testKeyThatDoesNotMatchTheCertificate() {
        var config = fixture.serverConfig()
        config.keyPath = fixture.client(Fixture.ispbA).key
        assertConfigError(config, contains: "TLS key", "does not match certificate")
    }

    func testExpiredServerCertificate() {
        var config = fixture.serverConfig()
        config.certPath = fixture.test.expiredClient.certificate
        config.keyPath = fixture.test.expiredClient.key
        assertConfigError(config, contains: "client-expired.pem", "expired at")
    }

    func testMissingClientCA() {
        var config = fixture.serverConfig()
        config.clientCAPath = fixture.directory + "/no-ca.pem"
        assertConfigError(config, contains: "TLS client CA", "no-ca.pem")
    }

    func testCRLFromAnotherCA() throws {
        var config = fixture.serverConfig()
        config.crlPath = try otherCAList()
        assertConfigError(config, contains: "TLS CRL", "is not in client CA")
    }

    func testExpiredCRL() throws {
        let issuer = CertificateFactory.Issuer(
            certificate: try PEMFile.readCertificates(fixture.files.authority.certificate, role: "ca")[0],
            key: try PEMFile.readPrivateKey(fixture.files.authority.key, role: "key"))
        let now = X509Text.nowEpochSeconds()
        let stale = try CertificateFactory.revocationList(issuer: issuer, revoked: [], thisUpdate: now - 864_000,
                                                          nextUpdate: now - 86_400)
        var config = fixture.serverConfig()
        config.crlPath = try scratchFile("stale-crl.pem", CertificateFactory.pem(stale))
        assertConfigError(config, contains: "TLS CRL", "expired (next update was")
    }

    func testVersionsAndCiphers() {
        var config = fixture.serverConfig()
        config.minVersion = .tls13
        config.maxVersion = .tls12
        assertConfigError(config, contains: "minimum version TLSv1.3 is above maximum version TLSv1.2")
        config = fixture.serverConfig()
        config.cipherList = "NO-SUCH-CIPHER"
        assertConfigError(config, contains: "cipher list \"NO-SUCH-CIPHER\"")
    }

    func testClientCertificateWithoutKey() {
        var config = fixture.clientConfig(fixture.client(Fixture.ispbA))
        config.keyPath = nil
        XCTAssertThrowsError(try TLSContext.client(config)) { error in
            XCTAssertTrue("\(error)".contains("together"), "\(error)")
        }
    }

    func testSummaryNamesWhatWasLoaded() throws {
        let context = try TLSContext.server(fixture.serverConfig(crl: true))
        XCTAssertTrue(context.isServer)
        XCTAssertTrue(context.summary.contains("CN=localhost"), context.summary)
        XCTAssertTrue(context.summary.contains("crl.pem"), context.summary)
        XCTAssertTrue(context.summary.contains("ISPB rule CN:whole"), context.summary)
        XCTAssertFalse(try TLSContext.client(fixture.clientConfig(nil)).isServer)
    }

    private func otherCAList() throws -> String {
        let issuer = CertificateFactory.Issuer(
            certificate: try PEMFile.readCertificates(fixture.test.otherAuthority.certificate, role: "ca")[0],
            key: try PEMFile.readPrivateKey(fixture.test.otherAuthority.key, role: "key"))
        let now = X509Text.nowEpochSeconds()
        let list = try CertificateFactory.revocationList(issuer: issuer, revoked: [], thisUpdate: now - 60,
                                                         nextUpdate: now + 86_400)
        return try scratchFile("other-crl.pem", CertificateFactory.pem(list))
    }
}
