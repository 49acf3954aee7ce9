import Metrics

/// What a command came to, the `outcome` label of `rtpstream_redis_commands_total`.
enum CommandOutcome: String, CaseIterable {
    case ok
    /// Redis answered with an error reply.
    case errorReply = "error_reply"
    case timeout
    case connectionLost = "connection_lost"
    /// Failed at once: breaker open or half-open, client closed.
    case unavailable
    /// Failed at once: `pendingCommandsMax` commands already in flight.
    case overloaded
}

/// The client's metric handles, created once (swift-metrics lookups take a lock).
final class RedisMetrics {
    private let commands: [CommandOutcome: Counter]
    private let latency: Metrics.Timer
    private let breakerState: Gauge
    private let reconnects: Counter
    private let scriptReloads: Counter
    private let lagExtensions: Counter

    init(dimensions: [(String, String)] = []) {
        var commands: [CommandOutcome: Counter] = [:]
        for outcome in CommandOutcome.allCases {
            commands[outcome] = Counter(label: "rtpstream_redis_commands_total",
                                        dimensions: dimensions + [("outcome", outcome.rawValue)])
        }
        self.commands = commands
        latency = Metrics.Timer(label: "rtpstream_redis_command_duration_seconds", dimensions: dimensions)
        breakerState = Gauge(label: "rtpstream_redis_breaker_state", dimensions: dimensions)
        reconnects = Counter(label: "rtpstream_redis_reconnects_total", dimensions: dimensions)
        scriptReloads = Counter(label: "rtpstream_redis_script_reloads_total", dimensions: dimensions)
        lagExtensions = Counter(label: "rtpstream_redis_deadline_lag_extensions_total", dimensions: dimensions)
    }

    func command(_ outcome: CommandOutcome) { commands[outcome]!.increment() }
    func latency(ns: UInt64) { latency.recordNanoseconds(Int64(ns)) }
    func breaker(_ state: BreakerState) { breakerState.record(state.rawValue) }
    func reconnect() { reconnects.increment() }
    func scriptReload() { scriptReloads.increment() }
    func lagExtension() { lagExtensions.increment() }
}
