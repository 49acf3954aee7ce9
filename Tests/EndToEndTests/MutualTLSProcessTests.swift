import Foundation
import Glibc
import TestSupport
import TLS
import XCTest

/// The real binary with mutual TLS over loopback, certificates from `rtpstream certs`.
final class MutualTLSProcessTests: XCTestCase {
    static let get = "GET /bench/fixed HTTP/1.1\r\nHost: localhost\r\n\r\n"

    func startServer(_ extra: [String] = []) throws -> (ServerProcess, TempDir) {
        let data = TempDir()
        let server = try ServerProcess(arguments: try TestCertificates.serverArguments()
            + ["--bench-fixed-response", "--data-dir", data.path] + extra)
        return (server, data)
    }

    func testValidClientsOnTLS13AndTLS12WithICOMCipher() throws {
        let (server, _) = try startServer()
        let c13 = try BlockingTLSClient(port: server.apiPort, context: try TestCertificates.client("12345678"))
        XCTAssertEqual(try c13.roundTrip(Self.get).status, 200)
        XCTAssertEqual(c13.engine.protocolVersion, "TLSv1.3")
        XCTAssertEqual(try c13.roundTrip(Self.get).body.count, 8192, "keep-alive over TLS")

        let c12 = try BlockingTLSClient(port: server.apiPort,
                                        context: try TestCertificates.client("87654321", maxVersion: .tls12,
                                                                              cipherList: "ECDHE-RSA-AES128-GCM-SHA256"))
        XCTAssertEqual(try c12.roundTrip(Self.get).status, 200)
        XCTAssertEqual(c12.engine.protocolVersion, "TLSv1.2")
        XCTAssertEqual(c12.engine.cipher, "ECDHE-RSA-AES128-GCM-SHA256")
    }

    func testRefusedClients() throws {
        let (server, _) = try startServer()
        let cases: [(String, TLSContext, String)] = [
            ("no certificate", try TestCertificates.clientContext(cert: nil, key: nil), "none presented"),
            ("other CA", try TestCertificates.clientContext(cert: "client-other-ca.pem", key: "client-other-ca-key.pem"), "unknown"),
            ("expired", try TestCertificates.clientContext(cert: "client-expired.pem", key: "client-expired-key.pem"), "expired"),
            ("revoked", try TestCertificates.clientContext(cert: "client-revoked.pem", key: "client-revoked-key.pem"), "revoked"),
        ]
        for (name, context, logged) in cases {
            do {
                let c = try BlockingTLSClient(port: server.apiPort, context: context)
                _ = try c.roundTrip(Self.get)
                XCTFail("\(name): a request succeeded")
            } catch {
                // Refused at the handshake (TLS 1.2) or on the first read (TLS 1.3 alert).
            }
            let deadline = Date().addingTimeInterval(3)
            while !server.stderr.contains(logged) && Date() < deadline { usleep(20_000) }
            XCTAssertTrue(server.stderr.contains(logged), "\(name): server log lacks '\(logged)': \(server.stderr)")
        }
    }

    func testRecordsOneByteAtATime() throws {
        let (server, _) = try startServer()
        let c = try BlockingTLSClient(port: server.apiPort, context: try TestCertificates.client("12345678"), byteAtATime: true)
        let r = try c.roundTrip(Self.get)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.body.count, 8192)
    }

    func testStalledHandshakeIsClosed() throws {
        let (server, _) = try startServer(["--handshake-timeout-seconds", "1"])
        let raw = try BlockingClient(port: server.apiPort, timeoutMs: 5000)
        try raw.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])  // the start of a ClientHello, then silence
        let start = Date()
        XCTAssertTrue(raw.waitForClose())
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertGreaterThan(elapsed, 0.5)
        XCTAssertLessThan(elapsed, 4)
        let metrics = try server.adminGet("/metrics").bodyText
        XCTAssertTrue(metrics.contains("rtpstream_http_timeouts_total{listener=\"api\",kind=\"handshake\"} 1"), metrics)
    }

    func testPlaintextToTheTLSPortIsRefused() throws {
        let (server, _) = try startServer()
        let raw = try BlockingClient(port: server.apiPort)
        try raw.send(Self.get)
        XCTAssertTrue(raw.waitForClose())
    }

    func testHandshakeFloodDoesNotStarveEstablishedConnections() throws {
        let (server, _) = try startServer()
        let established = try BlockingTLSClient(port: server.apiPort, context: try TestCertificates.client("12345678"))
        XCTAssertEqual(try established.roundTrip(Self.get).status, 200)
        let stop = Flag()
        let handshakes = Counter()
        var flooders: [Thread] = []
        let context = try TestCertificates.client("87654321")
        let port = server.apiPort
        for _ in 0..<6 {
            let t = Thread {
                while !stop.isSet {
                    if let c = try? BlockingTLSClient(port: port, context: context), (try? c.roundTrip(Self.get)) != nil {
                        handshakes.add()
                    }
                }
            }
            t.start()
            flooders.append(t)
        }
        Thread.sleep(forTimeInterval: 0.5)
        var worstMs = 0.0
        for _ in 0..<100 {
            let t0 = Date()
            XCTAssertEqual(try established.roundTrip(Self.get).status, 200)
            worstMs = max(worstMs, Date().timeIntervalSince(t0) * 1000)
        }
        stop.set()
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertGreaterThan(handshakes.value, 10, "the flood must really handshake")
        XCTAssertLessThan(worstMs, 1000, "an established connection waited \(worstMs) ms behind handshakes")
        print("handshake flood: \(handshakes.value) full handshakes, worst established request \(Int(worstMs)) ms")
    }
}

