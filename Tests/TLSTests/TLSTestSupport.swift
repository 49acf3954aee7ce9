import Foundation
import XCTest
@testable import TLS

/// Certificates made once per test process (DevCertificates into a temp dir), removed at exit.
let fixture = Fixture.make()

struct Fixture: Sendable {
    static let ispbA = "12345678"
    static let ispbB = "87654321"
    let files: DevCertificates.Files
    var directory: String { files.directory }
    var test: DevCertificates.TestFiles { files.test! }

    static func make() -> Fixture {
        let directory = NSTemporaryDirectory() + "rtpstream-tls-tests-\(getpid())-\(UUID().uuidString.prefix(8))"
        do {
            let files = try DevCertificates.generate(
                in: directory, options: .init(clientISPBs: [ispbA, ispbB], includeTestCertificates: true))
            atexit { try? FileManager.default.removeItem(atPath: fixture.directory) }
            return Fixture(files: files)
        } catch {
            fatalError("test certificates: \(error)")
        }
    }

    func serverConfig(crl: Bool = false) -> TLSServerConfig {
        TLSServerConfig(certPath: files.server.certificate, keyPath: files.server.key,
                        clientCAPath: files.authority.certificate, crlPath: crl ? files.crl : nil)
    }

    func clientConfig(_ pair: DevCertificates.CertificateFiles?, maxVersion: TLSVersion = .tls13) -> TLSClientConfig {
        TLSClientConfig(certPath: pair?.certificate, keyPath: pair?.key, caPath: files.authority.certificate,
                        serverName: "localhost", maxVersion: maxVersion)
    }

    func client(_ ispb: String) -> DevCertificates.CertificateFiles { files.clients[ispb]! }

    /// A client certificate with a custom subject / EKU, signed by the fixture's CA.
    func issueClient(name: String, subject: [(String, String)], extendedKeyUsage: String? = "clientAuth",
                     keyUsage: String = "critical,digitalSignature") throws
        -> DevCertificates.CertificateFiles {
        let issuer = CertificateFactory.Issuer(
            certificate: try PEMFile.readCertificates(files.authority.certificate, role: "ca")[0],
            key: try PEMFile.readPrivateKey(files.authority.key, role: "ca key"))
        let key = try sharedKey()
        let now = X509Text.nowEpochSeconds()
        let cert = try CertificateFactory.certificate(
            subject: subject, key: key, issuer: issuer, profile: .client(extendedKeyUsage: extendedKeyUsage, keyUsage: keyUsage),
            notBefore: now - 3600, notAfter: now + 86_400)
        let pair = DevCertificates.CertificateFiles(certificate: "\(directory)/custom-\(name).pem",
                                                    key: "\(directory)/custom-\(name)-key.pem")
        try DevCertificates.write(cert, key, to: pair, overwrite: true)
        return pair
    }

    /// One RSA key reused by every custom certificate (key generation is the slow part).
    private func sharedKey() throws -> PrivateKey {
        try PEMFile.readPrivateKey(files.clients[Fixture.ispbB]!.key, role: "key")
    }
}

/// A client engine and a server engine joined by memory, no sockets.
final class Link {
    let client: TLSEngine
    let server: TLSEngine
    var clientResult: TLSResult = .wantRead
    var serverResult: TLSResult = .wantRead
    /// Plaintext each side decrypted.
    var clientReceived: [UInt8] = []
    var serverReceived: [UInt8] = []
    /// Ciphertext bytes handed over per feed call (nil: everything at once).
    let chunkBytes: Int?

    init(client: TLSContext, server: TLSContext, session: TLSSession? = nil, chunkBytes: Int? = nil) {
        self.client = TLSEngine(context: client, resuming: session)
        self.server = TLSEngine(context: server)
        self.chunkBytes = chunkBytes
    }

    convenience init(clientConfig: TLSClientConfig, serverConfig: TLSServerConfig, chunkBytes: Int? = nil) throws {
        self.init(client: try TLSContext.client(clientConfig), server: try TLSContext.server(serverConfig),
                  chunkBytes: chunkBytes)
    }

    /// Starts the client's handshake and moves bytes until both sides are quiet.
    func handshake(file: StaticString = #filePath, line: UInt = #line) {
        clientResult = client.handshake()
        pump(file: file, line: line)
    }

    /// Moves ciphertext both ways until neither side has anything to send (bounded).
    func pump(file: StaticString = #filePath, line: UInt = #line) {
        for _ in 0..<100_000 {
            var moved = false
            var bytes: [UInt8] = []
            client.takeCiphertext(into: &bytes)
            if !bytes.isEmpty {
                moved = true
                serverResult = deliver(bytes, to: server, plaintext: &serverReceived)
            }
            bytes.removeAll()
            server.takeCiphertext(into: &bytes)
            if !bytes.isEmpty {
                moved = true
                clientResult = deliver(bytes, to: client, plaintext: &clientReceived)
            }
            if !moved { return }
        }
        XCTFail("engines never went quiet", file: file, line: line)
    }

    private func deliver(_ bytes: [UInt8], to engine: TLSEngine, plaintext: inout [UInt8]) -> TLSResult {
        var result = TLSResult.wantRead
        let step = chunkBytes ?? bytes.count
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + step, bytes.count)
            bytes[offset..<end].withUnsafeBytes { engine.feed($0) }
            result = engine.readPlaintext(into: &plaintext)
            offset = end
        }
        return result
    }

    func clientSends(_ bytes: [UInt8]) -> TLSResult {
        let result = bytes.withUnsafeBytes { client.writePlaintext($0) }
        pump()
        return result
    }

    func serverSends(_ bytes: [UInt8]) -> TLSResult {
        let result = bytes.withUnsafeBytes { server.writePlaintext($0) }
        pump()
        return result
    }
}

func failureKind(_ result: TLSResult) -> TLSFailure.Kind? {
    if case .failed(let failure) = result { return failure.kind }
    return nil
}

func failureReason(_ result: TLSResult) -> String {
    if case .failed(let failure) = result { return failure.reason }
    return "not failed: \(result)"
}

/// Deterministic bytes of a given length (not all equal, so misordering is detected).
func pattern(_ count: Int, seed: UInt8 = 7) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 8)) }
}
