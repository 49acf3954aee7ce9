import ArgumentParser
import Foundation
import Glibc
import HTTP
import HTTPClient
import ISO20022
import Synchronization
import TLS

/// `loadtest bench ingest`: validated, deduplicated, durable messages per second through
/// rtpstream's send endpoint (mutual TLS, HTTP keep-alive, realistic SPI pacs.008, unique ids)
/// against libxml2's parse+validate of the same messages on 2 threads
/// (`ISO20022.LibXML2Baseline`), alternating rounds in one run.
struct BenchIngest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Send path vs libxml2 parse+validate: SPI pacs.008 over mutual TLS keep-alive, durable 201s.")

    @Option(help: "Seconds per measurement round.") var duration = 10
    @Option(help: "Rounds per side (alternating; the median is reported).") var rounds = 3
    @Option(help: "Concurrent keep-alive connections (one blocking client thread each); enough to cover fdatasync latency.")
    var connections = 128
    @Option(help: "Sender ISPBs (each with its client certificate); connections are spread over them.") var senders = 4
    @Option(help: "Recipient ISPBs (partitions) the messages are spread over.") var recipients = 4
    @Option(name: .customLong("messages-per-request"), help: "Messages per request: 1 (application/xml) or up to 10 (multipart/mixed).")
    var messagesPerRequest = 1
    @Option(help: "Threads of the libxml2 baseline.") var baselineThreads = 2
    @Option(help: "rtpstream --worker-threads (validation threads).") var workerThreads = 2
    @Option(help: "Directory for the JSON summary.") var output: String?

    static let namespace = "https://www.bcb.gov.br/pi/pacs.008/1.16"
    static let hubISPB = "99999010"

    func run() throws {
        guard duration >= 1, rounds >= 1, connections >= 1, (1...9).contains(senders), (1...9).contains(recipients),
              (1...10).contains(messagesPerRequest) else {
            throw ValidationError("duration, rounds, connections >= 1; senders and recipients 1...9; messages-per-request 1...10")
        }
        let redisServer = try which("redis-server")
        let rtpstream = try siblingExecutable("rtpstream")
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rtpstream-bench-ingest-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }

        let senderISPBs = (1...senders).map { "1000000\($0)" }
        let recipientISPBs = (1...recipients).map { "2000000\($0)" }
        let certs = work.appendingPathComponent("certs").path
        _ = try capture(rtpstream, ["certs", "--out", certs] + senderISPBs.flatMap { ["--ispb", $0] })

        let redisPort = freePort()
        let redis = try Child("redis-server", redisServer, [
            "--port", "\(redisPort)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", work.path,
        ], logPath: work.appendingPathComponent("redis.log").path)
        try waitForPort(redisPort)
        let apiPort = freePort()
        let dataDir = work.appendingPathComponent("data").path
        let hub = try Child("rtpstream", rtpstream, [
            "serve", "--log-level", "warning",
            "--listen", "127.0.0.1:\(apiPort)", "--admin-listen", "127.0.0.1:\(freePort())",
            "--data-dir", dataDir, "--redis", "redis://127.0.0.1:\(redisPort)",
            "--tls-cert", "\(certs)/server.pem", "--tls-key", "\(certs)/server-key.pem", "--tls-client-ca", "\(certs)/ca.pem",
            "--worker-threads", "\(workerThreads)", "--partition-backlog-max", "1000000000",
        ], logPath: work.appendingPathComponent("rtpstream.log").path)
        try waitForPort(apiPort)

        // One template message per connection: realistic SPI pacs.008 (signed envelope, via the
        // hub to a creditor agent), its id patched in place for every send.
        let generator = Pacs008Generator(runTag: Pacs008Generator.randomRunTag(), addressing: .viaHub(Self.hubISPB))
        let plans = try (0..<connections).map { c -> ConnectionPlan in
            let sender = senderISPBs[c % senderISPBs.count]
            let context = try TLSContext.client(TLSClientConfig(
                certPath: "\(certs)/client-\(sender).pem", keyPath: "\(certs)/client-\(sender)-key.pem",
                caPath: "\(certs)/ca.pem", serverName: "127.0.0.1"))
            return try ConnectionPlan(generator: generator, sender: sender, recipient: recipientISPBs[c % recipientISPBs.count],
                                      connection: c, messagesPerRequest: messagesPerRequest, port: apiPort, tls: context)
        }
        let messageBytes = plans[0].bodyBytes
        let registry = try SchemaRegistry.shipped()
        let bodies = plans.prefix(8).map(\.body)

        print("ingest: \(connections) connections, \(messagesPerRequest) message(s) per request, \(senders) senders, \(recipients) recipients, \(messageBytes)-byte SPI pacs.008, "
              + "\(duration) s rounds; baseline: LibXML2Baseline on \(baselineThreads) threads")
        // Warm-up: connections, TLS sessions, validation contexts, the store's files.
        _ = try runHub(plans, seconds: 2, hubPID: hub.process.processIdentifier)
        var baselineRates: [Double] = []
        var baselinePerCPU: [Double] = []
        var hubRates: [Double] = []
        var hubPerCPU: [Double] = []
        var hubCPU: [Double] = []
        for round in 1...rounds {
            let base = try runBaseline(registry: registry, bodies: bodies, threads: baselineThreads, seconds: Double(duration))
            baselineRates.append(base.rate)
            baselinePerCPU.append(Double(base.count) / max(base.cpuSeconds, 0.001))
            let h = try runHub(plans, seconds: Double(duration), hubPID: hub.process.processIdentifier)
            hubRates.append(h.rate)
            hubCPU.append(h.hubCPUSeconds)
            hubPerCPU.append(Double(h.stored) / max(h.hubCPUSeconds, 0.001))
            print(String(format: "round %d: libxml2 %.0f msg/s (%.1f CPU-s, %.0f msg/CPU-s) | rtpstream %.0f msg/s (hub %.1f CPU-s, %.0f msg/CPU-s; load generator %.1f CPU-s)",
                         round, base.rate, base.cpuSeconds, baselinePerCPU.last!, h.rate, h.hubCPUSeconds, hubPerCPU.last!, h.loadCPUSeconds))
        }
        for p in plans { p.close() }
        hub.stop()
        redis.stop()
        // Every 201 is in the store: the partitions hold exactly the acknowledged messages.
        let inspect = try capture(rtpstream, ["inspect", "--data-dir", dataDir])
        let records = inspect.split(separator: "\n").filter { $0.hasPrefix("local:") }
            .compactMap { UInt64($0.split(separator: "\t")[2]) }.reduce(0, +)
        let acknowledged = plans.reduce(0) { $0 + $1.storedTotal }
        guard records == UInt64(acknowledged) else {
            throw LoadTestError("store holds \(records) records but \(acknowledged) sends got 201:\n\(inspect)")
        }
        let b = median(baselineRates)
        let h = median(hubRates)
        print(String(format: "libxml2    %10.0f msg/s (median of %d, parse+validate, %d threads)", b, rounds, baselineThreads))
        print(String(format: "rtpstream  %10.0f msg/s (median of %d, validated + deduplicated + fdatasync'd, 201)", h, rounds))
        print(String(format: "ratio      %10.2f  (target >= 0.70); per CPU-second %.2f (%.0f vs %.0f msg/CPU-s)",
                     h / b, median(hubPerCPU) / median(baselinePerCPU), median(hubPerCPU), median(baselinePerCPU)))
        print("store check: \(records) records = \(acknowledged) acknowledged sends")
        try writeSummary(["benchmark": "ingest", "connections": connections, "messagesPerRequest": messagesPerRequest, "durationSeconds": duration,
                          "messageBytes": messageBytes, "libxml2Rate": baselineRates, "rtpstreamRate": hubRates,
                          "hubCPUSeconds": hubCPU, "libxml2PerCPUSecond": baselinePerCPU, "rtpstreamPerCPUSecond": hubPerCPU,
                          "ratio": h / b, "storedRecords": records],
                         to: output, name: "bench-ingest.json")
    }

    /// Parses and validates `bodies` round-robin on `threads` threads for `seconds`; messages/s
    /// and the CPU seconds the threads used.
    func runBaseline(registry: SchemaRegistry, bodies: [[UInt8]], threads: Int, seconds: Double) throws -> (rate: Double, cpuSeconds: Double, count: Int) {
        let counts = Mutex([Int](repeating: 0, count: threads))
        let cpu = Mutex(0.0)
        let failures = Mutex(0)
        let start = Clock.now
        let end = start + seconds
        let group = DispatchGroup()
        for t in 0..<threads {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                guard let baseline = try? LibXML2Baseline(registry: registry, namespace: BenchIngest.namespace) else {
                    failures.withLock { $0 += 1 }
                    return
                }
                let cpu0 = Clock.threadCPU
                var n = 0
                var i = t
                while n % 64 != 0 || Clock.now < end {
                    let ok = bodies[i % bodies.count].withUnsafeBytes { baseline.parseAndValidate($0) }
                    if !ok { failures.withLock { $0 += 1 }; break }
                    n += 1
                    i += 1
                }
                counts.withLock { $0[t] = n }
                cpu.withLock { $0 += Clock.threadCPU - cpu0 }
            }
        }
        group.wait()
        let elapsed = Clock.now - start
        guard failures.withLock({ $0 }) == 0 else { throw LoadTestError("libxml2 baseline rejected a generated message") }
        let count = counts.withLock { $0.reduce(0, +) }
        return (Double(count) / elapsed, cpu.withLock { $0 }, count)
    }

    /// Sends on every connection for `seconds`; 201s per second and the hub's CPU time.
    func runHub(_ plans: [ConnectionPlan], seconds: Double, hubPID: Int32) throws
        -> (rate: Double, stored: Int, hubCPUSeconds: Double, loadCPUSeconds: Double) {
        let cpu0 = processCPUSeconds(hubPID)
        let load0 = Clock.processCPU
        let start = Clock.now
        let end = start + seconds
        let group = DispatchGroup()
        for plan in plans {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                plan.send(until: end)
            }
        }
        group.wait()
        let elapsed = Clock.now - start
        let cpu = processCPUSeconds(hubPID) - cpu0
        let load = Clock.processCPU - load0
        if let failure = plans.compactMap(\.failure).first { throw LoadTestError("send failed: \(failure)") }
        let stored = plans.reduce(0) { $0 + $1.takeRoundCount() }
        return (Double(stored) / elapsed, stored, cpu, load)
    }

    /// utime + stime of a process, from /proc/<pid>/stat.
    func processCPUSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// Monotonic seconds.
