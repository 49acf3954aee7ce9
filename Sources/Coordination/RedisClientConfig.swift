/// Where the client connects and its limits. Every default is in this table (docs/coordination.md).
public struct RedisClientConfig: Sendable {
    /// Numeric address; a host name would be resolved by hiredis with a blocking lookup.
    public var host = "127.0.0.1"
    public var port = 6379
    /// Sent with AUTH on every new connection when set.
    public var password: String?
    /// Sent with SELECT on every new connection when not 0.
    public var database = 0
    /// Deadline of every command, measured from the call (one deadline for all commands keeps
    /// the pending queue ordered by deadline, so one timer watches the oldest).
    public var commandTimeoutMs: UInt64 = 50
    /// Consecutive timeouts or infrastructure error replies that open the breaker.
    public var failuresToOpen = 3
    /// First cool-down after the breaker opens; doubles per failed probe up to the max.
    public var coolDownMsMin: UInt64 = 100
    public var coolDownMsMax: UInt64 = 2_000
    /// How often Redis's clock is sampled again with TIME (see `RedisClock`).
    public var clockResyncMs: UInt64 = 10_000
    /// Commands in flight at most; beyond it calls fail at once with `.unavailable`.
    public var pendingCommandsMax = 16_384

    public init() {}

    public init(host: String, port: Int, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.password = password
        self.database = database
    }

    func validate() {
        precondition(!host.isEmpty && (1...65535).contains(port), "bad Redis address \(host):\(port)")
        precondition(database >= 0)
        precondition(commandTimeoutMs >= 1 && commandTimeoutMs <= 60_000)
        precondition(pendingCommandsMax >= 1)
        precondition(clockResyncMs >= 100)
    }
}
