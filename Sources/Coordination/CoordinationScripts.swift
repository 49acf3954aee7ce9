/// The Lua scripts of the pull path's coordination. Time comes in ARGV: Redis's clock as the
/// calling node estimates it (`RedisClient.redisNowMs`), so the nodes' own clocks never meet in
/// Redis, and the scripts stay deterministic (no TIME call, which also costs a third of a
/// touch's Redis CPU). Every key a script touches is passed in KEYS and carries the ISPB's hash
/// tag, so one call stays in one cluster slot. Each script does the fewest `redis.call`s its
/// job allows: in Redis 7 every call costs about as much as a whole plain command.
enum CoordinationScripts {
    /// Every script, loaded at the head of each connection (`RedisClient.preload`).
    static var all: [RedisScript] { [acquire, touch, release, rate] }

    /// KEYS[1] slots zset; ARGV stream, limit, now ms, lease ms.
    /// Drops expired leases (score <= now); grants when the stream already holds a lease or
    /// fewer than `limit` are held. Returns {1, used, limit, 0} or {0, used, limit, ms until
    /// the earliest lease expires}. The zset has no TTL: acquires prune it, and what an ISPB
    /// that never comes back leaves is at most its last leases.
    static let acquire = RedisScript("""
        local now = tonumber(ARGV[3])
        local limit = tonumber(ARGV[2])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        local used = redis.call('ZCARD', KEYS[1])
        if used < limit or redis.call('ZSCORE', KEYS[1], ARGV[1]) then
          if redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1]) == 1 then used = used + 1 end
          return {1, used, limit, 0}
        end
        local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
        return {0, used, limit, tonumber(first[2]) - now}
        """)

    /// KEYS[1] slots zset, KEYS[2...] cursor keys; ARGV expiry ms (now + lease), lease ms, then
    /// stream and cursor per cursor key. Slides each stream's lease to the expiry, adding it
    /// when missing (FLUSHALL, restart, failover: a live stream is never evicted by Redis's
    /// state), and stores each cursor with TTL = lease. Returns how many leases were missing.
    static let touch = RedisScript("""
        local restored = 0
        for i = 2, #KEYS do
          restored = restored + redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2 * i - 1])
          redis.call('SET', KEYS[i], ARGV[2 * i], 'PX', ARGV[2])
        end
        return restored
        """)

    /// KEYS[1] slots zset, KEYS[2] cursor key; ARGV stream. Returns 1 when a lease was held.
    static let release = RedisScript("""
        redis.call('DEL', KEYS[2])
        return redis.call('ZREM', KEYS[1], ARGV[1])
        """)

    /// KEYS[1] rate hash {w = window index, c = count in window w, p = count in window w-1};
    /// ARGV now ms, window ms, limit. Approximate sliding window: estimate = p * (share of the
    /// previous window still inside the sliding window) + c. Admits when estimate + 1 <= limit
    /// and counts the request; otherwise returns the ms until the estimate allows one more
    /// (nothing is written on a refusal). A node whose clock estimate lags the stored window
    /// counts in the stored window (never moves it back). The TTL (2 windows) is set when a
    /// window starts, which covers its use as the previous window. Returns {1, 0} or {0, ms >= 1}.
    static let rate = RedisScript("""
        local now = tonumber(ARGV[1])
        local w = tonumber(ARGV[2])
        local limit = tonumber(ARGV[3])
        local win = math.floor(now / w)
        local h = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
        local sw = tonumber(h[1])
        local c = tonumber(h[2]) or 0
        local p = tonumber(h[3]) or 0
        local same = sw ~= nil and sw >= win
        if same then
          win = sw
        else
          if sw == win - 1 then p = c else p = 0 end
          c = 0
        end
        local elapsed = now - win * w
        if elapsed < 0 then elapsed = 0 end
        if p * (w - elapsed) / w + c + 1 <= limit then
          if same then
            redis.call('HINCRBY', KEYS[1], 'c', 1)
          else
            redis.call('HSET', KEYS[1], 'w', win, 'c', 1, 'p', p)
            redis.call('PEXPIRE', KEYS[1], 2 * w)
          end
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