enum Clock {
    static var now: Double { read(CLOCK_MONOTONIC) }
    /// CPU seconds of the calling thread.
    static var threadCPU: Double { read(CLOCK_THREAD_CPUTIME_ID) }
    /// CPU seconds of this process.
    static var processCPU: Double { read(CLOCK_PROCESS_CPUTIME_ID) }

    private static func read(_ clock: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// One connection's pre-built request (head + body in one buffer: one message, or a
/// multipart/mixed body of several) and the places of each message id's 15 sequence digits
/// (BizMsgIdr and MsgId), rewritten for every send so that every message is new to the hub's
/// idempotency index.
final class ConnectionPlan: @unchecked Sendable {
    private var request: [UInt8]
    /// Per message of the request: the offsets of its sequence digits.
    private let sequenceOffsets: [[Int]]
    private var sequence: UInt64
    private let port: Int
    private let tls: TLSContext
    private var connection: HTTPClientConnection?
    private var roundCount = 0
    private(set) var storedTotal = 0
    private(set) var failure: String?
    let bodyBytes: Int
    let body: [UInt8]
    let messagesPerRequest: Int

    init(generator: Pacs008Generator, sender: String, recipient: String, connection c: Int, messagesPerRequest: Int,
         port: Int, tls: TLSContext) throws {
        precondition((1...10).contains(messagesPerRequest))
        sequence = UInt64(c + 1) * 1_000_000_000_000
        let first = sequence
        let messages = (0..<UInt64(messagesPerRequest)).map { generator.make(sender: sender, recipient: recipient, sequence: first + $0) }
        body = messages[0]
        bodyBytes = body.count
        let payload: [UInt8]
        let contentType: String
        if messagesPerRequest == 1 {
            payload = messages[0]
            contentType = "application/xml; charset=utf-8"
        } else {
            let built = Multipart.build(parts: messages.map { ([HTTPHeader("Content-Type", "application/xml")], $0) },
                                        boundary: "bench-ingest-\(c)")
            payload = built.chunks.flatMap { $0 }
            contentType = built.contentType
        }
        let head = Array(("POST /api/v1/in/\(sender)/msgs HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
                          + "Content-Type: \(contentType)\r\nContent-Length: \(payload.count)\r\n\r\n").utf8)
        request = head + payload
        var all: [[Int]] = []
        for k in 0..<UInt64(messagesPerRequest) {
            let id = Array(generator.messageId(sender: sender, sequence: first + k).utf8)
            var offsets: [Int] = []
            var from = head.count
            while let at = Multipart.search(id, in: request, from: from) {
                offsets.append(at + id.count - 15)
                from = at + id.count
            }
            guard offsets.count == 2 else { throw LoadTestError("message id found \(offsets.count) times in the template") }
            all.append(offsets)
        }
        sequenceOffsets = all
        sequence = first + UInt64(messagesPerRequest) - 1
        self.messagesPerRequest = messagesPerRequest
        self.port = port
        self.tls = tls
    }

    /// Sends one request at a time, each with new messages, until `end`; stops at the first
    /// failure. A request counts when it is answered 201 (every message stored).
    func send(until end: Double) {
        do {
            if connection == nil {
                connection = try HTTPClientConnection(host: "127.0.0.1", port: port, tls: tls, timeoutMs: 30_000)
            }
            let c = connection!
            while Clock.now < end {
                for offsets in sequenceOffsets {
                    sequence += 1
                    var digits = sequence
                    for i in (0..<15).reversed() {
                        let d = UInt8(ascii: "0") + UInt8(digits % 10)
                        digits /= 10
                        for o in offsets { request[o + i] = d }
                    }
                }
                try c.write(request)
                let r = try c.readResponse()
                guard r.status == 201 else {
                    failure = "\(r.status) \(String(decoding: r.body.prefix(300), as: UTF8.self))"
                    return
                }
                roundCount += messagesPerRequest
                storedTotal += messagesPerRequest
            }
        } catch {
            failure = "\(error)"
        }
    }

    /// Messages stored since the last call.
    func takeRoundCount() -> Int {
        defer { roundCount = 0 }
        return roundCount
    }

    func close() {
        connection?.close()
        connection = nil
    }
}
