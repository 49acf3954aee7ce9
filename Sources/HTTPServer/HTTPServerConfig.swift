import HTTP

/// Configuration of one listener. Defaults are the operator-facing defaults (docs/configuration.md).
public struct HTTPServerConfig: Sendable {
    /// Listener name used in logs and metrics ("api", "admin").
    public var name: String
    public var host: String
    public var port: Int
    public var limits: HTTPLimits
    public var timeouts: TimeoutPolicy
    /// Connection limits at accept: the table, per address, unfinished handshakes and the
    /// reserve for authenticated connections (`ConnectionAdmission` enforces them).
    public var admission = AdmissionPolicy()
    /// A connection whose unsent response bytes exceed this stops being read until they drain.
    public var outputHighWaterBytes = 1 << 20
    /// Pipelined bytes buffered behind a request in progress before reading pauses.
    public var pipelineBufferBytesMax = 256 * 1024
    /// After SIGTERM: how long in-flight requests may take before connections are closed.
    public var shutdownGraceMs: UInt64 = 10_000

    public init(name: String, host: String, port: Int, limits: HTTPLimits = HTTPLimits(),
                timeouts: TimeoutPolicy = TimeoutPolicy()) {
        self.name = name
        self.host = host
        self.port = port
        self.limits = limits
        self.timeouts = timeouts
    }
}
