import Foundation
import Glibc
import TLS

/// `--spawn`: a redis-server and the release `rtpstream` next to `loadtest`, on free loopback
/// ports, in a temporary directory (data, logs, development certificates). Stopped (and the
/// directory removed unless kept) by `stop()`.
final class SpawnedHub {
    let work: String
    let certsDir: String?
    let redisPort: Int
    private(set) var apiPort = 0
    private(set) var adminPort = 0
    private(set) var tls = false
    private var redis: Child?
    private var hub: Child?
    private let rtpstream: String
    private let keep: Bool
    private var hubStarts = 0
    /// Spawned hubs in this process (each gets its own directory).
    nonisolated(unsafe) private static var instances = 0

    /// Starts Redis; the hub is started by `startHub`. `certsDir`: reuse or write the
    /// certificates there instead of the temporary directory.
    init(ispbs: [String], tls: Bool, certsDir: String?, keep: Bool, executable: String? = nil, log: (String) -> Void) throws {
        rtpstream = try executable ?? siblingExecutable("rtpstream")
        let redisServer = try which("redis-server")
        SpawnedHub.instances += 1
        work = NSTemporaryDirectory() + "rtpstream-loadtest-\(getpid())-\(SpawnedHub.instances)"
        self.keep = keep
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        if tls {
            let dir = certsDir ?? "\(work)/certs"
            try SpawnedHub.ensureCertificates(dir: dir, ispbs: ispbs, log: log)
            self.certsDir = dir
        } else {
            self.certsDir = certsDir
        }
        redisPort = freePort()
        redis = try Child("redis-server", redisServer, [
            "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", work, "--logfile", "\(work)/redis.log", "--daemonize", "no",
        ])
        try waitForPort(redisPort)
    }

    deinit { stop() }

    var redisPID: Int32 { redis?.process.processIdentifier ?? 0 }
    var hubPID: Int32 { hub?.process.processIdentifier ?? 0 }
    var dataDir: String { "\(work)/data" }

    var target: Target { Target(host: "127.0.0.1", port: apiPort, tls: tls, certsDir: certsDir) }

    /// Starts `rtpstream serve` (mutual TLS with the development certificates, or plaintext)
    /// with `arguments` appended, and waits until /readyz answers 200. The data directory is
    /// kept across restarts.
    func startHub(tls: Bool, arguments: [String]) throws {
        precondition(hub == nil, "hub already running")
        self.tls = tls
        apiPort = freePort()
        adminPort = freePort()
        var args = ["serve", "--listen", "127.0.0.1:\(apiPort)", "--admin-listen", "127.0.0.1:\(adminPort)",
                    "--data-dir", dataDir, "--redis", "redis://127.0.0.1:\(redisPort)", "--log-level", "warning"]
        if tls {
            guard let dir = certsDir else { throw LoadTestError("no certificates for mutual TLS") }
            args += ["--tls-cert", "\(dir)/server.pem", "--tls-key", "\(dir)/server-key.pem",
                     "--tls-client-ca", "\(dir)/ca.pem"]
        } else {
            args.append("--insecure-plaintext")
        }
        // The load generator is one loopback address opening hundreds of connections at once:
        // lift the per-address admission limits (`arguments` may set them again).
        args += ["--connections-per-address-max", "1000000", "--handshakes-per-address-max", "1000000"]
        args += arguments
        hubStarts += 1
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RTPSTREAM_") }
        let child = try Child("rtpstream", rtpstream, args, logPath: "\(work)/rtpstream-\(hubStarts).log",
                              environment: environment)
        hub = child
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            guard child.process.isRunning else {
                let log = (try? String(contentsOfFile: "\(work)/rtpstream-\(hubStarts).log", encoding: .utf8)) ?? ""
                hub = nil
                throw LoadTestError("rtpstream exited at start: \(log.suffix(2000))")
            }
            if (try? httpStatus(port: adminPort, path: "/readyz")) == 200 { return }
            usleep(50_000)
        }
        throw LoadTestError("rtpstream did not become ready within 30 s")
    }

    /// Why the hub or Redis is no longer running, nil while both are.
    func deathReason() -> String? {
        if let hub, !hub.process.isRunning {
            return "rtpstream exited (status \(hub.process.terminationStatus))"
        }
        if let redis, !redis.process.isRunning { return "redis-server exited" }
        return nil
    }

    /// SIGTERM (clean shutdown, journal flushed) and wait.
    func stopHub() {
        hub?.stop(SIGTERM, timeoutSeconds: 20)
        hub = nil
    }

    /// The tail of the current hub log (for failure reports).
    func hubLogTail(bytes: Int = 4000) -> String {
        let log = (try? String(contentsOfFile: "\(work)/rtpstream-\(hubStarts).log", encoding: .utf8)) ?? ""
        return String(log.suffix(bytes))
    }

    func stop() {
        stopHub()
        redis?.stop(SIGTERM)
        redis = nil
        if !keep { try? FileManager.default.removeItem(atPath: work) }
    }

    /// Bytes used by the hub's data directory.
    func dataBytes() -> UInt64 {
        guard let e = FileManager.default.enumerator(atPath: dataDir) else { return 0 }
        var total: UInt64 = 0
        while let f = e.nextObject() as? String {
            if let a = try? FileManager.default.attributesOfItem(atPath: "\(dataDir)/\(f)"),
               let size = a[.size] as? NSNumber, (a[.type] as? FileAttributeType) == .typeRegular {
                total += size.uint64Value
            }
        }
        return total
    }

    /// Reuses a complete certificate directory, or writes one (RSA 2048 keys: ~50 ms each).
    static func ensureCertificates(dir: String, ispbs: [String], log: (String) -> Void) throws {
        let fm = FileManager.default
        let complete = ["ca.pem", "server.pem", "server-key.pem"].allSatisfy { fm.fileExists(atPath: "\(dir)/\($0)") }
            && ispbs.allSatisfy { fm.fileExists(atPath: "\(dir)/client-\($0).pem") && fm.fileExists(atPath: "\(dir)/client-\($0)-key.pem") }
        if complete { return }
        let t0 = Date()
        log("writing development certificates for \(ispbs.count) PSPs into \(dir) …")
        do {
            _ = try DevCertificates.generate(in: dir, options: .init(clientISPBs: ispbs, overwrite: true))
        } catch {
            throw LoadTestError("certificates: \(error)")
        }
        log(String(format: "certificates written in %.1f s", Date().timeIntervalSince(t0)))
    }
}

/// Status code of a plain `GET path` on a loopback port (blocking, 2 s timeout).
func httpStatus(port: Int, path: String) throws -> Int {
    let fd = connectLoopback(port, receiveTimeoutSeconds: 2)
    guard fd >= 0 else { throw LoadTestError("connect: errno \(errno)") }
    defer { close(fd) }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var buffer = [UInt8](repeating: 0, count: 512)
    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    guard n >= 12, let status = Int(String(decoding: buffer[9..<12], as: UTF8.self)) else {
        throw LoadTestError("no HTTP answer")
    }
    return status
}
