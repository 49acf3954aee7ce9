import Foundation
import Glibc
import HTTP
import TLS

/// A complete hub for end-to-end tests: a real redis-server on a free port, the real
/// `rtpstream` binary (mutual TLS with `rtpstream certs` certificates unless `tls: false`), a
/// data directory that survives restarts, clients per ISPB.
public final class HubHarness {
    public let redis: RedisServer
    public let data: TempDir
    public let tls: Bool
    public private(set) var server: ServerProcess
    public let arguments: [String]

    /// `arguments` are extra `rtpstream serve` options (e.g. `--long-poll-seconds 1`).
    public init(tls: Bool = true, arguments: [String] = [], redis: RedisServer? = nil) throws {
        self.redis = try redis ?? RedisServer()
        data = TempDir("rtpstream-hub")
        self.tls = tls
        self.arguments = arguments
        server = try Self.start(tls: tls, redis: self.redis, data: data, arguments: arguments, apiPort: nil, adminPort: nil)
    }

    private static func start(tls: Bool, redis: RedisServer, data: TempDir, arguments: [String],
                              apiPort: Int?, adminPort: Int?) throws -> ServerProcess {
        let security = tls ? try TestCertificates.serverArguments() : ["--insecure-plaintext"]
        return try ServerProcess(arguments: security + ["--data-dir", data.path, "--redis", redis.url] + arguments,
                                 apiPort: apiPort, adminPort: adminPort)
    }

    /// Stops the hub with `signal` (SIGKILL for a crash) and starts it again on the same ports
    /// and data directory. Returns the previous process's stderr.
    @discardableResult
    public func restart(signal: Int32 = SIGKILL, arguments extra: [String]? = nil) throws -> String {
        server.kill(signal)
        _ = server.waitForExit()
        let log = server.stderr
        server = try Self.start(tls: tls, redis: redis, data: data, arguments: extra ?? arguments,
                                apiPort: server.apiPort, adminPort: server.adminPort)
        return log
    }

    /// A client acting as `ispb` (its certificate under mutual TLS).
    public func client(_ ispb: String, timeoutMs: Int = 10_000) throws -> HubClient {
        try HubClient(harness: self, ispb: ispb, timeoutMs: timeoutMs)
    }

    public var apiPort: Int { server.apiPort }
}

/// One keep-alive connection to the hub, as one PSP.
public final class HubClient {
    public let ispb: String
    private let tlsClient: BlockingTLSClient?
    private let plain: BlockingClient?
    private var parser = HTTPResponseParser()

    init(harness: HubHarness, ispb: String, timeoutMs: Int) throws {
        self.ispb = ispb
        if harness.tls {
            tlsClient = try BlockingTLSClient(port: harness.apiPort, context: try TestCertificates.client(ispb), timeoutMs: timeoutMs)
            plain = nil
        } else {
            plain = try BlockingClient(port: harness.apiPort, timeoutMs: timeoutMs)
            tlsClient = nil
        }
    }

    /// Sends one request and reads its response. `headers` are extra header lines.
    public func request(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8] = []) throws -> HTTPClientResponse {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + body
        if let tlsClient {
            let r = bytes.withUnsafeBytes { tlsClient.engine.writePlaintext($0) }
            if case .failed(let f) = r { throw ClientError("TLS write failed: \(f.reason)") }
            try tlsClient.flushPublic()
            return try tlsClient.readResponse(headRequest: method == "HEAD")
        }
        try plain!.send(bytes)
        while true {
            if case .response(let r) = parser.next(headRequest: method == "HEAD") { return r }
            let chunk = try plain!.receiveRaw()
            if chunk.isEmpty { throw ClientError("connection closed") }
            chunk.withUnsafeBytes { parser.feed($0) }
        }
    }

    /// POST one XML message.
    public func send(_ xml: [UInt8], as pathISPB: String? = nil) throws -> HTTPClientResponse {
        try request("POST", "/api/v1/in/\(pathISPB ?? ispb)/msgs", headers: [("Content-Type", "application/xml")], body: xml)
    }

    public func get(_ path: String, accept: String? = nil) throws -> HTTPClientResponse {
        try request("GET", path, headers: accept.map { [("Accept", $0)] } ?? [])
    }

    public func delete(_ path: String) throws -> HTTPClientResponse {
        try request("DELETE", path)
    }
}

extension BlockingTLSClient {
    func flushPublic() throws {
        var out: [UInt8] = []
        engine.takeCiphertext(into: &out)
        if !out.isEmpty { try socket.send(out) }
    }
}
