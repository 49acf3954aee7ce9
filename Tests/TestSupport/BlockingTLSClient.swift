import Foundation
import HTTP
import TLS

/// A blocking mutual-TLS client over a POSIX socket, driving the project's TLS engine. Can
/// send its ciphertext one byte per `send` call to exercise record reassembly on the server.
public final class BlockingTLSClient {
    public let socket: BlockingClient
    public let engine: TLSEngine
    private let byteAtATime: Bool
    private var parser = HTTPResponseParser()

    /// Connects and completes the handshake; throws with the TLS failure reason when refused.
    public init(port: Int, context: TLSContext, byteAtATime: Bool = false, timeoutMs: Int = 5000,
                bindHost: String? = nil) throws {
        socket = try BlockingClient(port: port, timeoutMs: timeoutMs, bindHost: bindHost)
        engine = TLSEngine(context: context)
        self.byteAtATime = byteAtATime
        while true {
            let r = engine.handshake()
            try flush()
            switch r {
            case .ok:
                // TLS 1.3: a refused client certificate is reported on the first read; the
                // caller sees it from roundTrip.
                return
            case .wantRead:
                let bytes = try socket.receiveRaw()
                if bytes.isEmpty { throw ClientError("connection closed during the handshake") }
                bytes.withUnsafeBytes { engine.feed($0) }
            case .closed:
                throw ClientError("closed during the handshake")
            case .failed(let f):
                throw ClientError("handshake failed: \(f.reason)")
            }
        }
    }

    private func flush() throws {
        var out: [UInt8] = []
        engine.takeCiphertext(into: &out)
        if byteAtATime {
            for b in out { try socket.send([b]) }
        } else if !out.isEmpty {
            try socket.send(out)
        }
    }

    public func send(_ request: String) throws {
        let r = Array(request.utf8).withUnsafeBytes { engine.writePlaintext($0) }
        if case .failed(let f) = r { throw ClientError("write failed: \(f.reason)") }
        try flush()
    }

    /// Reads one response; `headRequest` when it answers a HEAD (a head without a body).
    public func readResponse(headRequest: Bool = false) throws -> HTTPClientResponse {
        while true {
            if case .response(let r) = parser.next(headRequest: headRequest) { return r }
            let bytes = try socket.receiveRaw()
            if bytes.isEmpty { throw ClientError("connection closed before a response") }
            bytes.withUnsafeBytes { engine.feed($0) }
            var plain: [UInt8] = []
            let result = engine.readPlaintext(into: &plain)
            try flush()
            plain.withUnsafeBytes { parser.feed($0) }
            switch result {
            case .ok, .wantRead: continue
            case .closed:
                if case .response(let r) = parser.next() { return r }
                throw ClientError("TLS closed before a response")
            case .failed(let f):
                throw ClientError("TLS failed: \(f.reason)")
            }
        }
    }

    public func roundTrip(_ request: String) throws -> HTTPClientResponse {
        try send(request)
        return try readResponse()
    }
}

/// Development certificates made by the project's own `rtpstream certs`, once per process.
public enum TestCertificates {
    nonisolated(unsafe) private static var made: String?
    private static let lock = NSLock()
    /// The send tests act as the senders and recipients the ISO 20022 fixtures name (SPI ISPBs
    /// 00038166, 10000000, 20000000) and as the ISPBs their participant directory maps BICs to.
    public static let ispbs = ["12345678", "87654321", "11111111", "00038166", "10000000", "20000000",
                               "20000001", "20000002", "20000003", "20000004", "20000005"]

    /// Directory with ca.pem, server.pem, client-<ISPB>.pem, crl.pem and the test certificates.
    public static func directory() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let made { return made }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rtpstream-certs-\(getpid())").path
        let (status, output) = try runCommand(Paths.executable("rtpstream").path,
                                              ["certs", "--out", dir, "--test-certificates", "--force"] + ispbs.flatMap { ["--ispb", $0] })
        guard status == 0 else { throw ClientError("rtpstream certs failed: \(output)") }
        made = dir
        return dir
    }

    /// Server arguments for mutual TLS with the test certificates (CRL included).
    public static func serverArguments() throws -> [String] {
        let d = try directory()
        return ["--tls-cert", "\(d)/server.pem", "--tls-key", "\(d)/server-key.pem",
                "--tls-client-ca", "\(d)/ca.pem", "--tls-crl", "\(d)/crl.pem"]
    }

    public static func clientContext(cert: String?, key: String?, maxVersion: TLSVersion = .tls13,
                                     cipherList: String? = nil) throws -> TLSContext {
        let d = try directory()
        var c = TLSClientConfig(certPath: cert.map { "\(d)/\($0)" }, keyPath: key.map { "\(d)/\($0)" },
                                caPath: "\(d)/ca.pem", serverName: "localhost")
        c.maxVersion = maxVersion
        if let cipherList { c.cipherList = cipherList }
        return try TLSContext.client(c)
    }

    public static func client(_ ispb: String, maxVersion: TLSVersion = .tls13, cipherList: String? = nil) throws -> TLSContext {
        try clientContext(cert: "client-\(ispb).pem", key: "client-\(ispb)-key.pem", maxVersion: maxVersion, cipherList: cipherList)
    }
}
