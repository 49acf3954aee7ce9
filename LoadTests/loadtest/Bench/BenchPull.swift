import ArgumentParser
import EventLoop
import Foundation
import Glibc

/// `loadtest bench pull`: GET next with 10 × pacs.008 per response (multipart), real Redis,
/// durable acknowledgements, keep-alive — against nginx serving a static file of the same
/// size (a real batch body captured from the hub), same connection count, alternating rounds
/// in one run. nginx is measured with the same client (the ratio compares like with like) and
/// with wrk for reference. Plaintext for the comparison; mutual TLS pull rounds follow.
struct BenchPull: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Pull path (10 × pacs.008 per response, durable acks) vs nginx serving a file of the same size.")

    @Option(help: "Seconds per measurement round.") var duration = 10.0
    @Option(help: "Concurrent keep-alive connections (= pull streams; a multiple of 6: 6 streams per PSP).") var connections = 48
    @Option(help: "Rounds per side (alternating; the median is reported).") var rounds = 3
    @Option(help: "Also measure pulls over mutual TLS (after the plaintext rounds).") var tls = true
    @Option(help: "Pull requests/s assumed for the calibration round's preload.") var initialRateGuess = 6000.0
    @Option(help: "Directory for the JSON summary.") var output: String?
    @Option(help: "The rtpstream executable (default: the one built next to loadtest).") var rtpstream: String?
    @Option(parsing: .unconditionalSingleValue, help: "One more `rtpstream serve` argument (repeatable).") var serverArg: [String] = []

    static let warmupSeconds = 2.0

    func validate() throws {
        guard connections >= 6, connections % 6 == 0 else { throw ValidationError("--connections must be a multiple of 6") }
        guard duration > 0, rounds >= 1 else { throw ValidationError("--duration and --rounds must be positive") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let wrk = try which("wrk")
        let nginx = try which("nginx")
        let load = ProcessCPU.loadAverage()
        say(String(format: "bench pull: load average %.2f; %d connections, %.0f s rounds × %d", load, connections, duration, rounds))
        let ispbs = Scenario.pspISPBs(connections / 6)
        let hub = try SpawnedHub(ispbs: ispbs, tls: true, certsDir: nil, keep: false, executable: rtpstream, log: say)
        defer { hub.stop() }
        let hubArguments = ["--long-poll-seconds", "1", "--partition-backlog-max", "100000000"] + serverArg
        try hub.startHub(tls: false, arguments: hubArguments)
        let loop = try Loop()
        defer { loop.close() }

        var estimate = initialRateGuess
        var leftover = 0
        var samples: [UInt8]?
        /// One pull round: preloads what it should consume (from `estimate`, with headroom), pulls
        /// unpaced for a warm-up and `seconds`, closes the streams. Returns the rate and whether
        /// the backlog ran dry during the measurement (any 204): then the rate is not the hub's.
        func pullRound(_ label: String, seconds: Double) -> (rate: Double, starved: Bool, detail: [String: Any]) {
            let preload = max(0, Int(estimate * (seconds + BenchPull.warmupSeconds) * 10 * 1.5) - leftover)
            var scenario = Scenario(ispbs: ispbs)
            scenario.streamsMin = 6
            scenario.streamsMax = 6
            scenario.batchesPerStream = nil
            scenario.abandonFraction = 0
            scenario.retryFraction = 0
            scenario.preloadMessages = preload
            scenario.segments = [
                Segment(name: "warmup", seconds: BenchPull.warmupSeconds, pullRateFrom: 0, pullRateTo: 0, sendRateFrom: 0, sendRateTo: 0),
                Segment(name: "measure", seconds: seconds, pullRateFrom: 0, pullRateTo: 0, sendRateFrom: 0, sendRateTo: 0),
            ]
            scenario.drainSecondsMax = 0
            scenario.idleSeconds = 30
            scenario.longPollSeconds = 1
            scenario.unknownIDsAreViolations = false
            scenario.lostAreViolations = false
            let run: Run
            do {
                run = try Run(loop: loop, scenario: scenario, target: hub.target,
                              processes: [("rtpstream", hub.hubPID), ("redis", hub.redisPID)], progress: nil, log: { _ in })
            } catch {
                return (0, false, ["error": "\(error)"])
            }
            run.watchdog = { hub.deathReason() }
            run.execute()
            let report = run.ledger.finish(nowMs: loop.nowMs)
            leftover += report.sent - report.delivered
            if samples == nil { samples = run.sampleBatch }
            guard let m = run.recorder.phase("measure"), run.stopReason == "completed" else {
                say("\(label): run did not complete: \(run.stopReason)")
                if hub.deathReason() != nil { say(hub.hubLogTail()) }
                return (0, false, ["error": run.stopReason])
            }
            let next = m.routes[.next]!
            let rate = RunSummary.pullRate(m)
            let empty = m.routes[.nextEmpty]!.count
            let cpu = run.recorder.samples.filter { $0.phase == "measure" }.reduce(into: [String: Double]()) { acc, s in
                for (k, v) in s.gauges where k.hasPrefix("cpu_") { acc[String(k.dropFirst(4)), default: 0] += v / max(1, m.seconds) }
            }
            let cpuText = cpu.sorted { $0.key < $1.key }.map { String(format: "%@ %.0f%%", $0.key as NSString, $0.value) }.joined(separator: " ")
            say(String(format: "%@: %.0f pulls/s (p50 %.2f ms, p99 %.2f ms, %llu answered 204), mean body %d B, cpu %@; preload %d msgs in %.0f s; violations %d",
                       label as NSString, rate, next.percentileMs(50), next.percentileMs(99), empty,
                       run.batchBodies > 0 ? run.batchBodyBytes / run.batchBodies : 0, cpuText as NSString, run.preloadStored,
                       run.preloadSeconds, report.violationTotal))
            if report.violationTotal > 0 { for v in report.violations.prefix(5) { say("  violation: \(v)") } }
            if empty > 0 { say("  the backlog ran dry during the measurement: the rate is a lower bound") }
            return (rate, empty > 0, ["requestsPerSecond": rate, "starved": empty > 0,
                                      "latencyMs": ["p50": next.percentileMs(50), "p90": next.percentileMs(90),
                                                    "p99": next.percentileMs(99), "max": next.maxMs],
                                      "answered204": empty, "violations": report.violationTotal, "cpuPercent": cpu,
                                      "meanBodyBytes": run.batchBodies > 0 ? run.batchBodyBytes / run.batchBodies : 0,
                                      "preloadMessages": run.preloadStored, "preloadSeconds": run.preloadSeconds])
        }
        /// A round, repeated (at most twice) with a larger preload while the backlog ran dry: a
        /// dry round measured the preload, not the hub. One that is still dry is reported as a
        /// lower bound.
        func measuredPullRound(_ label: String) -> (Double, [String: Any]) {
            var r = pullRound(label, seconds: duration)
            for attempt in 1...2 where r.starved {
                estimate = max(estimate * 2, r.rate * 2)
                r = pullRound(label + " (again \(attempt), larger preload)", seconds: duration)
            }
            if r.starved { say("  \(label): still dry after two repeats; its rate is a lower bound") }
            estimate = max(estimate, r.rate)
            return (r.rate, r.detail)
        }

        // Calibration: a short round sizes the preloads of the measured ones.
        let calibration = pullRound("calibration (3 s)", seconds: 3)
        // A calibration whose backlog ran dry measured a lower bound only.
        estimate = max(estimate, calibration.rate * (calibration.starved ? 2.5 : 1.2))

        // Round 1 of the hub first: it supplies the body nginx serves.
        var hubRates: [Double] = []
        var hubRounds: [[String: Any]] = []
        let (firstRate, firstDetail) = measuredPullRound("rtpstream pull   round 1")
        hubRates.append(firstRate)
        hubRounds.append(firstDetail)
        guard let body = samples else { throw LoadTestError("no full 10-message batch was pulled: \(firstDetail)") }

        let work = hub.work + "/nginx"
        try FileManager.default.createDirectory(atPath: work + "/html", withIntermediateDirectories: true)
        try Data(body).write(to: URL(fileURLWithPath: work + "/html/batch"))
        let nginxPort = freePort()
        let conf = """
        worker_processes 1;
        daemon off;
        error_log \(work)/nginx-error.log;
        pid \(work)/nginx.pid;
        events { worker_connections 4096; }
        http {
          access_log off;
          keepalive_requests 1000000;
          server { listen 127.0.0.1:\(nginxPort); root \(work)/html; location / { default_type multipart/mixed; } }
        }
        """
        try conf.write(toFile: work + "/nginx.conf", atomically: true, encoding: .utf8)
        let nginxChild = try Child("nginx", nginx, ["-c", work + "/nginx.conf", "-p", work])
        defer { nginxChild.stop(SIGQUIT) }
        try waitForPort(nginxPort)
        let nginxPID = nginxWorkerPID(master: nginxChild.process.processIdentifier)

        var nginxRates: [Double] = []
        var nginxRounds: [[String: Any]] = []
        var wrkRates: [Double] = []
        for round in 1...rounds {
            if round > 1 {
                let (r, d) = measuredPullRound("rtpstream pull   round \(round)")
                hubRates.append(r)
                hubRounds.append(d)
            }
            let n = GetBench.run(loop: loop, host: "127.0.0.1", port: nginxPort, contexts: [], path: "/batch",
                                 connections: connections, seconds: duration, processes: [("nginx", nginxPID)])
            nginxRates.append(n.rate)
            nginxRounds.append(n.json)
            say(String(format: "nginx (loadtest) round %d: %.0f req/s (p50 %.2f ms, p99 %.2f ms), body %d B", round, n.rate, n.ms(50), n.ms(99), body.count))
            let w = try wrkRate(wrk, connections: connections, seconds: duration, url: "http://127.0.0.1:\(nginxPort)/batch")
            wrkRates.append(w)
            say(String(format: "nginx (wrk)      round %d: %.0f req/s", round, w))
        }

        var tlsRates: [Double] = []
        var tlsRounds: [[String: Any]] = []
        if tls {
            hub.stopHub()
            try hub.startHub(tls: true, arguments: hubArguments)
            for round in 1...rounds {
                let (r, d) = measuredPullRound("rtpstream pull mTLS round \(round)")
                tlsRates.append(r)
                tlsRounds.append(d)
            }
        }

        let h = median(hubRates), n = median(nginxRates), w = median(wrkRates)
        say(String(format: "rtpstream pull   %8.0f req/s (median of %d; 10 × pacs.008, %d B, durable acks)", h, rounds, body.count))
        say(String(format: "nginx (loadtest) %8.0f req/s   ratio %.2f (target ≥ 0.5)", n, h / max(1, n)))
        say(String(format: "nginx (wrk -t1)  %8.0f req/s   ratio %.2f", w, h / max(1, w)))
        if tls {
            let t = median(tlsRates)
            say(String(format: "rtpstream pull mTLS %5.0f req/s   mTLS/plaintext %.2f", t, t / max(1, h)))
        }
        try writeSummary([
            "benchmark": "pull", "connections": connections, "durationSeconds": duration, "rounds": rounds,
            "responseBodyBytes": body.count, "loadAverageAtStart": load, "loadAverageAtEnd": ProcessCPU.loadAverage(),
            "rtpstreamPullRps": hubRates, "nginxRps": nginxRates, "nginxWrkRps": wrkRates, "rtpstreamPullTLSRps": tlsRates,
            "ratio": h / max(1, n), "ratioWrk": h / max(1, w), "tlsOverPlaintext": tls ? median(tlsRates) / max(1, h) : 0,
            "rtpstreamRounds": hubRounds, "nginxRounds": nginxRounds, "rtpstreamTLSRounds": tlsRounds,
        ], to: output, name: "bench-pull.json")
    }
}

/// Requests/s reported by `wrk -t1 -cN -dS url`.
func wrkRate(_ wrk: String, connections: Int, seconds: Double, url: String) throws -> Double {
    let out = try capture(wrk, ["-t1", "-c\(connections)", "-d\(Int(seconds))s", url])
    guard let line = out.split(separator: "\n").first(where: { $0.contains("Requests/sec:") }),
          let rate = Double(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) else {
        throw LoadTestError("unexpected wrk output: \(out)")
    }
    if let non2xx = out.split(separator: "\n").first(where: { $0.contains("Non-2xx") }) { throw LoadTestError("\(url): \(non2xx)") }
    return rate
}

/// The single worker of an nginx master (for its CPU time), or the master itself.
func nginxWorkerPID(master: Int32) -> Int32 {
    for _ in 0..<50 {
        if let children = try? String(contentsOfFile: "/proc/\(master)/task/\(master)/children", encoding: .utf8),
           let first = children.split(separator: " ").first, let pid = Int32(first) {
            return pid
        }
        usleep(20_000)
    }
    return master
}
