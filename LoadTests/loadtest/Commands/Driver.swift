import ArgumentParser
import EventLoop
import Foundation
import Glibc
import ISO20022

/// Prints a line above the progress display.
func say(_ line: String) {
    if isatty(STDOUT_FILENO) != 0 {
        FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line + "\n").utf8))
    } else {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}

/// The part soak and burst share: set up the target (spawned or given), build the scenario,
/// run it, check it, write the JSON summary and the HTML report. Returns the exit code:
/// 1 when the ledger found any violation, 2 when the run could not complete, else 0 (whether
/// the rate and latency targets were met is in the report).
enum Driver {
    struct Plan {
        var kind: String
        var segments: [Segment]
        /// Extra `rtpstream serve` arguments for --spawn (e.g. a rate limit).
        var serverArguments: [String] = []
        /// Turns the finished run into the command's results, headline and verdict.
        var analyze: (RunSummary) -> (results: [String: Any], headline: [(String, String)])
    }

    static func execute(_ plan: Plan, target t: TargetOptions, load: LoadOptions) throws -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let command = CommandLine.arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        let loadAtStart = ProcessCPU.loadAverage()
        say(String(format: "loadtest %@: load average %.2f, %d cores", plan.kind, loadAtStart, ProcessInfo.processInfo.activeProcessorCount))

        let idle = load.streamIdleSeconds ?? (t.spawn ? LoadDefaults.spawnStreamIdleSeconds : 30)
        let longPoll = load.longPollSeconds ?? (t.spawn ? LoadDefaults.spawnLongPollSeconds : 5)
        var ispbs: [String]
        if let dir = t.certs, !t.spawn, t.url?.hasPrefix("https://") == true {
            ispbs = Array(Target.clientISPBs(inCertsDir: dir).prefix(load.psps))
            guard ispbs.count >= 2 else { throw LoadTestError("\(dir) holds \(ispbs.count) client certificates; need at least 2") }
            if ispbs.count < load.psps { say("using the \(ispbs.count) PSPs with certificates in \(dir)") }
        } else {
            ispbs = Scenario.pspISPBs(load.psps)
        }

        var scenario = Scenario(ispbs: ispbs)
        scenario.streamsMin = load.streamsMin
        scenario.streamsMax = load.streamsMax
        scenario.batchesPerStream = load.batchesMin...load.batchesMax
        scenario.abandonFraction = load.abandonFraction
        scenario.retryFraction = load.retryFraction
        scenario.multipart = !load.single
        scenario.idleSeconds = idle
        scenario.longPollSeconds = longPoll
        scenario.segments = plan.segments
        scenario.drainSecondsMax = load.drainSeconds
        scenario.seed = load.seed
        scenario.unknownIDsAreViolations = t.spawn
        let perBatch = Double(load.single ? 1 : LoadDefaults.messagesPerPost)
        let needed = plan.segments.reduce(0.0) { total, s in
            total + (s.pullRateFrom + s.pullRateTo) / 2 * s.seconds * perBatch - (s.sendRateFrom + s.sendRateTo) / 2 * s.seconds
        }
        // Headroom: partitions drain unevenly, and a dry partition turns pulls into long polls.
        scenario.preloadMessages = load.preloadMessages ?? max(0, Int((needed * LoadDefaults.preloadHeadroom).rounded(.up)))

        var spawned: SpawnedHub?
        defer { spawned?.stop() }
        let target: Target
        var processes: [(String, Int32)] = []
        if t.spawn {
            let hub = try SpawnedHub(ispbs: ispbs, tls: !t.plaintext, certsDir: t.certs, keep: t.keep, executable: t.rtpstream, log: say)
            spawned = hub
            try checkDisk(directory: hub.work, messages: scenario.preloadMessages)
            try hub.startHub(tls: !t.plaintext, arguments: ["--stream-idle-seconds", String(idle), "--long-poll-seconds", String(longPoll)]
                             + plan.serverArguments + t.serverArg)
            say("spawned: redis-server :\(hub.redisPort), rtpstream :\(hub.apiPort) (\(t.plaintext ? "plaintext" : "mutual TLS")), data \(hub.dataDir)")
            processes = [("rtpstream", hub.hubPID), ("redis", hub.redisPID)]
            target = hub.target
        } else {
            target = try Target.parse(url: t.url!, certsDir: t.certs, allowRemote: t.allowRemote)
        }

