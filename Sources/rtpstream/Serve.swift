import ArgumentParser
import Foundation
import Hub
import Logging

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the hub.",
        discussion: """
        Every option can also be set as an environment variable RTPSTREAM_<NAME> (upper case, \
        dashes as underscores) and in a --config file of 'name = value' lines. Flags win over \
        the environment, which wins over the file. See docs/configuration.md.
        """)

    @Option(help: "Config file of 'name = value' lines (also RTPSTREAM_CONFIG).") var config: String?
    @Option(help: "API listener HOST:PORT (default 127.0.0.1:8443).") var listen: String?
    @Option(name: .customLong("admin-listen"), help: "Admin listener HOST:PORT (default 127.0.0.1:9090).") var adminListen: String?
    @Option(name: .customLong("data-dir"), help: "Log store directory (default ./data).") var dataDir: String?
    @Option(help: "Region part of partition keys (default local).") var region: String?
    @Option(name: .customLong("hub-ispb"), help: "The hub's own ISPB (default 99999010).") var hubISPB: String?
    @Option(help: "Redis URL (default redis://127.0.0.1:6379).") var redis: String?
    @Option(name: .customLong("tls-cert"), help: "Server certificate (PEM).") var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "Server private key (PEM).") var tlsKey: String?
    @Option(name: .customLong("tls-client-ca"), help: "CA bundle for client certificates (PEM).") var tlsClientCA: String?
    @Option(name: .customLong("tls-crl"), help: "Certificate revocation list (PEM).") var tlsCRL: String?
    @Option(name: .customLong("tls-min-version"), help: "Lowest TLS version: 1.2 or 1.3 (default 1.2).") var tlsMinVersion: String?
    @Option(name: .customLong("tls-max-version"), help: "Highest TLS version: 1.2 or 1.3 (default 1.3).") var tlsMaxVersion: String?
    @Option(name: .customLong("tls-ciphers"), help: "TLS 1.2 cipher list (OpenSSL syntax).") var tlsCiphers: String?
    @Option(name: .customLong("tls-ciphersuites"), help: "TLS 1.3 cipher suites (OpenSSL syntax).") var tlsCiphersuites: String?
    @Option(name: .customLong("tls-ispb-rule"), help: "ISPB location in the client subject: ATTR[:run|whole] (default CN:whole).") var tlsISPBRule: String?
    @Flag(name: .customLong("insecure-plaintext"), help: "Plain HTTP on the API listener (development only).") var insecurePlaintext = false
    @Option(name: .customLong("long-poll-seconds"), help: "Pull wait before 204 (default 5).") var longPollSeconds: String?
    @Option(name: .customLong("stream-idle-seconds"), help: "Abandoned stream release time (default 30).") var streamIdleSeconds: String?
    @Option(name: .customLong("slots-per-ispb"), help: "Concurrent streams per ISPB (default 6).") var slotsPerISPB: String?
    @Option(help: "XSD file for the schema registry (repeatable).") var schema: [String] = []
    @Option(name: .customLong("token-key-file"), help: "HMAC key file for PI-Pull-Next tokens.") var tokenKeyFile: String?
    @Option(name: .customLong("log-level"), help: "trace|debug|info|notice|warning|error|critical (default info).") var logLevel: String?
    @Option(name: .customLong("idle-timeout-seconds"), help: "Keep-alive idle limit (default 60).") var idleTimeoutSeconds: String?
    @Option(name: .customLong("header-timeout-seconds"), help: "Time to receive headers (default 10).") var headerTimeoutSeconds: String?
    @Option(name: .customLong("body-timeout-seconds"), help: "Time to receive a body (default 30).") var bodyTimeoutSeconds: String?
    @Option(name: .customLong("handshake-timeout-seconds"), help: "Time to complete the TLS handshake (default 10).") var handshakeTimeoutSeconds: String?
    @Option(name: .customLong("write-stall-timeout-seconds"), help: "Reset a connection whose output makes no progress (default 30).") var writeStallTimeoutSeconds: String?
    @Option(name: .customLong("body-bytes-max"), help: "Largest request body (default 4194304).") var bodyBytesMax: String?
    @Option(name: .customLong("connections-max"), help: "Open API connections at most (default 10000).") var connectionsMax: String?
    @Option(name: .customLong("connections-per-address-max"), help: "Open API connections from one IP address (default 1000).") var connectionsPerAddressMax: String?
    @Option(name: .customLong("handshakes-per-address-max"), help: "Unfinished TLS handshakes from one IP address (default 128).") var handshakesPerAddressMax: String?
    @Option(name: .customLong("established-reserve-percent"), help: "Share of connections-max kept for authenticated connections (default 10).") var establishedReservePercent: String?
    @Option(name: .customLong("shutdown-grace-seconds"), help: "In-flight time after SIGTERM (default 10).") var shutdownGraceSeconds: String?
    @Option(name: .customLong("redis-timeout-ms"), help: "Deadline of every Redis command (default 50).") var redisTimeoutMs: String?
    @Option(name: .customLong("rate-limit-per-second"), help: "Pull requests per ISPB per second; 0 = off (default).") var rateLimitPerSecond: String?
    @Option(name: .customLong("audit-log"), help: "Audit log of rejected messages (default <data-dir>/audit.jsonl).") var auditLog: String?
    @Option(help: "Participant directory file (identifier ISPB per line).") var participants: String?
    @Option(name: .customLong("decompressed-bytes-max"), help: "Largest body after gzip decoding (default 4194304).") var decompressedBytesMax: String?
    @Option(name: .customLong("partition-backlog-max"), help: "Undelivered messages per recipient before 429 (default 1000000).") var partitionBacklogMax: String?
    @Option(name: .customLong("open-segments-max"), help: "Segment files kept open at most (default 1024).") var openSegmentsMax: String?
    @Option(name: .customLong("ispb-metrics-max"), help: "ISPBs with per-ISPB gauges at most (default 2000).") var ispbMetricsMax: String?
    @Option(name: .customLong("worker-threads"), help: "XML validation threads (default 2).") var workerThreads: String?
    @Option(name: .customLong("validation-cpu-ms-max"), help: "CPU milliseconds one message's validation may take (default 2000).") var validationCPUMsMax: String?
    @Option(name: .customLong("dedup-window-seconds"), help: "Idempotency memory (default 86400).") var dedupWindowSeconds: String?
    @Option(name: .customLong("retention-hours"), help: "Age retention of acknowledged segments (default 168).") var retentionHours: String?
    @Flag(name: .customLong("bench-fixed-response"), help: "Serve GET /bench/fixed (8 KiB unless --bench-fixed-bytes) for benchmarks.") var benchFixedResponse = false
    @Option(name: .customLong("bench-fixed-bytes"), help: "Body size of GET /bench/fixed (default 8192).") var benchFixedBytes: String?

    /// Flags given on the command line, by option name, in the order of the option table.
    var flagEntries: [(String, String)] {
        var out: [(String, String)] = []
        func add(_ name: String, _ value: String?) { if let value { out.append((name, value)) } }
        add("listen", listen)
        add("admin-listen", adminListen)
        add("data-dir", dataDir)
        add("region", region)
        add("hub-ispb", hubISPB)
        add("redis", redis)
        add("tls-cert", tlsCert)
        add("tls-key", tlsKey)
        add("tls-client-ca", tlsClientCA)
        add("tls-crl", tlsCRL)
        add("tls-min-version", tlsMinVersion)
        add("tls-max-version", tlsMaxVersion)
        add("tls-ciphers", tlsCiphers)
        add("tls-ciphersuites", tlsCiphersuites)
        add("tls-ispb-rule", tlsISPBRule)
        if insecurePlaintext { add("insecure-plaintext", "true") }
        add("long-poll-seconds", longPollSeconds)
        add("stream-idle-seconds", streamIdleSeconds)
        add("slots-per-ispb", slotsPerISPB)
        for s in schema { add("schema", s) }
        add("token-key-file", tokenKeyFile)
        add("log-level", logLevel)
        add("idle-timeout-seconds", idleTimeoutSeconds)
        add("header-timeout-seconds", headerTimeoutSeconds)
        add("body-timeout-seconds", bodyTimeoutSeconds)
        add("handshake-timeout-seconds", handshakeTimeoutSeconds)
        add("write-stall-timeout-seconds", writeStallTimeoutSeconds)
        add("body-bytes-max", bodyBytesMax)
        add("connections-max", connectionsMax)
        add("connections-per-address-max", connectionsPerAddressMax)
        add("handshakes-per-address-max", handshakesPerAddressMax)
        add("established-reserve-percent", establishedReservePercent)
        add("shutdown-grace-seconds", shutdownGraceSeconds)
        add("redis-timeout-ms", redisTimeoutMs)
        add("rate-limit-per-second", rateLimitPerSecond)
        add("audit-log", auditLog)
        add("participants", participants)
        add("decompressed-bytes-max", decompressedBytesMax)
        add("partition-backlog-max", partitionBacklogMax)
        add("open-segments-max", openSegmentsMax)
        add("ispb-metrics-max", ispbMetricsMax)
        add("worker-threads", workerThreads)
        add("validation-cpu-ms-max", validationCPUMsMax)
        add("dedup-window-seconds", dedupWindowSeconds)
        add("retention-hours", retentionHours)
        if benchFixedResponse { add("bench-fixed-response", "true") }
        add("bench-fixed-bytes", benchFixedBytes)
        return out
    }

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        let configPath = config ?? env["RTPSTREAM_CONFIG"]
        var text: String?
        if let configPath {
            do { try HubConfiguration.checkReadableFile(configPath, option: "config") } catch { fail("\(error)") }
            guard let data = FileManager.default.contents(atPath: configPath) else { fail("--config: cannot read \(configPath)") }
            guard let s = String(data: data, encoding: .utf8) else { fail("--config: \(configPath) is not UTF-8 text") }
            text = s
        }
        let resolved: HubConfiguration
        do {
            resolved = try HubConfiguration.resolve(flags: flagEntries, environment: env,
                                                    configFileText: text, configFileName: configPath ?? "config")
        } catch {
            fail("\(error)")
        }
        let level = resolved.logLevel
        LoggingSystem.bootstrap { label in GatedLogHandler(label: label, level: level) }
        let logger = Logger(label: "rtpstream")
        do {
            // Start-up logs are held until the hub serves: a failure prints one line.
            let hub = try Hub(config: resolved, logger: logger)
            try hub.run(serving: { startupLog.open() })
        } catch {
            startupLog.failed()
            fail("\(error)")
        }
    }
}
