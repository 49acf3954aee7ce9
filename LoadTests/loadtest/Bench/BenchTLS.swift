import ArgumentParser
import EventLoop
import Foundation
import Glibc
import TLS

/// `loadtest bench tls`: keep-alive requests/s with mutual TLS against plaintext on the same
/// route (`GET /bench/fixed`, 8 KiB unless `--body-bytes`), two hubs running side by side and
/// measured in alternating rounds; the hubs' memory per idle keep-alive connection; then
/// connections/s with a new connection per request: full mutual-TLS handshakes, resumed
/// handshakes, and plaintext connects for reference.
struct BenchTLS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls",
        abstract: "Mutual TLS vs plaintext keep-alive requests/s (target ≥ 0.8), and full handshakes/s.")

    @Option(help: "Seconds per measurement round.") var duration = 10.0
    @Option(help: "Concurrent keep-alive connections.") var connections = 50
    @Option(help: "Concurrent connections for the new-connection-per-request rounds.") var handshakeConnections = 16
    @Option(help: "Rounds per side (alternating; the median is reported).") var rounds = 3
    @Option(help: "Response body bytes of GET /bench/fixed.") var bodyBytes = 8192
    @Option(help: "Idle keep-alive connections opened to measure each hub's memory per connection (0: skip).") var memoryConnections = 500
    @Flag(help: "Skip the new-connection-per-request rounds.") var keepAliveOnly = false
    @Option(help: "PSPs whose certificates the connections present (round-robin).") var psps = 10
    @Option(help: "Highest TLS version the client offers: 1.3, or 1.2 (ICOM's ECDHE-RSA-AES128-GCM-SHA256).") var tlsVersion = "1.3"
    @Option(help: "Directory for the JSON summary.") var output: String?
    @Option(help: "The rtpstream executable (default: the one built next to loadtest).") var rtpstream: String?
    @Option(parsing: .unconditionalSingleValue, help: "One more `rtpstream serve` argument (repeatable).") var serverArg: [String] = []

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let load = ProcessCPU.loadAverage()
        say(String(format: "bench tls: load average %.2f; %d keep-alive connections, %d for handshakes, %.0f s rounds × %d, TLS %@, %d-byte body",
                   load, connections, handshakeConnections, duration, rounds, tlsVersion as NSString, bodyBytes))
        let ispbs = Scenario.pspISPBs(psps)
        let arguments = ["--bench-fixed-response", "--bench-fixed-bytes", String(bodyBytes)] + serverArg
        let tlsHub = try SpawnedHub(ispbs: ispbs, tls: true, certsDir: nil, keep: false, executable: rtpstream, log: say)
        defer { tlsHub.stop() }
        try tlsHub.startHub(tls: true, arguments: arguments)
        let plainHub = try SpawnedHub(ispbs: [], tls: false, certsDir: nil, keep: false, executable: rtpstream, log: say)
        defer { plainHub.stop() }
        try plainHub.startHub(tls: false, arguments: arguments)
        guard let version = TLSVersion(parsing: tlsVersion) else { throw ValidationError("--tls-version must be 1.2 or 1.3") }
        let contexts = try ispbs.compactMap { try tlsHub.target.clientContext(ispb: $0, maxVersion: version) }
        let loop = try Loop()
        defer { loop.close() }

        func measure(_ label: String, _ hub: SpawnedHub, tls: Bool, connections: Int, reconnect: Bool = false, resume: Bool = false,
                     seconds: Double? = nil, whileOpen: (() -> Void)? = nil) -> GetBench.Result {
            let r = GetBench.run(loop: loop, host: "127.0.0.1", port: hub.apiPort, contexts: tls ? contexts : [], path: "/bench/fixed",
                                 connections: connections, seconds: seconds ?? duration, reconnect: reconnect, resume: resume,
                                 processes: [("rtpstream", hub.hubPID)], whileOpen: whileOpen)
            let failures = r.failures.isEmpty ? "" : " failures \(r.failures)"
            say(String(format: "%@ %8.0f /s  p50 %.2f ms  p99 %.2f ms  hub cpu %.0f%%  loadtest cpu %.0f%%%@", label as NSString, r.rate,
                       r.ms(50), r.ms(99), r.cpuPercent["rtpstream"] ?? 0, r.cpuPercent["loadtest"] ?? 0, failures))
            return r
        }

        var plain: [GetBench.Result] = []
        var mtls: [GetBench.Result] = []
        for round in 1...rounds {
            plain.append(measure("round \(round) plaintext keep-alive       ", plainHub, tls: false, connections: connections))
            mtls.append(measure("round \(round) mutual TLS keep-alive      ", tlsHub, tls: true, connections: connections))
        }
        // Memory: N more connections, each served requests for a second, then idle and open.
        // RSS growth, not live bytes: heap freed by the earlier rounds is reused (lower) and
        // the busy second's high-water mark stays resident (higher) — good to about ±10–20%.
        func kibPerConnection(_ label: String, _ hub: SpawnedHub, tls: Bool) -> Double {
            guard memoryConnections > 0, let before = ProcessCPU.residentKiB(pid: hub.hubPID) else { return 0 }
            var open = before
            let r = measure(label, hub, tls: tls, connections: memoryConnections, seconds: 1) {
                open = ProcessCPU.residentKiB(pid: hub.hubPID) ?? before
            }
            let notOpened = r.failures.filter { $0.key.hasPrefix("warmup ") }.values.reduce(0, +)
            let opened = max(1, memoryConnections - Int(notOpened))
            let perConnection = Double(open - before) / Double(opened)
            say(String(format: "%@ hub RSS %d KiB -> %d KiB with %d idle connections open: %.1f KiB per connection%@", label as NSString,
                       before, open, opened, perConnection, r.failures.isEmpty ? "" : " (failures \(r.failures))"))
            return perConnection
        }
        let plainKiB = kibPerConnection("memory plaintext                ", plainHub, tls: false)
        let tlsKiB = kibPerConnection("memory mutual TLS               ", tlsHub, tls: true)

        var full: [GetBench.Result] = []
        var resumed: [GetBench.Result] = []
        var connects: [GetBench.Result] = []
        for round in 1...rounds where !keepAliveOnly {
            full.append(measure("round \(round) full mTLS handshake + GET  ", tlsHub, tls: true, connections: handshakeConnections, reconnect: true))
            resumed.append(measure("round \(round) resumed handshake + GET    ", tlsHub, tls: true, connections: handshakeConnections,
                                   reconnect: true, resume: true))
            connects.append(measure("round \(round) plaintext connect + GET    ", plainHub, tls: false, connections: handshakeConnections,
                                    reconnect: true))
        }
        let p = median(plain.map(\.rate)), t = median(mtls.map(\.rate))
        let f = median(full.map(\.rate)), r = median(resumed.map(\.rate)), c = median(connects.map(\.rate))
        // Rounds alternate, so each round's pair shares the machine's background load.
        let paired = median(zip(mtls, plain).map { $0.rate / max(1, $1.rate) })
        say(String(format: "keep-alive: plaintext %.0f req/s, mutual TLS %.0f req/s, ratio %.2f (of medians; median of paired rounds %.2f; target ≥ 0.8)",
                   p, t, t / max(1, p), paired))
        if !keepAliveOnly {
            say(String(format: "new connection per request: full mTLS handshakes %.0f/s, resumed %.0f/s, plaintext %.0f/s", f, r, c))
        }
        let resumedShare = resumed.reduce(0.0) { $0 + Double($1.resumedHandshakes) } / max(1, resumed.reduce(0.0) { $0 + Double($1.resumedHandshakes + $1.fullHandshakes) })
        try writeSummary([
            "benchmark": "tls", "connections": connections, "handshakeConnections": handshakeConnections, "durationSeconds": duration,
            "rounds": rounds, "tlsVersion": version.description, "bodyBytes": bodyBytes,
            "memoryConnections": memoryConnections, "plaintextKiBPerConnection": plainKiB, "mutualTLSKiBPerConnection": tlsKiB, "loadAverageAtStart": load, "loadAverageAtEnd": ProcessCPU.loadAverage(),
            "plaintextRps": plain.map(\.rate), "mutualTLSRps": mtls.map(\.rate), "ratio": t / max(1, p), "pairedRatio": paired,
            "fullHandshakesPerSecond": full.map(\.rate), "resumedHandshakesPerSecond": resumed.map(\.rate),
            "resumedShareOfResumeRounds": resumedShare, "plaintextConnectsPerSecond": connects.map(\.rate),
            "details": ["plaintext": plain.map(\.json), "mutualTLS": mtls.map(\.json), "full": full.map(\.json),
                        "resumed": resumed.map(\.json), "plaintextConnects": connects.map(\.json)],
        ], to: output, name: "bench-tls.json")
    }
}
