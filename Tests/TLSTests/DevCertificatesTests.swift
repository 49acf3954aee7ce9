import Foundation
import XCTest
@testable import TLS

/// The files DevCertificates writes (the shared fixture is made by it too).
final class DevCertificatesTests: XCTestCase {
    func testLayoutAndModes() throws {
        let files = fixture.files
        XCTAssertEqual(files.authority.certificate, fixture.directory + "/ca.pem")
        XCTAssertEqual(files.clients[Fixture.ispbA]?.key, fixture.directory + "/client-12345678-key.pem")
        XCTAssertEqual(files.crl, fixture.directory + "/crl.pem")
        XCTAssertEqual(files.test?.revokedClient.certificate, fixture.directory + "/client-revoked.pem")
        for path in [files.authority.key, files.server.key, files.clients[Fixture.ispbA]!.key] {
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            XCTAssertEqual(mode, 0o600, path)
        }
        let server = try PEMFile.readCertificates(files.server.certificate, role: "server")[0]
        XCTAssertEqual(server.subject, "CN=localhost,O=rtpstream development")
        let client = try PEMFile.readCertificates(files.clients[Fixture.ispbB]!.certificate, role: "client")[0]
        XCTAssertTrue(client.subject.hasPrefix("CN=87654321"), client.subject)
    }

    func testServerCertificateMatchesLocalhostAndLoopbackAddresses() throws {
        for name in ["localhost", "127.0.0.1", "::1"] {
            var config = fixture.clientConfig(fixture.client(Fixture.ispbA))
            config.serverName = name
            let link = try Link(clientConfig: config, serverConfig: fixture.serverConfig())
            link.handshake()
            XCTAssertTrue(link.client.handshakeComplete, "\(name): \(failureReason(link.clientResult))")
        }
        var wrong = fixture.clientConfig(fixture.client(Fixture.ispbA))
        wrong.serverName = "hub.example"
        let link = try Link(clientConfig: wrong, serverConfig: fixture.serverConfig())
        link.handshake()
        XCTAssertEqual(failureKind(link.clientResult), .peerCertificate(.invalid), failureReason(link.clientResult))
        XCTAssertTrue(failureReason(link.clientResult).contains("hostname mismatch"), failureReason(link.clientResult))
    }

    func testRefusesToOverwriteAndBadISPBs() throws {
        XCTAssertThrowsError(try DevCertificates.generate(
            in: fixture.directory, options: .init(clientISPBs: [Fixture.ispbA]))) { error in
            XCTAssertTrue("\(error)".contains("exists"), "\(error)")
        }
        XCTAssertThrowsError(try DevCertificates.generate(
            in: fixture.directory + "/bad", options: .init(clientISPBs: ["1234567"]))) { error in
            XCTAssertTrue("\(error)".contains("not 8 digits"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: fixture.directory + "/bad/ca.pem"))
    }
}
