/// The Lua scripts of the pull path's coordination. Every script reads the clock with Redis
/// `TIME`, so the hub nodes' clocks never enter a lease or a window; `redis.replicate_commands`
/// makes that legal before writes on Redis < 5 (a no-op from 5 on). Every key a script touches
/// is passed in KEYS and carries the ISPB's hash tag, so one script call stays in one cluster slot.
enum CoordinationScripts {
    private static let clock = """
        if redis.replicate_commands then redis.replicate_commands() end
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

        """

    /// KEYS[1] slots zset; ARGV stream, limit, lease ms.
    /// Drops expired leases (score <= now); grants when the stream already holds a lease or
    /// fewer than `limit` are held. Returns {1, used, limit, 0} or {0, used, limit, ms until
    /// the earliest lease expires}.
    static let acquire = RedisScript(clock + """
        local lease = tonumber(ARGV[3])
        local limit = tonumber(ARGV[2])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        local used = redis.call('ZCARD', KEYS[1])
        if used < limit or redis.call('ZSCORE', KEYS[1], ARGV[1]) then
          redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
          redis.call('PEXPIRE', KEYS[1], lease)
          return {1, redis.call('ZCARD', KEYS[1]), limit, 0}
        end
        local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
        return {0, used, limit, tonumber(first[2]) - now}
        """)

    /// KEYS[1] slots zset, KEYS[2...] cursor keys; ARGV lease ms, then stream and cursor per
    /// cursor key. Slides each stream's lease to now + lease, adding it when missing (FLUSHALL,
    /// restart, failover: a live stream is never evicted by Redis's state), and stores each
    /// cursor with TTL = lease. Returns how many leases were missing.
    static let touch = RedisScript(clock + """
        local lease = tonumber(ARGV[1])
        local restored = 0
        for i = 2, #KEYS do
          restored = restored + redis.call('ZADD', KEYS[1], now + lease, ARGV[2 * i - 2])
          redis.call('SET', KEYS[i], ARGV[2 * i - 1], 'PX', lease)
        end
        redis.call('PEXPIRE', KEYS[1], lease)
        return restored
        """)

    /// KEYS[1] slots zset, KEYS[2] cursor key; ARGV stream. Returns 1 when a lease was held.
    static let release = RedisScript("""
        redis.call('DEL', KEYS[2])
        return redis.call('ZREM', KEYS[1], ARGV[1])
        """)

    /// KEYS[1] rate hash {w = window index, c = count in window w, p = count in window w-1};
    /// ARGV window ms, limit. Approximate sliding window: estimate = p * (share of the previous
    /// window still inside the sliding window) + c. Admits when estimate + 1 <= limit and counts
    /// the request; otherwise returns the ms until the estimate allows one more (nothing is
    /// written on a refusal). Returns {1, 0} or {0, retry ms >= 1}.
    static let rate = RedisScript(clock + """
        local w = tonumber(ARGV[1])
        local limit = tonumber(ARGV[2])
        local win = math.floor(now / w)
        local h = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
        local sw = tonumber(h[1])
        local c = tonumber(h[2]) or 0
        local p = tonumber(h[3]) or 0
        if sw ~= win then
          if sw == win - 1 then p = c else p = 0 end
          c = 0
        end
        local elapsed = now - win * w
        if p * (w - elapsed) / w + c + 1 <= limit then
          redis.call('HSET', KEYS[1], 'w', win, 'c', c + 1, 'p', p)
          redis.call('PEXPIRE', KEYS[1], 2 * w)
          return {1, 0}
        end
        local retry
        if c + 1 <= limit then
          -- p's share shrinks as the window advances: wait until it leaves room for one.
          retry = (w - (limit - 1 - c) * w / p) - elapsed
        else
          -- Next window: p becomes c, c becomes 0; wait until c's share leaves room for one.
          local into = w - (limit - 1) * w / c
          if into < 0 then into = 0 end
          retry = (w - elapsed) + into
        end
        retry = math.ceil(retry)
        if retry < 1 then retry = 1 end
        return {0, retry}
        """)
}
