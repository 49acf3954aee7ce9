import Foundation
import Glibc
import TestSupport
import XCTest

/// The real binary given one bad `serve` value at a time: it must exit by itself, non-zero,
/// with exactly one line on standard error naming the option, and never crash (no SIGILL,
/// no Swift backtrace), whatever stage of start-up the value is found in.
final class BadConfigurationProcessTests: XCTestCase {
    /// One kind of bad value: what to add to otherwise good arguments, and the option the line must name.
    struct Case {
        let name: String
        let arguments: [String]
        let option: String
        var tls = false
        var environment: [String: String] = [:]
    }

    /// Runs `rtpstream serve` with fresh ports and data directory (unless the case gives its
    /// own) and checks the outcome. Returns the stderr line for further checks.
    @discardableResult
    func check(_ c: Case, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let scratch = TempDir("rtpstream-badcfg")
        // A marker in the arguments finds any process the run may have left behind.
        let marker = scratch.path
        var args = ["serve"]
        if !c.arguments.contains("--listen") { args += ["--listen", "127.0.0.1:\(freePort())"] }
        if !c.arguments.contains("--admin-listen") { args += ["--admin-listen", "127.0.0.1:\(freePort())"] }
        if !c.arguments.contains("--data-dir") { args += ["--data-dir", "\(marker)/data"] }
        args += c.tls ? try TestCertificates.serverArguments() : ["--insecure-plaintext"]
        args += c.arguments
        if !args.contains(where: { $0.contains(marker) }) { args += ["--audit-log", "\(marker)/audit.jsonl"] }

        let errPath = "\(marker)/stderr.txt"
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let errHandle = try XCTUnwrap(FileHandle(forWritingAtPath: errPath))
        let p = Process()
        p.executableURL = Paths.executable("rtpstream")
        p.arguments = args
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RTPSTREAM_") }
        for (k, v) in c.environment { env[k] = v }
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = errHandle
        try p.run()
        let pid = p.processIdentifier
        let deadline = Date().addingTimeInterval(20)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        let exitedByItself = !p.isRunning
        if !exitedByItself {
            Glibc.kill(pid, SIGKILL)
            p.waitUntilExit()
        }
        try errHandle.close()
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        let context = "\(c.name): \(args.joined(separator: " "))\n\(stderr)"

        XCTAssertTrue(exitedByItself, "did not exit within 20 s: \(context)", file: file, line: line)
        XCTAssertEqual(p.terminationReason, .exit, "killed by signal \(p.terminationStatus): \(context)", file: file, line: line)
        XCTAssertNotEqual(p.terminationStatus, 0, "must fail: \(context)", file: file, line: line)
        let lines = stderr.split(separator: "\n", omittingEmptySubsequences: true)
        XCTAssertEqual(lines.count, 1, "exactly one line on stderr: \(context)", file: file, line: line)
        let first = lines.first.map(String.init) ?? ""
        XCTAssertTrue(first.hasPrefix("rtpstream: "), "line shape: \(context)", file: file, line: line)
        XCTAssertTrue(first.contains(c.option), "must name \(c.option): \(context)", file: file, line: line)
        for crash in ["Backtrace", "Fatal error", "SIGILL", "precondition", "Crash"] {
            XCTAssertFalse(stderr.contains(crash), "crash output: \(context)", file: file, line: line)
        }
        XCTAssertEqual(Self.processesMentioning(marker), [], "leftover process: \(context)", file: file, line: line)
        return first
    }

