/// The breaker's state; the raw values are the `rtpstream_redis_breaker_state` gauge's.
public enum BreakerState: Int, Sendable {
    /// Commands go to Redis.
    case closed = 0
    /// Commands fail at once with `.unavailable`; a probe is due at `probeAtMs`.
    case open = 1
    /// One probe (a fresh connection and a PING) is in flight; commands still fail at once.
    case halfOpen = 2
}

/// The circuit breaker as a pure state machine over a caller-supplied clock (milliseconds);
/// `RedisClient` feeds it outcomes and acts on its transitions.
///
/// closed → open after `failuresToOpen` consecutive failures, or at once by `trip` (the
/// connection was lost); open → half-open by `beginProbe` once the cool-down passed; half-open →
/// closed by `probeSucceeded`, → open again by any failure. The cool-down doubles with every
/// opening since the breaker was last closed, from `coolDownMsMin` up to `coolDownMsMax`.
public struct CircuitBreaker: Sendable {
    public let failuresToOpen: Int
    public let coolDownMsMin: UInt64
    public let coolDownMsMax: UInt64

    /// Starts open with a probe due at once: nothing is sent before Redis answered a PING.
    public private(set) var state: BreakerState = .open
    public private(set) var consecutiveFailures = 0
    /// Openings since the breaker was last closed (the cool-down's exponent).
    public private(set) var openingsSinceClose = 0
    /// When an open breaker may probe.
    public private(set) var probeAtMs: UInt64 = 0

    public init(failuresToOpen: Int, coolDownMsMin: UInt64, coolDownMsMax: UInt64) {
        precondition(failuresToOpen >= 1)
        precondition(coolDownMsMin >= 1 && coolDownMsMin <= coolDownMsMax)
        self.failuresToOpen = failuresToOpen
        self.coolDownMsMin = coolDownMsMin
        self.coolDownMsMax = coolDownMsMax
    }

    public var allowsCommands: Bool { state == .closed }

    /// The cool-down the next opening will wait.
    public var nextCoolDownMs: UInt64 {
        let shift = min(openingsSinceClose, 32)
        let ms = coolDownMsMin << UInt64(shift)
        return ms >= coolDownMsMin && ms <= coolDownMsMax ? ms : coolDownMsMax
    }

    /// Redis answered (an application error reply counts as an answer).
    public mutating func recordSuccess() {
        consecutiveFailures = 0
    }

    /// A command failed (timeout, infrastructure error reply). Returns true when this opened
    /// the breaker.
    public mutating func recordFailure(nowMs: UInt64) -> Bool {
        switch state {
        case .closed:
            consecutiveFailures += 1
            guard consecutiveFailures >= failuresToOpen else { return false }
            open(nowMs)
            return true
        case .halfOpen:
            open(nowMs)
            return true
        case .open:
            return false
        }
    }

    /// Opens at once (connection lost or refused, failed probe). Returns true when the state
    /// changed.
    @discardableResult
    public mutating func trip(nowMs: UInt64) -> Bool {
        guard state != .open else { return false }
        open(nowMs)
        return true
    }

    /// open → half-open when the cool-down has passed. Returns true when a probe may start.
    public mutating func beginProbe(nowMs: UInt64) -> Bool {
        guard state == .open, nowMs >= probeAtMs else { return false }
        state = .halfOpen
        return true
    }

    /// half-open → closed: the probe was answered.
    public mutating func probeSucceeded() {
        precondition(state == .halfOpen, "probe succeeded while \(state)")
        state = .closed
        consecutiveFailures = 0
        openingsSinceClose = 0
    }

    private mutating func open(_ nowMs: UInt64) {
        probeAtMs = nowMs + nextCoolDownMs
        openingsSinceClose += 1
        consecutiveFailures = 0
        state = .open
    }
}
