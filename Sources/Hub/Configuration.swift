import Glibc
import Logging
import TLS

/// A listening address.
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(_ host: String, _ port: Int) {
        self.host = host
        self.port = port
    }

    /// "HOST:PORT" or "[V6]:PORT"; port 0 asks the kernel for a free port.
    public init(parsing s: String) throws {
        var host: Substring
        var portText: Substring
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]"), s[s.index(after: close)...].hasPrefix(":") else {
                throw ConfigurationError("'\(s)' is not HOST:PORT")
            }
            host = s[s.index(after: s.startIndex)..<close]
            portText = s[s.index(close, offsetBy: 2)...]
        } else {
            guard let colon = s.lastIndex(of: ":") else { throw ConfigurationError("'\(s)' is not HOST:PORT") }
            host = s[..<colon]
            portText = s[s.index(after: colon)...]
        }
        if host == "localhost" { host = "127.0.0.1" }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else {
            throw ConfigurationError("'\(s)' is not HOST:PORT with a port 0-65535")
        }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A configuration problem: one line, naming the option and the reason.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Everything `rtpstream serve` can be told. Defaults are DESIGN.md §3's; docs/configuration.md
/// is the reference.
public struct HubConfiguration: Sendable {
    public var listen = HostPort("127.0.0.1", 8443)
    public var adminListen = HostPort("127.0.0.1", 9090)
    public var dataDir = "./data"
    public var region = "local"
    public var hubISPB = "99999010"
    public var redisURL = "redis://127.0.0.1:6379"
    public var tlsCert: String?
    public var tlsKey: String?
    public var tlsClientCA: String?
    public var tlsCRL: String?
    public var tlsMinVersion = "1.2"
    public var tlsMaxVersion = "1.3"
    public var tlsCiphers: String?
    public var tlsCiphersuites: String?
    public var tlsISPBRule = TLSDefaults.ispbRule
    public var insecurePlaintext = false
    public var longPollSeconds = 5
    public var streamIdleSeconds = 30
    public var slotsPerISPB = 6
    public var schemas: [String] = []
    public var tokenKeyFile: String?
    public var logLevel: Logger.Level = .info
    public var idleTimeoutSeconds = 60
    public var headerTimeoutSeconds = 10
    public var bodyTimeoutSeconds = 30
    public var handshakeTimeoutSeconds = 10
    public var writeStallTimeoutSeconds = 30
    public var bodyBytesMax = 4 * 1024 * 1024
    public var connectionsMax = 10_000
    public var connectionsPerAddressMax = 1_000
    public var handshakesPerAddressMax = 128
    public var establishedReservePercent = 10
    public var shutdownGraceSeconds = 10
    public var redisTimeoutMs = 50
    public var rateLimitPerSecond = 0
    public var auditLogPath: String?
    public var participantsFile: String?
    public var decompressedBytesMax = 4 * 1024 * 1024
    public var partitionBacklogMax = 1_000_000
    /// Segment files the log store keeps open at most (idle ones close and reopen on use).
    public var openSegmentsMax = 1024
    /// ISPBs with their own per-ISPB gauge series at most (the rest only in the totals).
    public var ispbMetricsMax = 2000
    public var workerThreads = 2
    /// Thread CPU time one message's validation may take (ValidationLimits.cpuMillisecondsMax).
    public var validationCPUMsMax = 2_000
    public var dedupWindowSeconds = 86_400
    public var retentionHours = 168
    /// Serves GET /bench/fixed (a fixed body, `benchFixedBytes`) on the API listener, for benchmarks only.
    public var benchFixedResponse = false
    /// Body size of GET /bench/fixed (benchmarks that vary the response size).
    public var benchFixedBytes = 8192

    public init() {}
}

/// One option of `rtpstream serve`: its flag name, how it is parsed and applied. The same table
/// drives flags, `RTPSTREAM_*` environment variables and the config file, so the three can
/// never disagree.
public struct OptionSpec: Sendable {
    public enum Kind: Sendable { case value, flag, repeatable }
    public let name: String
    public let kind: Kind
    public let help: String
    let apply: @Sendable (inout HubConfiguration, String) throws -> Void

    public var environmentName: String {
        "RTPSTREAM_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 })
    }
}

