/// Limits of the pull path's coordination; every default is in this table
/// (docs/coordination.md). The command deadline is the client's (`RedisClientConfig`).
public struct CoordinationConfig: Sendable {
    /// Concurrent streams (thread slots) per ISPB.
    public var slotsPerISPB = 6
    /// A stream's lease and cursor live this long after its last touch.
    public var streamIdleMs: UInt64 = 30_000
    /// Length of the sliding request-rate window.
    public var rateWindowMs: UInt64 = 1_000
    /// Requests per ISPB per window; 0 turns the rate limit off (no Redis round trip).
    public var rateLimitPerWindow = 0
    /// First part of every key: `<prefix>:{<ispb>}:slots`.
    public var keyPrefix = "rtp"
    /// Streams per script call in `reregister` (all of one ISPB, so one cluster slot).
    public var reregisterBatchMax = 64

    public init() {}

    func validate() {
        precondition(slotsPerISPB >= 1)
        precondition(streamIdleMs >= 1)
        precondition(rateWindowMs >= 1 && rateLimitPerWindow >= 0)
        precondition(!keyPrefix.isEmpty && !keyPrefix.contains("{") && !keyPrefix.contains("}"))
        precondition(reregisterBatchMax >= 1)
    }
}

/// The answer to `acquireSlot`.
public enum SlotDecision: Equatable, Sendable {
    /// The stream holds a slot; `used` of `limit` slots are held now.
    case granted(used: Int, limit: Int)
    /// All slots are held; the earliest lease expires in `retryAfterMs`.
    case denied(retryAfterMs: Int, used: Int, limit: Int)
    /// Redis did not decide (breaker open, timeout, lost connection): account locally.
    case unavailable
}

/// The answer to `checkRate`.
public enum RateDecision: Equatable, Sendable {
    case allowed
    /// Over the limit; one more request fits in `retryAfterMs`.
    case limited(retryAfterMs: Int)
    case unavailable
}


extension SlotDecision {
    /// `Retry-After` seconds of a denial; nil otherwise.
    public var retryAfterSeconds: Int? {
        if case .denied(let ms, _, _) = self { return Coordination.retryAfterSeconds(ms: ms) }
        return nil
    }
}

extension RateDecision {
    /// `Retry-After` seconds of a refusal; nil otherwise.
    public var retryAfterSeconds: Int? {
        if case .limited(let ms) = self { return Coordination.retryAfterSeconds(ms: ms) }
        return nil
    }
}