        let loop = try Loop()
        let run: Run
        do {
            run = try Run(loop: loop, scenario: scenario, target: target, processes: processes,
                          progress: Progress.make(quiet: load.quiet), log: say)
        } catch {
            loop.close()
            throw error
        }
        if let hub = spawned { run.watchdog = { hub.deathReason() } }
        say("\(scenario.ispbs.count) PSPs, \(run.streamCount) streams, \(run.producerCount) producers; preload \(scenario.preloadMessages) messages; "
            + "cap \(Int(scenario.capSeconds)) s")
        run.execute()
        let completed = run.stopReason == "completed"
        let report = run.ledger.finish(nowMs: loop.nowMs, complete: completed)
        if !completed { say("the run did not complete (\(run.stopReason)): undelivered messages are not counted as lost") }
        var summary = RunSummary(kind: plan.kind, command: command, run: run, ledger: report)
        let analysis = plan.analyze(summary)
        summary.results = analysis.results
        var environment: [String: Any] = [
            "loadAverageAtStart": loadAtStart, "loadAverageAtEnd": ProcessCPU.loadAverage(),
            "cores": ProcessInfo.processInfo.activeProcessorCount, "target": "\(target.tls ? "https" : "http")://\(target.host):\(target.port)",
        ]
        if let hub = spawned {
            environment["spawned"] = true
            environment["hubDataBytes"] = hub.dataBytes()
            if run.stopReason != "completed" && run.stopReason != "interrupted" {
                say("rtpstream log tail:\n\(hub.hubLogTail())")
            }
            if let dir = load.output {
                // The hub's warnings (Redis timeouts, fallbacks) explain much of what the report shows.
                try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                try? hub.hubLogTail(bytes: 1_000_000).write(toFile: "\(dir)/rtpstream.log", atomically: true, encoding: .utf8)
            }
        }
        summary.environment = environment
        say("")
        for (k, v) in analysis.headline { say(k.padding(toLength: 38, withPad: " ", startingAt: 0) + v) }
        if !report.violations.isEmpty {
            say("violations (first \(min(20, report.violations.count))):")
            for v in report.violations.prefix(20) { say("  \(v)") }
        }
        if let dir = load.output {
            try writeSummary(summary.json(), to: dir, name: "\(plan.kind).json")
            let html = HTMLReport.render(summary, headline: analysis.headline)
            try html.write(toFile: "\(dir)/\(plan.kind).html", atomically: true, encoding: .utf8)
            say("wrote \(dir)/\(plan.kind).json and \(dir)/\(plan.kind).html")
        }
        withExtendedLifetime(run) {}
        loop.close()
        if report.violationTotal > 0 { return 1 }
        if run.stopReason != "completed" && run.stopReason != "interrupted" {
            say("run did not complete: \(run.stopReason)")
            return 2
        }
        return 0
    }

    /// Refuses a preload that would not fit on the disk (messages ≈ 3.5 KB each on disk with
    /// framing and indexes; twice that must be free).
    static func checkDisk(directory: String, messages: Int) throws {
        let sample = Pacs008Generator(runTag: "SIZETEST").make(sender: "10000001", recipient: "10000002", sequence: 1)
        let bytes = Double(messages) * Double(sample.count + 200)
        var st = statvfs()
        guard statvfs(directory, &st) == 0 else { return }
        let free = Double(st.f_bavail) * Double(st.f_frsize)
        if bytes * 2 > free {
            throw LoadTestError(String(format: "preloading %d messages needs about %.1f GB; %.1f GB are free in %@ — lower --preload-messages (or --pull-rate/--duration)",
                                       messages, bytes / 1e9, free / 1e9, directory as NSString))
        }
    }
}