extension HubConfiguration {
    public static let options: [OptionSpec] = [
        .init(name: "listen", kind: .value, help: "API listener HOST:PORT (mutual TLS unless --insecure-plaintext)") {
            $0.listen = try listenAddress($1) },
        .init(name: "admin-listen", kind: .value, help: "admin listener HOST:PORT (/metrics, /healthz, /readyz; plaintext)") {
            $0.adminListen = try listenAddress($1) },
        .init(name: "data-dir", kind: .value, help: "directory of the log store") {
            $0.dataDir = try nonEmpty($1) },
        .init(name: "region", kind: .value, help: "region part of partition keys") {
            $0.region = try regionName($1) },
        .init(name: "hub-ispb", kind: .value, help: "the hub's own ISPB (messages to it route to the creditor agent)") {
            $0.hubISPB = try ispb($1) },
        .init(name: "redis", kind: .value, help: "Redis URL for slots, rate windows, cursor cache and leases") {
            $0.redisURL = try redisURL($1) },
        .init(name: "tls-cert", kind: .value, help: "server certificate (PEM)") { $0.tlsCert = try nonEmpty($1) },
        .init(name: "tls-key", kind: .value, help: "server private key (PEM)") { $0.tlsKey = try nonEmpty($1) },
        .init(name: "tls-client-ca", kind: .value, help: "CA bundle for client certificates (PEM)") {
            $0.tlsClientCA = try nonEmpty($1) },
        .init(name: "tls-crl", kind: .value, help: "certificate revocation list (PEM), optional") {
            $0.tlsCRL = try nonEmpty($1) },
        .init(name: "tls-min-version", kind: .value, help: "lowest TLS version accepted: 1.2 or 1.3") {
            $0.tlsMinVersion = try tlsVersion($1) },
        .init(name: "tls-max-version", kind: .value, help: "highest TLS version accepted: 1.2 or 1.3") {
            $0.tlsMaxVersion = try tlsVersion($1) },
        .init(name: "tls-ciphers", kind: .value, help: "TLS 1.2 cipher list (OpenSSL syntax)") {
            $0.tlsCiphers = try nonEmpty($1) },
        .init(name: "tls-ciphersuites", kind: .value, help: "TLS 1.3 cipher suites (OpenSSL syntax)") {
            $0.tlsCiphersuites = try nonEmpty($1) },
        .init(name: "tls-ispb-rule", kind: .value, help: "where the ISPB is in the client certificate subject: ATTR[:run|whole]") {
            $0.tlsISPBRule = try nonEmpty($1) },
        .init(name: "insecure-plaintext", kind: .flag, help: "plain HTTP on the API listener (development only)") {
            $0.insecurePlaintext = try bool($1) },
        .init(name: "long-poll-seconds", kind: .value, help: "how long a pull waits for messages before 204") {
            $0.longPollSeconds = try int($1, 0...60) },
        .init(name: "stream-idle-seconds", kind: .value, help: "an abandoned stream's slot and batch are released after this") {
            $0.streamIdleSeconds = try int($1, 1...3600) },
        .init(name: "slots-per-ispb", kind: .value, help: "concurrent streams per ISPB") {
            $0.slotsPerISPB = try int($1, 1...64) },
        .init(name: "schema", kind: .repeatable, help: "XSD file for the schema registry (repeatable; default: the shipped pacs.008 profile)") {
            $0.schemas.append(try nonEmpty($1)) },
        .init(name: "token-key-file", kind: .value, help: "HMAC key file for PI-Pull-Next tokens (default: generated into the data dir)") {
            $0.tokenKeyFile = try nonEmpty($1) },
        .init(name: "log-level", kind: .value, help: "trace, debug, info, notice, warning, error, critical") {
            guard let l = Logger.Level(rawValue: $1) else { throw ConfigurationError("'\($1)' is not a log level") }
            $0.logLevel = l },
        .init(name: "idle-timeout-seconds", kind: .value, help: "keep-alive connection idle limit") {
            $0.idleTimeoutSeconds = try int($1, 1...3600) },
        .init(name: "header-timeout-seconds", kind: .value, help: "time to receive a request's headers") {
            $0.headerTimeoutSeconds = try int($1, 1...600) },
        .init(name: "body-timeout-seconds", kind: .value, help: "time to receive a request's body") {
            $0.bodyTimeoutSeconds = try int($1, 1...600) },
        .init(name: "handshake-timeout-seconds", kind: .value, help: "time to complete the TLS handshake") {
            $0.handshakeTimeoutSeconds = try int($1, 1...600) },
        .init(name: "write-stall-timeout-seconds", kind: .value, help: "queued response bytes without progress for this long reset the connection") {
            $0.writeStallTimeoutSeconds = try int($1, 1...600) },
        .init(name: "body-bytes-max", kind: .value, help: "largest request body accepted (after transfer decoding)") {
            $0.bodyBytesMax = try int($1, 1024...(256 << 20)) },
        .init(name: "connections-max", kind: .value, help: "open API connections at most") {
            $0.connectionsMax = try int($1, 1...1_000_000) },
        .init(name: "connections-per-address-max", kind: .value, help: "open API connections from one IP address (IPv6: one /64) at most") {
            $0.connectionsPerAddressMax = try int($1, 1...1_000_000) },
        .init(name: "handshakes-per-address-max", kind: .value, help: "unfinished TLS handshakes from one IP address (IPv6: one /64) at most") {
            $0.handshakesPerAddressMax = try int($1, 1...1_000_000) },
        .init(name: "established-reserve-percent", kind: .value, help: "share of connections-max only connections with a completed mTLS handshake may use") {
            $0.establishedReservePercent = try int($1, 0...90) },
        .init(name: "shutdown-grace-seconds", kind: .value, help: "time in-flight requests get after SIGTERM") {
            $0.shutdownGraceSeconds = try int($1, 0...600) },
        .init(name: "redis-timeout-ms", kind: .value, help: "deadline of every Redis command (then local fallback)") {
            $0.redisTimeoutMs = try int($1, 5...5000) },
        .init(name: "rate-limit-per-second", kind: .value, help: "pull requests per ISPB per second (sliding window in Redis); 0 = off") {
            $0.rateLimitPerSecond = try int($1, 0...1_000_000) },
        .init(name: "audit-log", kind: .value, help: "JSON-lines audit log of rejected messages (default <data-dir>/audit.jsonl)") {
            $0.auditLogPath = try nonEmpty($1) },
        .init(name: "participants", kind: .value, help: "participant directory: identifier (BIC, clearing member id) to ISPB") {
            $0.participantsFile = try nonEmpty($1) },
        .init(name: "decompressed-bytes-max", kind: .value, help: "largest body after gzip decoding") {
            $0.decompressedBytesMax = try int($1, 1024...(256 << 20)) },
        .init(name: "partition-backlog-max", kind: .value, help: "undelivered messages per recipient before sends get 429") {
            $0.partitionBacklogMax = try int($1, 1...1_000_000_000) },
        .init(name: "open-segments-max", kind: .value, help: "segment files kept open at most; idle ones close and reopen on use") {
            $0.openSegmentsMax = try int($1, 16...1_000_000) },
        .init(name: "ispb-metrics-max", kind: .value, help: "ISPBs with their own per-ISPB gauge series at most") {
            $0.ispbMetricsMax = try int($1, 0...1_000_000) },
        .init(name: "worker-threads", kind: .value, help: "threads for XML validation (libuv pool)") {
            $0.workerThreads = try int($1, 1...64) },
        .init(name: "validation-cpu-ms-max", kind: .value, help: "CPU milliseconds one message's validation may take (422 document-too-complex beyond)") {
            $0.validationCPUMsMax = try int($1, 10...60_000) },
        .init(name: "dedup-window-seconds", kind: .value, help: "how long a (sender, message id) is remembered for idempotency") {
            $0.dedupWindowSeconds = try int($1, 60...(90 * 86_400)) },
        .init(name: "retention-hours", kind: .value, help: "fully acknowledged segments older than this are deleted") {
            $0.retentionHours = try int($1, 1...(3650 * 24)) },
        .init(name: "bench-fixed-response", kind: .flag, help: "serve GET /bench/fixed (8 KiB unless bench-fixed-bytes) for benchmarks") {
            $0.benchFixedResponse = try bool($1) },
        .init(name: "bench-fixed-bytes", kind: .value, help: "body size of GET /bench/fixed") {
            $0.benchFixedBytes = try int($1, 0...(4 << 20)) },
    ]

