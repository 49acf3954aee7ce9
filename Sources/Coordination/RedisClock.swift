/// Redis's clock as this node sees it: the offset between Redis `TIME` and the local monotonic
/// clock, sampled by the probe and every `clockResyncMs` afterwards. Every lease and window is
/// computed in Redis time, so the hub nodes' own clocks never meet in Redis; the error is half
/// the round trip of the last sample plus the drift since (microseconds over seconds).
struct RedisClock {
    /// Redis ms minus local monotonic ms; nil before the first sample.
    private(set) var offsetMs: Int64?

    /// Records a `TIME` reply to a command sent at `sentNs` and answered at `receivedNs`
    /// (local monotonic); Redis read its clock somewhere in between, taken as the midpoint.
    /// Returns false when the reply is not a `TIME` reply.
    mutating func sample(_ reply: RedisReply, sentNs: UInt64, receivedNs: UInt64) -> Bool {
        guard let redisMs = RedisClock.milliseconds(reply), receivedNs >= sentNs else { return false }
        let midpointMs = (sentNs + (receivedNs - sentNs) / 2) / 1_000_000
        offsetMs = Int64(redisMs) - Int64(midpointMs)
        return true
    }

    /// Redis's current time in ms since the epoch, estimated from the local monotonic clock.
    func nowMs(monotonicNs: UInt64) -> UInt64? {
        guard let offsetMs else { return nil }
        return UInt64(Int64(monotonicNs / 1_000_000) + offsetMs)
    }

    /// Milliseconds of a `TIME` reply ([seconds, microseconds] as bulk strings).
    static func milliseconds(_ reply: RedisReply) -> UInt64? {
        guard case .array(let parts) = reply, parts.count == 2,
              case .bulk(let s?) = parts[0], case .bulk(let us?) = parts[1],
              let seconds = UInt64(String(decoding: s, as: UTF8.self)),
              let micros = UInt64(String(decoding: us, as: UTF8.self)), micros < 1_000_000 else {
            return nil
        }
        return seconds * 1_000 + micros / 1_000
    }
}