extension MutualTLSProcessTests {
    /// 300 ClientHellos arrive at once: without a per-turn handshake budget the loop would spend
    /// ~2 ms of RSA signing on each before serving anything else (~600 ms).
    func testBurstOfClientHellosDoesNotStallTheLoop() throws {
        // 300 handshakes from one address: above the default per-address limit (128).
        let (server, _) = try startServer(["--handshakes-per-address-max", "300"])
        let established = try BlockingTLSClient(port: server.apiPort, context: try TestCertificates.client("12345678"))
        XCTAssertEqual(try established.roundTrip(Self.get).status, 200)
        let helloEngine = TLSEngine(context: try TestCertificates.client("87654321"))
        _ = helloEngine.handshake()
        var hello: [UInt8] = []
        helloEngine.takeCiphertext(into: &hello)
        XCTAssertGreaterThan(hello.count, 100)
        let raws = try (0..<300).map { _ in try BlockingClient(port: server.apiPort, timeoutMs: 10_000) }
        Thread.sleep(forTimeInterval: 0.2)  // all accepted
        for r in raws { try r.send(hello) }
        let t0 = Date()
        XCTAssertEqual(try established.roundTrip(Self.get).status, 200)
        let ms = Date().timeIntervalSince(t0) * 1000
        print("burst of 300 ClientHellos: established request answered in \(Int(ms)) ms")
        XCTAssertLessThan(ms, 250, "the loop stalled \(Int(ms)) ms behind a burst of handshakes")
        // The burst is still served: every connection gets its ServerHello eventually.
        for r in raws.prefix(20) { XCTAssertFalse(try r.receiveRaw().isEmpty) }
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
    func add() { lock.lock(); n += 1; lock.unlock() }
}

extension MutualTLSProcessTests {
    /// SIGHUP reloads certificate, key, client CA bundle and CRL from the same paths: new
    /// handshakes use the new files, an open connection keeps working, a broken file keeps the
    /// previous context.
    func testSIGHUPReloadsCertificatesWithoutDroppingConnections() throws {
        let old = try TestCertificates.directory()
        let fresh = TempDir("rtpstream-certs-reload")
        let (status, output) = try runCommand(Paths.executable("rtpstream").path,
                                              ["certs", "--out", fresh.path, "--ispb", "12345678", "--force"])
        XCTAssertEqual(status, 0, output)
        let live = TempDir("rtpstream-certs-live")
        func install(_ dir: String) throws {
            for name in ["server.pem", "server-key.pem", "ca.pem", "crl.pem"] {
                let target = live.url.appendingPathComponent(name)
                try? FileManager.default.removeItem(at: target)
                try FileManager.default.copyItem(atPath: "\(dir)/\(name)", toPath: target.path)
            }
        }
        try install(old)
        let data = TempDir()
        let server = try ServerProcess(arguments: [
            "--tls-cert", live.url.appendingPathComponent("server.pem").path,
            "--tls-key", live.url.appendingPathComponent("server-key.pem").path,
            "--tls-client-ca", live.url.appendingPathComponent("ca.pem").path,
            "--tls-crl", live.url.appendingPathComponent("crl.pem").path,
            "--bench-fixed-response", "--data-dir", data.path])
        let oldClient = try TestCertificates.client("12345678")
        let open = try BlockingTLSClient(port: server.apiPort, context: oldClient)
        XCTAssertEqual(try open.roundTrip(Self.get).status, 200)

        func freshClient() throws -> TLSContext {
            try TLSContext.client(TLSClientConfig(certPath: "\(fresh.path)/client-12345678.pem",
                                                  keyPath: "\(fresh.path)/client-12345678-key.pem",
                                                  caPath: "\(fresh.path)/ca.pem", serverName: "localhost"))
        }
        XCTAssertThrowsError(try BlockingTLSClient(port: server.apiPort, context: freshClient()).roundTrip(Self.get),
                             "before the reload the new CA is unknown")

        try install(fresh.path)
        server.kill(SIGHUP)
        let deadline = Date().addingTimeInterval(5)
        while !server.stderr.contains("TLS reloaded") && Date() < deadline { usleep(20_000) }
        XCTAssertTrue(server.stderr.contains("TLS reloaded"), server.stderr)

        XCTAssertEqual(try BlockingTLSClient(port: server.apiPort, context: freshClient()).roundTrip(Self.get).status, 200)
        XCTAssertThrowsError(try BlockingTLSClient(port: server.apiPort, context: oldClient).roundTrip(Self.get),
                             "new handshakes use the new files")
        XCTAssertEqual(try open.roundTrip(Self.get).status, 200, "the open connection keeps its context")

        // A broken file: the reload fails loudly and the current context stays.
        try Data("garbage".utf8).write(to: live.url.appendingPathComponent("server.pem"))
        server.kill(SIGHUP)
        let deadline2 = Date().addingTimeInterval(5)
        while !server.stderr.contains("TLS reload failed") && Date() < deadline2 { usleep(20_000) }
        XCTAssertTrue(server.stderr.contains("TLS reload failed"), server.stderr)
        XCTAssertEqual(try BlockingTLSClient(port: server.apiPort, context: freshClient()).roundTrip(Self.get).status, 200)
        server.kill(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
    }

    /// A CRL update reaches open connections: after SIGHUP with a CRL that revokes a client
    /// certificate, that client's keep-alive connection is closed (before: served on until it
    /// hung up), another client's connection keeps working, and new handshakes are refused.
    func testSIGHUPWithANewCRLClosesConnectionsOfRevokedCertificates() throws {
        let certs = TempDir("rtpstream-certs-revoke")
        let rtpstream = Paths.executable("rtpstream").path
        let (status, output) = try runCommand(rtpstream, ["certs", "--out", certs.path, "--ispb", "12345678",
                                                          "--ispb", "87654321", "--force"])
        XCTAssertEqual(status, 0, output)
        let live = TempDir("rtpstream-crl-live")
        let crl = live.url.appendingPathComponent("crl.pem").path
        try FileManager.default.copyItem(atPath: "\(certs.path)/crl.pem", toPath: crl)
        let data = TempDir()
        let server = try ServerProcess(arguments: [
            "--tls-cert", "\(certs.path)/server.pem", "--tls-key", "\(certs.path)/server-key.pem",
            "--tls-client-ca", "\(certs.path)/ca.pem", "--tls-crl", crl,
            "--bench-fixed-response", "--data-dir", data.path])
        func client(_ ispb: String) throws -> TLSContext {
            try TLSContext.client(TLSClientConfig(certPath: "\(certs.path)/client-\(ispb).pem",
                                                  keyPath: "\(certs.path)/client-\(ispb)-key.pem",
                                                  caPath: "\(certs.path)/ca.pem", serverName: "localhost"))
        }
        let doomed = try BlockingTLSClient(port: server.apiPort, context: client("12345678"))
        let other = try BlockingTLSClient(port: server.apiPort, context: client("87654321"))
        XCTAssertEqual(try doomed.roundTrip(Self.get).status, 200)
        XCTAssertEqual(try other.roundTrip(Self.get).status, 200)

        let (revokeStatus, revokeOutput) = try runCommand(rtpstream, ["certs", "--out", certs.path,
                                                                      "--revoke", "\(certs.path)/client-12345678.pem"])
        XCTAssertEqual(revokeStatus, 0, revokeOutput)
        try FileManager.default.removeItem(atPath: crl)
        try FileManager.default.copyItem(atPath: "\(certs.path)/crl.pem", toPath: crl)
        server.kill(SIGHUP)
        let deadline = Date().addingTimeInterval(5)
        while !server.stderr.contains("TLS reloaded") && Date() < deadline { usleep(20_000) }
        XCTAssertTrue(server.stderr.contains("TLS reloaded"), server.stderr)

        XCTAssertThrowsError(try doomed.roundTrip(Self.get), "the revoked certificate's open connection is closed")
        XCTAssertEqual(try other.roundTrip(Self.get).status, 200, "other connections are untouched")
        XCTAssertThrowsError(try BlockingTLSClient(port: server.apiPort, context: client("12345678")).roundTrip(Self.get),
                             "and new handshakes with it are refused")
        XCTAssertTrue(server.stderr.contains("client certificate is now revoked"), server.stderr)
        let metrics = try server.adminGet("/metrics").bodyText
        XCTAssertTrue(metrics.contains("rtpstream_http_connections_revoked_total{listener=\"api\"} 1"), metrics)
        server.kill(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
    }
}