    /// Resolves the configuration: defaults, then the config file, then `RTPSTREAM_*`
    /// variables, then flags (later sources win; repeatable options are replaced, not merged,
    /// by a later source). Unknown names anywhere are errors.
    public static func resolve(flags: [(String, String)], environment: [String: String],
                               configFileText: String?, configFileName: String = "config") throws -> HubConfiguration {
        var config = HubConfiguration()
        let byName = Dictionary(uniqueKeysWithValues: options.map { ($0.name, $0) })
        let byEnv = Dictionary(uniqueKeysWithValues: options.map { ($0.environmentName, $0) })

        /// `where` names a source other than the command line, after the reason.
        func apply(_ entries: [(String, String)], source: String, where: (String) -> String = { _ in "" }) throws {
            var replaced = Set<String>()
            for (name, value) in entries {
                guard let spec = byName[name] else { throw ConfigurationError("\(source): unknown option '\(name)'") }
                if spec.kind == .repeatable && !replaced.contains(name) {
                    config.schemas = []
                    replaced.insert(name)
                }
                do {
                    try spec.apply(&config, value)
                } catch let e as ConfigurationError {
                    throw ConfigurationError("--\(name): \(e.description)\(`where`(name))")
                }
            }
        }

        if let text = configFileText {
            try apply(try parseConfigFile(text, name: configFileName), source: configFileName) { _ in " (in \(configFileName))" }
        }
        var envEntries: [(String, String)] = []
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) where key.hasPrefix("RTPSTREAM_") {
            if key == "RTPSTREAM_CONFIG" { continue }
            guard let spec = byEnv[key] else { throw ConfigurationError("environment: unknown variable \(key)") }
            if spec.kind == .repeatable {
                for part in value.split(separator: ",") { envEntries.append((spec.name, String(part))) }
            } else {
                envEntries.append((spec.name, value))
            }
        }
        try apply(envEntries, source: "environment") { name in " (in \(byName[name]!.environmentName))" }
        try apply(flags, source: "command line")
        try config.validate()
        return config
    }

    /// `name = value` lines; `#` starts a comment; a flag may stand alone (`insecure-plaintext`).
    static func parseConfigFile(_ text: String, name: String) throws -> [(String, String)] {
        var out: [(String, String)] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(raw)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let trimmed = line.trimmingCharacters(in: " \t\r")
            if trimmed.isEmpty { continue }
            if let eq = trimmed.firstIndex(of: "=") {
                let key = String(trimmed[..<eq]).trimmingCharacters(in: " \t")
                let value = String(trimmed[trimmed.index(after: eq)...]).trimmingCharacters(in: " \t")
                out.append((key, value))
            } else if trimmed.allSatisfy({ $0.isLetter || $0 == "-" }) {
                out.append((String(trimmed), "true"))
            } else {
                throw ConfigurationError("\(name):\(n + 1): expected 'name = value'")
            }
        }
        return out
    }

    func validate() throws {
        if !insecurePlaintext {
            for (name, value) in [("tls-cert", tlsCert), ("tls-key", tlsKey), ("tls-client-ca", tlsClientCA)] where value == nil {
                throw ConfigurationError("--\(name): required for mutual TLS (or pass --insecure-plaintext for development)")
            }
        }
        if listen == adminListen && listen.port != 0 {
            throw ConfigurationError("--admin-listen: must differ from --listen")
        }
    }

    // MARK: value parsers

    static func nonEmpty(_ s: String) throws -> String {
        guard !s.isEmpty else { throw ConfigurationError("empty value") }
        return s
    }

    /// A listener's HOST:PORT: HOST must be an IPv4 or IPv6 address (or localhost), which
    /// is what the listener binds; a name is refused here rather than at bind time.
    static func listenAddress(_ s: String) throws -> HostPort {
        let hp = try HostPort(parsing: s)
        var v4 = in_addr()
        var v6 = in6_addr()
        guard inet_pton(AF_INET, hp.host, &v4) == 1 || inet_pton(AF_INET6, hp.host, &v6) == 1 else {
            throw ConfigurationError("'\(hp.host)' is not an IPv4 or IPv6 address")
        }
        return hp
    }

    static func int(_ s: String, _ range: ClosedRange<Int>) throws -> Int {
        guard let n = Int(s), range.contains(n) else {
            throw ConfigurationError("'\(s)' is not an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return n
    }

    static func bool(_ s: String) throws -> Bool {
        switch s.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw ConfigurationError("'\(s)' is not true/false")
        }
    }

    static func tlsVersion(_ s: String) throws -> String {
        guard s == "1.2" || s == "1.3" else { throw ConfigurationError("'\(s)' is not 1.2 or 1.3") }
        return s
    }

    static func ispb(_ s: String) throws -> String {
        guard s.utf8.count == 8, s.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            throw ConfigurationError("'\(s)' is not an 8-digit ISPB")
        }
        return s
    }

    static func regionName(_ s: String) throws -> String {
        guard !s.isEmpty, s.utf8.count <= 32,
              s.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }) else {
            throw ConfigurationError("'\(s)' is not a region name (1-32 of a-z, 0-9, -)")
        }
        return s
    }

    static func redisURL(_ s: String) throws -> String {
        guard s.hasPrefix("redis://") else { throw ConfigurationError("'\(s)' is not a redis:// URL") }
        _ = try RedisEndpoint(url: s)
        return s
    }
}

/// Host, port and database of a `redis://[:password@]host:port[/db]` URL.
public struct RedisEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var database: Int
    public var password: String?

    public init(url: String) throws {
        guard url.hasPrefix("redis://") else { throw ConfigurationError("'\(url)' is not a redis:// URL") }
        var rest = Substring(url.dropFirst("redis://".count))
        var db = 0
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            if !dbText.isEmpty {
                guard let n = Int(dbText), n >= 0 else { throw ConfigurationError("'\(url)': bad database number") }
                db = n
            }
            rest = rest[..<slash]
        }
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            var auth = rest[..<at]
            if auth.hasPrefix(":") { auth = auth.dropFirst() }
            password = String(auth)
            rest = rest[rest.index(after: at)...]
        }
        let hp = try HostPort(parsing: rest.contains(":") ? String(rest) : "\(rest):6379")
        host = hp.host
        port = hp.port
        database = db
        self.password = password
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
