import EventLoop
import Glibc
import Histogram
import TLS

/// Closed-loop GETs of one path over N connections for a fixed time, with the same client
/// engine as the soak: keep-alive (every connection opened before the clock starts), or a
/// new connection per request (`reconnect`: TCP connect + TLS handshake each time, optionally
/// resuming the previous session).
final class GetBench {
    struct Result {
        var responses: UInt64 = 0
        var seconds = 0.0
        var bodyBytes: UInt64 = 0
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: RouteStats.latencyUsMax,
                                          numberOfSignificantValueDigits: .three)
        var statuses: [Int: UInt64] = [:]
        var failures: [String: UInt64] = [:]
        var fullHandshakes: UInt64 = 0
        var resumedHandshakes: UInt64 = 0
        var cpuPercent: [String: Double] = [:]

        var rate: Double { seconds > 0 ? Double(responses) / seconds : 0 }
        func ms(_ p: Double) -> Double { histogram.totalCount == 0 ? 0 : Double(histogram.valueAtPercentile(p)) / 1000 }

        var json: [String: Any] {
            var s: [String: UInt64] = [:]
            for (k, v) in statuses { s[String(k)] = v }
            return ["requestsPerSecond": rate, "responses": responses, "seconds": seconds, "statuses": s, "failures": failures,
                    "latencyMs": ["p50": ms(50), "p90": ms(90), "p99": ms(99), "max": Double(histogram.max) / 1000],
                    "fullHandshakes": fullHandshakes, "resumedHandshakes": resumedHandshakes, "cpuPercent": cpuPercent,
                    "meanBodyBytes": responses > 0 ? Double(bodyBytes) / Double(responses) : 0]
        }
    }

    private final class Worker {
        let connection: ClientConnection
        var stopped = false
        init(_ c: ClientConnection) { connection = c }
    }

    /// Runs on `loop` (which must be idle) and returns when done. `contexts[i % count]` is the
    /// TLS context of connection i (empty: plaintext). `processes`: CPU measured during the run.
    /// `whileOpen`: called after the last response, before the connections close (idle
    /// keep-alive connections, each having served requests).
    static func run(loop: Loop, host: String, port: Int, contexts: [TLSContext], path: String, connections: Int,
                    seconds: Double, reconnect: Bool = false, resume: Bool = false,
                    processes: [(String, Int32)] = [], whileOpen: (() -> Void)? = nil) -> Result {
        let counters = ConnectionCounters()
        var result = Result()
        let workers = (0..<connections).map { i -> Worker in
            let c = ClientConnection(loop: loop, host: host, port: port,
                                     tls: contexts.isEmpty ? nil : contexts[i % contexts.count], counters: counters)
            c.resume = resume
            return Worker(c)
        }
        let hostHeader = Array((host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)").utf8)
        let request = Requests.make("GET", target: Array(path.utf8), host: hostHeader)
        var measuring = false
        var running = 0
        var startNs: UInt64 = 0
        var endNs: UInt64 = 0
        var cpu: [ProcessCPU] = []
        let stopTimer = LoopTimer(loop: loop)
        let sweep = LoopTimer(loop: loop)
        sweep.start(afterMs: 500, repeatMs: 500) {
            for w in workers { w.connection.checkDeadline(nowMs: loop.nowMs) }
        }

        func fire(_ w: Worker) {
            guard measuring else {
                w.stopped = true
                running -= 1
                if running == 0 { loop.stop() }
                return
            }
            w.connection.send(request, timeoutMs: 30_000) { r in
                switch r {
                case .success(let response):
                    if measuring {
                        result.responses += 1
                        result.bodyBytes += UInt64(response.body.count)
                        result.statuses[response.head.status, default: 0] += 1
                        _ = result.histogram.record(max(1, min(response.latencyNs / 1000, RouteStats.latencyUsMax)))
                    }
                    if reconnect { w.connection.disconnect() }
                case .failure(let f):
                    if measuring { result.failures[f.label, default: 0] += 1 }
                }
                fire(w)
            }
        }

        func begin() {
            let handshakesBefore = (counters.fullHandshakes, counters.resumedHandshakes)
            cpu = processes.map { ProcessCPU(name: $0.0, pid: $0.1) } + [ProcessCPU(name: "loadtest", pid: getpid())]
            measuring = true
            running = workers.count
            startNs = Loop.hrtimeNs
            stopTimer.start(afterMs: UInt64(seconds * 1000)) {
                measuring = false
                endNs = Loop.hrtimeNs
                result.fullHandshakes = counters.fullHandshakes - handshakesBefore.0
                result.resumedHandshakes = counters.resumedHandshakes - handshakesBefore.1
                for i in cpu.indices { result.cpuPercent[cpu[i].name] = cpu[i].percentSinceLast() }
            }
            for w in workers { fire(w) }
        }

        if reconnect {
            begin()
        } else {
            var opened = 0
            for w in workers {
                w.connection.warmUp(timeoutMs: 30_000) { failure in
                    if let failure { result.failures["warmup " + failure.label, default: 0] += 1 }
                    opened += 1
                    if opened == workers.count { begin() }
                }
            }
        }
        loop.run()
        whileOpen?()
        for w in workers { w.connection.close() }
        stopTimer.stop()
        sweep.stop()
        result.seconds = Double(endNs &- startNs) / 1e9
        return result
    }
}
