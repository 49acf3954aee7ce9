import Foundation
import Glibc

/// The real `rtpstream` binary started as a child process, for end-to-end and crash tests.
/// Standard error is captured (tests assert on log lines); the process is killed on release.
public final class ServerProcess {
    public let process = Process()
    public let apiPort: Int
    public let adminPort: Int
    private let stderrPipe = Pipe()
    private let collector = OutputCollector()

    /// Starts `rtpstream serve` with `arguments` plus free API/admin ports, and waits until
    /// /healthz answers (or throws after `startTimeoutMs`).
    public init(arguments: [String], environment: [String: String] = [:], startTimeoutMs: Int = 15_000,
                apiPort: Int? = nil, adminPort: Int? = nil) throws {
        self.apiPort = apiPort ?? freePort()
        self.adminPort = adminPort ?? freePort()
        process.executableURL = Paths.executable("rtpstream")
        process.arguments = ["serve", "--listen", "127.0.0.1:\(self.apiPort)",
                             "--admin-listen", "127.0.0.1:\(self.adminPort)"] + arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RTPSTREAM_") }
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardError = stderrPipe
        process.standardOutput = FileHandle.nullDevice
        let collector = self.collector
        stderrPipe.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            if !d.isEmpty { collector.append(d) }
        }
        try process.run()
        let deadline = Date().addingTimeInterval(Double(startTimeoutMs) / 1000)
        while Date() < deadline {
            if !process.isRunning {
                throw ClientError("rtpstream exited during start-up (\(process.terminationStatus)): \(stderr)")
            }
            if let r = try? BlockingClient(port: self.adminPort, timeoutMs: 500).roundTrip(
                "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"), r.status == 200 {
                // The start-up log is written just before the loop runs, but reaches `stderr`
                // through the pipe's reader thread: wait for its last line (bounded).
                let logged = Date().addingTimeInterval(2)
                while !stderr.contains("rtpstream serving") && Date() < logged { usleep(5_000) }
                return
            }
            usleep(20_000)
        }
        kill(SIGKILL)
        throw ClientError("rtpstream did not become healthy: \(stderr)")
    }

    deinit {
        if process.isRunning { kill(SIGKILL) }
        stderrPipe.fileHandleForReading.readabilityHandler = nil
        // RTPSTREAM_TEST_LOG_DIR=dir keeps every server's stderr for post-mortems.
        if let dir = ProcessInfo.processInfo.environment["RTPSTREAM_TEST_LOG_DIR"] {
            try? stderr.write(toFile: "\(dir)/rtpstream-\(apiPort)-\(process.processIdentifier).log", atomically: true, encoding: .utf8)
        }
    }

    public var stderr: String { collector.text }

    public func kill(_ signal: Int32) {
        Glibc.kill(process.processIdentifier, signal)
        if signal == SIGKILL { process.waitUntilExit() }
    }

    /// Waits for exit; returns the status, or nil on timeout.
    public func waitForExit(timeoutMs: Int = 15_000) -> Int32? {
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        return process.isRunning ? nil : process.terminationStatus
    }

    public func client(timeoutMs: Int = 5000) throws -> BlockingClient {
        try BlockingClient(port: apiPort, timeoutMs: timeoutMs)
    }

    public func adminGet(_ path: String) throws -> ClientResponse {
        try BlockingClient(port: adminPort).roundTrip("GET \(path) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    }

    /// The admin listener's /metrics as (series with labels → value).
    public func metrics() throws -> [String: Double] {
        let text = try adminGet("/metrics").bodyText
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            out[String(line[..<space])] = v
        }
        return out
    }
}

/// Runs a command to completion; returns (status, stdout+stderr).
@discardableResult
public func runCommand(_ path: String, _ args: [String], environment: [String: String]? = nil) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let environment { p.environment = environment }
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Bytes a child process wrote, collected from a pipe's handler thread.
final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func append(_ d: Data) {
        lock.lock()
        data.append(d)
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}
