import HTTP

/// Configuration of one listener. Defaults are the operator-facing defaults (docs/configuration.md).
public struct HTTPServerConfig: Sendable {
    /// Listener name used in logs and metrics ("api", "admin").
    public var name: String
    public var host: String
    public var port: Int
    public var limits: HTTPLimits
    public var timeouts: TimeoutPolicy
    /// Open connections at most; beyond, an unauthenticated connection is shed or the new one
    /// is reset at accept (`ConnectionAdmission`).
    public var connectionsMax = 10_000
    /// Open connections from one address (IPv4, or IPv6 /64) at most.
    public var connectionsPerAddressMax = 1_000
    /// Unfinished TLS handshakes from one address at most.
    public var handshakesPerAddressMax = 128
    /// Share of `connectionsMax` (percent) that only connections with a completed mutual-TLS
    /// handshake may occupy.
    public var establishedReservePercent = 10
    /// A connection whose unsent response bytes exceed this stops being read until they drain.
    public var outputHighWaterBytes = 1 << 20
    /// Pipelined bytes buffered behind a request in progress before reading pauses.
    public var pipelineBufferBytesMax = 256 * 1024
    /// After SIGTERM: how long in-flight requests may take before connections are closed.
    public var shutdownGraceMs: UInt64 = 10_000

    /// The limits `ConnectionAdmission` enforces.
    public var admission: AdmissionPolicy {
        var p = AdmissionPolicy()
        p.connectionsMax = connectionsMax
        p.connectionsPerAddressMax = connectionsPerAddressMax
        p.handshakesPerAddressMax = handshakesPerAddressMax
        p.establishedReservePercent = establishedReservePercent
        return p
    }

    public init(name: String, host: String, port: Int, limits: HTTPLimits = HTTPLimits(),
                timeouts: TimeoutPolicy = TimeoutPolicy()) {
        self.name = name
        self.host = host
        self.port = port
        self.limits = limits
        self.timeouts = timeouts
    }
}