    /// PIDs of live processes whose command line mentions `marker`.
    static func processesMentioning(_ marker: String) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var out: [Int32] = []
        for e in entries {
            guard let pid = Int32(e), pid != getpid(),
                  let data = FileManager.default.contents(atPath: "/proc/\(e)/cmdline") else { continue }
            let cmdline = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            if cmdline.contains(marker) { out.append(pid) }
        }
        return out
    }

    /// A regular file with `text` in a directory that lives as long as the test.
    func file(_ text: String, in dir: TempDir, named name: String) -> String {
        let path = "\(dir.path)/\(name)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    // MARK: files that are missing or are not what they should be

    func testMissingOrUnusableTLSFiles() throws {
        let certs = try TestCertificates.directory()
        let dir = TempDir("rtpstream-badcfg-files")
        let text = file("not a PEM file\n", in: dir, named: "junk.pem")
        let cases = [
            Case(name: "certificate missing", arguments: ["--tls-cert", "/nonexistent/server.pem"], option: "--tls-cert", tls: true),
            Case(name: "key missing", arguments: ["--tls-key", "/nonexistent/server-key.pem"], option: "--tls-key", tls: true),
            Case(name: "client CA missing", arguments: ["--tls-client-ca", "/nonexistent/ca.pem"], option: "--tls-client-ca", tls: true),
            Case(name: "CRL missing", arguments: ["--tls-crl", "/nonexistent/crl.pem"], option: "--tls-crl", tls: true),
            Case(name: "certificate is not PEM", arguments: ["--tls-cert", text], option: "--tls-cert", tls: true),
            Case(name: "certificate is a directory", arguments: ["--tls-cert", dir.path], option: "--tls-cert", tls: true),
            Case(name: "key does not match the certificate", arguments: ["--tls-key", "\(certs)/client-12345678-key.pem"],
                 option: "--tls-key", tls: true),
            Case(name: "certificate expired", arguments: ["--tls-cert", "\(certs)/client-expired.pem",
                                                          "--tls-key", "\(certs)/client-expired-key.pem"], option: "--tls-cert", tls: true),
            Case(name: "client CA is not a certificate", arguments: ["--tls-client-ca", "\(certs)/server-key.pem"],
                 option: "--tls-client-ca", tls: true),
            Case(name: "CRL is not a CRL", arguments: ["--tls-crl", "\(certs)/ca.pem"], option: "--tls-crl", tls: true),
            Case(name: "no usable cipher", arguments: ["--tls-ciphers", "NO-SUCH-CIPHER"], option: "--tls-ciphers", tls: true),
        ]
        for c in cases { try check(c) }
    }

    func testMissingOrUnusableOtherFiles() throws {
        let dir = TempDir("rtpstream-badcfg-files")
        let text = file("this is not a schema\n", in: dir, named: "not.xsd")
        let short = file("short", in: dir, named: "short.key")
        let badParticipants = file("only-one-field\n", in: dir, named: "participants.txt")
        let cases = [
            Case(name: "schema missing", arguments: ["--schema", "/nonexistent.xsd"], option: "--schema"),
            Case(name: "schema is not an XSD", arguments: ["--schema", text], option: "--schema"),
            Case(name: "schema is a directory", arguments: ["--schema", dir.path], option: "--schema"),
            Case(name: "token key missing", arguments: ["--token-key-file", "/nonexistent/token.key"], option: "--token-key-file"),
            Case(name: "token key too short", arguments: ["--token-key-file", short], option: "--token-key-file"),
            Case(name: "participants missing", arguments: ["--participants", "/nonexistent/participants.txt"], option: "--participants"),
            Case(name: "participants malformed", arguments: ["--participants", badParticipants], option: "--participants"),
            Case(name: "config file missing", arguments: ["--config", "/nonexistent/rtpstream.conf"], option: "--config"),
            Case(name: "config file in the environment missing", arguments: [], option: "--config",
                 environment: ["RTPSTREAM_CONFIG": "/nonexistent/rtpstream.conf"]),
        ]
        for c in cases { try check(c) }
    }

    // MARK: directories

    /// The tests run as root, for whom permission bits and `chattr` do not stop writes; a path
    /// whose parent is a regular file fails for root too (ENOTDIR).
    func testUnusableDataDirectoryAndAuditLog() throws {
        let dir = TempDir("rtpstream-badcfg-dirs")
        let plain = file("x", in: dir, named: "plain-file")
        let cases = [
            Case(name: "data dir is a file", arguments: ["--data-dir", plain], option: "--data-dir"),
            Case(name: "data dir under a file", arguments: ["--data-dir", "\(plain)/data"], option: "--data-dir"),
            Case(name: "audit log is a directory", arguments: ["--audit-log", dir.path], option: "--audit-log"),
            Case(name: "audit log under a file", arguments: ["--audit-log", "\(plain)/audit.jsonl"], option: "--audit-log"),
        ]
        for c in cases { try check(c) }
    }

    /// A data directory another hub holds fails in the second phase of start-up (storage,
    /// after the loop-bound objects exist): the first hub keeps running.
    func testDataDirectoryInUseByAnotherHub() throws {
        let data = TempDir("rtpstream-badcfg-inuse")
        let first = try ServerProcess(arguments: ["--insecure-plaintext", "--data-dir", data.path])
        let line = try check(Case(name: "data dir in use", arguments: ["--data-dir", data.path], option: "--data-dir"))
        XCTAssertTrue(line.contains("in use by another process"), line)
        XCTAssertEqual(try first.adminGet("/healthz").status, 200)
        first.kill(SIGTERM)
        XCTAssertEqual(first.waitForExit(), 0, first.stderr)
    }

    // MARK: addresses, URLs, numbers

    func testMalformedAddressesURLsAndNumbers() throws {
        let cases = [
            Case(name: "listen not HOST:PORT", arguments: ["--listen", "nowhere"], option: "--listen"),
            Case(name: "listen host not an address", arguments: ["--listen", "no-such-host.invalid:8443"], option: "--listen"),
            Case(name: "listen port out of range", arguments: ["--listen", "127.0.0.1:70000"], option: "--listen"),
            Case(name: "admin listen bad address", arguments: ["--admin-listen", "300.1.2.3:9090"], option: "--admin-listen"),
            Case(name: "redis not a URL", arguments: ["--redis", "http://127.0.0.1:6379"], option: "--redis"),
            Case(name: "redis bad port", arguments: ["--redis", "redis://127.0.0.1:notaport"], option: "--redis"),
            Case(name: "number out of range", arguments: ["--worker-threads", "0"], option: "--worker-threads"),
            Case(name: "not a number", arguments: ["--long-poll-seconds", "soon"], option: "--long-poll-seconds"),
            Case(name: "number out of range in the environment", arguments: [], option: "--slots-per-ispb",
                 environment: ["RTPSTREAM_SLOTS_PER_ISPB": "65"]),
        ]
        for c in cases { try check(c) }
    }

    // MARK: ports in use (the second listener fails after the first is open)

    func testPortAlreadyInUse() throws {
        let holder = try ListeningSocket()
        try check(Case(name: "API port in use", arguments: ["--listen", "127.0.0.1:\(holder.port)"], option: "--listen"))
        try check(Case(name: "admin port in use", arguments: ["--admin-listen", "127.0.0.1:\(holder.port)"], option: "--admin-listen"))
        try check(Case(name: "API port in use with TLS", arguments: ["--listen", "127.0.0.1:\(holder.port)"], option: "--listen", tls: true))
    }

    // MARK: signals during start-up

    /// SIGTERM at any moment of start-up ends the process without a crash: either before the
    /// hub handles signals (terminated by SIGTERM) or cleanly (exit 0) once it does.
    func testSigtermDuringStartUpNeverCrashes() throws {
        for delayMs in [0, 2, 5, 10, 20, 40, 80, 160] {
            let dir = TempDir("rtpstream-badcfg-sigterm")
            let errPath = file("", in: dir, named: "stderr.txt")
            let errHandle = try XCTUnwrap(FileHandle(forWritingAtPath: errPath))
            let p = Process()
            p.executableURL = Paths.executable("rtpstream")
            p.arguments = ["serve", "--insecure-plaintext", "--listen", "127.0.0.1:\(freePort())",
                           "--admin-listen", "127.0.0.1:\(freePort())", "--data-dir", "\(dir.path)/data"]
            p.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RTPSTREAM_") }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = errHandle
            try p.run()
            usleep(useconds_t(delayMs * 1000))
            Glibc.kill(p.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(20)
            while p.isRunning && Date() < deadline { usleep(10_000) }
            if p.isRunning {
                Glibc.kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                XCTFail("\(delayMs) ms: still running 20 s after SIGTERM")
            }
            try errHandle.close()
            let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            let clean = p.terminationReason == .exit && p.terminationStatus == 0
            let killed = p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGTERM
            XCTAssertTrue(clean || killed, "\(delayMs) ms: reason \(p.terminationReason.rawValue) status \(p.terminationStatus)\n\(stderr)")
            XCTAssertFalse(stderr.contains("Backtrace") || stderr.contains("Fatal error"), "\(delayMs) ms: \(stderr)")
            XCTAssertEqual(Self.processesMentioning(dir.path), [], "\(delayMs) ms: leftover process")
        }
    }
}

/// A TCP socket listening on a free loopback port, closed on release.
final class ListeningSocket {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else {
            Glibc.close(fd)
            throw NSError(domain: "ListeningSocket", code: Int(errno))
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { Glibc.close(fd) }
}
