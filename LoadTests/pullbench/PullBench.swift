import ArgumentParser
import Foundation
import Glibc
import HTTP
import ISO20022
import TestSupport

/// `pullbench`: the CPU cost of the pull path per request. Starts a redis-server and the
/// `rtpstream` next to this binary (plaintext, so TLS is not in the figure), stores messages,
/// then `--streams` streams (one thread and keep-alive connection each) pull everything with
/// durable acknowledgements, following their pointers. Reports pulls/s and the CPU the hub and
/// redis-server spent per pull (utime + stime from /proc/<pid>/stat around the pull phase).
///
/// With `--port` it drives a hub started elsewhere instead (e.g. under
/// `valgrind --tool=callgrind --instr-atstart=no`); `--after-send` runs a shell command between
/// the phases (e.g. `callgrind_control -i on`).
@main
struct PullBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pullbench",
        abstract: "Pull path CPU per request: send N messages, pull them all back with acknowledgements.")

    @Option(help: "Messages to store and pull back.") var messages = 20_000
    @Option(help: "Concurrent streams (threads, one connection each), at most 6.") var streams = 6
    @Option(help: "Messages per pull: 10 (multipart/mixed) or 1 (application/xml).") var batch = 10
    @Option(help: "API port of a hub started elsewhere (plaintext, recipient partition empty).") var port: Int?
    @Option(help: "Shell command run after the messages are stored, before pulling.") var afterSend: String?

    func validate() throws {
        guard messages >= 10, (1...6).contains(streams), batch == 1 || batch == 10 else {
            throw ValidationError("messages >= 10, streams 1...6, batch 1 or 10")
        }
    }

    static let sender = "12345678"
    static let recipient = "87654321"

    func run() throws {
        var redis: RedisServer?
        var hub: ServerProcess?
        let data = TempDir("pullbench")
        let apiPort: Int
        if let port {
            apiPort = port
        } else {
            redis = try RedisServer()
            hub = try ServerProcess(arguments: ["--insecure-plaintext", "--data-dir", data.path, "--redis", redis!.url,
                                                "--long-poll-seconds", "1", "--log-level", "warning"])
            apiPort = hub!.apiPort
        }

        let t0 = now()
        try send(port: apiPort)
        let sendSeconds = now() - t0
        print(String(format: "stored %d messages in %.2f s (%.0f msg/s)", messages, sendSeconds, Double(messages) / sendSeconds))
        if let afterSend { _ = try runCommand("/bin/sh", ["-c", afterSend]) }

        let hubTicks0 = try hub.map { try RedisServer.cpuTicks(pid: $0.process.processIdentifier) }
        let redisTicks0 = try redis?.cpuTicks()
        let t1 = now()
        let pulls = try pullEverything(port: apiPort)
        let seconds = now() - t1
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        print(String(format: "%d pulls of up to %d in %.2f s: %.0f pulls/s (%d streams)", pulls, batch, seconds,
                     Double(pulls) / seconds, streams))
        if let hub, let hubTicks0, let redis, let redisTicks0 {
            let hubCPU = Double(try RedisServer.cpuTicks(pid: hub.process.processIdentifier) - hubTicks0) / tick
            let redisCPU = Double(try redis.cpuTicks() - redisTicks0) / tick
            print(String(format: "hub CPU %.1f µs per pull (%.2f s), redis-server CPU %.1f µs per pull; hub at 100%% of one core: %.0f pulls/s",
                         hubCPU * 1e6 / Double(pulls), hubCPU, redisCPU * 1e6 / Double(pulls), Double(pulls) / hubCPU))
        }
        hub?.kill(SIGTERM)
        _ = hub?.waitForExit()
    }

    func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Ten per multipart request on one connection.
    func send(port: Int) throws {
        let client = try BlockingClient(port: port, timeoutMs: 30_000)
        let generator = Pacs008Generator(runTag: Pacs008Generator.randomRunTag(), addressing: .direct)
        var sequence: UInt64 = 0
        while sequence < UInt64(messages) {
            let n = min(10, messages - Int(sequence))
            let boundary = "pullbench\(sequence)"
            var body: [UInt8] = []
            for _ in 0..<n {
                sequence += 1
                body += Array("--\(boundary)\r\nContent-Type: application/xml\r\n\r\n".utf8)
                body += generator.make(sender: Self.sender, recipient: Self.recipient, sequence: sequence)
                body += Array("\r\n".utf8)
            }
            body += Array("--\(boundary)--\r\n".utf8)
            try client.send(Array(("POST /api/v1/in/\(Self.sender)/msgs HTTP/1.1\r\nHost: bench\r\n"
                + "Content-Type: multipart/mixed; boundary=\(boundary)\r\nContent-Length: \(body.count)\r\n\r\n").utf8) + body)
            let r = try client.readResponse()
            guard r.status == 201 else { throw ClientError("send: \(r.status) \(r.bodyText.prefix(300))") }
        }
    }

    /// Every stream pulls until all messages were delivered and it sees a 204; returns the
    /// number of GETs that delivered messages.
    func pullEverything(port: Int) throws -> Int {
        let delivered = Counter()
        let pulls = Counter()
        let failures = Counter()
        let total = messages
        let accept = batch == 10 ? "multipart/mixed" : "application/xml"
        let group = DispatchGroup()
        for _ in 0..<streams {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let client = try BlockingClient(port: port, timeoutMs: 30_000)
                    var path = "/api/v1/out/\(Self.recipient)/stream/start"
                    while true {
                        let r = try client.roundTrip("GET \(path) HTTP/1.1\r\nHost: bench\r\nAccept: \(accept)\r\n\r\n")
                        guard let next = r.header("PI-Pull-Next"), r.status == 200 || r.status == 204 else {
                            throw ClientError("pull: \(r.status) \(r.bodyText.prefix(300))")
                        }
                        if r.status == 200 {
                            pulls.add(1)
                            delivered.add(r.header("PI-ResourceId") != nil ? 1 : PullBench.parts(r))
                        } else if delivered.value >= total {
                            _ = try client.roundTrip("DELETE \(next) HTTP/1.1\r\nHost: bench\r\n\r\n")
                            return
                        }
                        path = next
                    }
                } catch {
                    failures.add(1)
                    FileHandle.standardError.write(Data("pullbench: \(error)\n".utf8))
                }
            }
        }
        group.wait()
        guard failures.value == 0 else { throw ClientError("\(failures.value) streams failed") }
        guard delivered.value == total else { throw ClientError("delivered \(delivered.value) of \(total)") }
        return pulls.value
    }

    /// Parts of a multipart/mixed response (counted by the hub's own framing, checked by tests).
    static func parts(_ r: ClientResponse) -> Int {
        guard let ct = r.header("Content-Type"), let b = ct.split(separator: "=").last else { return 0 }
        return (try? Multipart.parse(r.body, boundary: String(b), partsMax: 10).count) ?? 0
    }
}

/// A counter shared by the pulling threads.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add(_ k: Int) {
        lock.lock()
        n += k
        lock.unlock()
    }
    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return n
    }
}
