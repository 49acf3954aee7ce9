import Logging

/// The pull path's shared state in Redis: thread-slot leases, stream cursors and the request-rate
/// window per ISPB. One script call (one round trip) per operation, keys of one ISPB under one
/// hash tag (`rtp:{12345678}:slots`, `rtp:{12345678}:rate`, `rtp:{12345678}:cur:<stream>`).
/// Time is Redis's, as estimated by the client from sampled `TIME` replies (`redisNowMs`),
/// never a node's own clock.
///
/// Nothing here waits on Redis beyond the client's command deadline: when the breaker is open
/// or a command fails, the decision is `.unavailable` (or `.failure`) at once and the caller
/// falls back to its own accounting. Loop thread only; completions run on it.
public final class Coordination {
    public let client: RedisClient
    public let config: CoordinationConfig
    private let logger: Logger
    private let metrics: CoordinationMetrics
    /// Redis's clock in ms (the client's estimate); replaced by tests with a manual clock.
    var now: () -> UInt64?

    public init(client: RedisClient, config: CoordinationConfig, logger: Logger,
                metricDimensions: [(String, String)] = []) {
        config.validate()
        self.client = client
        self.config = config
        self.logger = logger
        metrics = CoordinationMetrics(dimensions: metricDimensions)
        now = { [unowned client] in client.redisNowMs }
        client.preload(CoordinationScripts.all)
    }

    /// `Retry-After` seconds for a wait in milliseconds: rounded up, at least 1.
    public static func retryAfterSeconds(ms: Int) -> Int { max(1, (ms + 999) / 1000) }

    // MARK: keys

    public func slotsKey(_ ispb: String) -> String {
        precondition(Coordination.isISPB(ispb), "not an ISPB: \(ispb)")
        return "\(config.keyPrefix):{\(ispb)}:slots"
    }

    public func rateKey(_ ispb: String) -> String {
        precondition(Coordination.isISPB(ispb), "not an ISPB: \(ispb)")
        return "\(config.keyPrefix):{\(ispb)}:rate"
    }

    public func cursorKey(_ ispb: String, _ stream: UInt64) -> String {
        precondition(Coordination.isISPB(ispb), "not an ISPB: \(ispb)")
        return "\(config.keyPrefix):{\(ispb)}:cur:\(stream)"
    }

    static func isISPB(_ s: String) -> Bool {
        s.utf8.count == 8 && s.utf8.allSatisfy { $0 >= 48 && $0 <= 57 }
    }

    // MARK: thread slots

    /// Takes a thread slot for `stream` (a sorted set per ISPB, member = stream id, score = lease
    /// expiry in Redis ms). Expired leases are dropped first; a stream that already holds a
    /// slot gets it again (a retried acquire is harmless). Denied: the earliest expiry is the
    /// wait. A timed-out acquire may still have taken the slot; it expires after the idle time
    /// unless `release` is called.
    public func acquireSlot(ispb: String, stream: UInt64, completion: @escaping (SlotDecision) -> Void) {
        guard let now = now() else {
            metrics.slot(.unavailable)
            completion(.unavailable)
            return
        }
        var call = RedisScript.Invocation(keyCount: 1)
        call.append(slotsKey(ispb))
        call.append(stream)
        call.append(config.slotsPerISPB)
        call.append(now)
        call.append(config.streamIdleMs)
        client.run(CoordinationScripts.acquire, call) { [self] result in
            let decision: SlotDecision
            switch integers(result, count: 4, operation: "acquire") {
            case .success(let v) where v[0] == 1:
                decision = .granted(used: Int(v[1]), limit: Int(v[2]))
            case .success(let v):
                decision = .denied(retryAfterMs: Int(max(v[3], 1)), used: Int(v[1]), limit: Int(v[2]))
            case .failure:
                decision = .unavailable
            }
            metrics.slot(decision)
            completion(decision)
        }
    }

    /// Slides the stream's lease to now + idle (re-adding it when missing: after FLUSHALL, a
    /// restart or a failover) and stores its cursor (opaque bytes) with TTL = idle. One round
    /// trip; callers need not wait on it for correctness.
    public func touch(ispb: String, stream: UInt64, cursor: [UInt8],
                      completion: ((Result<Void, RedisFailure>) -> Void)? = nil) {
        guard let now = now() else {
            metrics.failure("touch")
            completion?(.failure(.unavailable))
            return
        }
        var call = RedisScript.Invocation(keyCount: 2, capacityBytes: 96 + cursor.count)
        call.append(slotsKey(ispb))
        call.append(cursorKey(ispb, stream))
        call.append(now + config.streamIdleMs)
        call.append(config.streamIdleMs)
        call.append(stream)
        call.append(bytes: cursor)
        client.run(CoordinationScripts.touch, call) { [self] result in
            completion?(restoredCount(result, operation: "touch"))
        }
    }

    /// Gives the slot back and forgets the cursor.
    public func release(ispb: String, stream: UInt64, completion: ((Result<Void, RedisFailure>) -> Void)? = nil) {
        var call = RedisScript.Invocation(keyCount: 2)
        call.append(slotsKey(ispb))
        call.append(cursorKey(ispb, stream))
        call.append(stream)
        client.run(CoordinationScripts.release, call) { [self] result in
            completion?(integers(result, count: 0, operation: "release").map { _ in () })
        }
    }

    /// The cursor stored by the last `touch` of the stream, nil when none is (never stored,
    /// expired, released or flushed). A plain GET: one read needs no script.
    public func loadCursor(ispb: String, stream: UInt64, completion: @escaping (Result<[UInt8]?, RedisFailure>) -> Void) {
        var get = RedisCommand("GET")
        get.append(cursorKey(ispb, stream))
        client.send(get) { [self] result in
            switch result {
            case .success(.bulk(let bytes)):
                completion(.success(bytes))
            case .success(let other):
                completion(.failure(unexpected(other, operation: "load_cursor")))
            case .failure(let f):
                metrics.failure("load_cursor")
                completion(.failure(f))
            }
        }
    }

    // MARK: request rate

    /// Counts one request of the ISPB against its sliding window (approximated from two
    /// fixed-window counters, see docs/coordination.md) unless the window is full. With
    /// `rateLimitPerWindow == 0` it answers `.allowed` at once without Redis.
    public func checkRate(ispb: String, completion: @escaping (RateDecision) -> Void) {
        guard config.rateLimitPerWindow > 0 else {
            completion(.allowed)
            return
        }
        guard let now = now() else {
            metrics.rate(.unavailable)
            completion(.unavailable)
            return
        }
        var call = RedisScript.Invocation(keyCount: 1)
        call.append(rateKey(ispb))
        call.append(now)
        call.append(config.rateWindowMs)
        call.append(config.rateLimitPerWindow)
        client.run(CoordinationScripts.rate, call) { [self] result in
            let decision: RateDecision
            switch integers(result, count: 2, operation: "rate") {
            case .success(let v) where v[0] == 1: decision = .allowed
            case .success(let v): decision = .limited(retryAfterMs: Int(max(v[1], 1)))
            case .failure: decision = .unavailable
            }
            metrics.rate(decision)
            completion(decision)
        }
    }

    // MARK: recovery

    /// Registers live streams again (lease and cursor each, like `touch`) after Redis came back
    /// (`RedisClient.onRecovered`) or lost its data. Batched: one script call per ISPB and up to
    /// `reregisterBatchMax` streams, all pipelined. The completion gets the first failure, if any.
    public func reregister(_ streams: [(ispb: String, stream: UInt64, cursor: [UInt8])],
                           completion: ((Result<Void, RedisFailure>) -> Void)? = nil) {
        guard let now = now() else {
            metrics.failure("reregister")
            completion?(.failure(.unavailable))
            return
        }
        var order: [String] = []
        var byISPB: [String: [(stream: UInt64, cursor: [UInt8])]] = [:]
        for s in streams {
            if byISPB[s.ispb] == nil { order.append(s.ispb) }
            byISPB[s.ispb, default: []].append((s.stream, s.cursor))
        }
        var calls: [RedisScript.Invocation] = []
        for ispb in order {
            let list = byISPB[ispb]!
            for start in stride(from: 0, to: list.count, by: config.reregisterBatchMax) {
                let batch = list[start..<min(start + config.reregisterBatchMax, list.count)]
                var call = RedisScript.Invocation(keyCount: 1 + batch.count,
                                                  capacityBytes: 64 + batch.reduce(0) { $0 + 64 + $1.cursor.count })
                call.append(slotsKey(ispb))
                for s in batch { call.append(cursorKey(ispb, s.stream)) }
                call.append(now + config.streamIdleMs)
                call.append(config.streamIdleMs)
                for s in batch {
                    call.append(s.stream)
                    call.append(bytes: s.cursor)
                }
                calls.append(call)
            }
        }
        guard !calls.isEmpty else {
            completion?(.success(()))
            return
        }
        var outstanding = calls.count
        var firstFailure: RedisFailure?
        for call in calls {
            client.run(CoordinationScripts.touch, call) { [self] result in
                if case .failure(let f) = restoredCount(result, operation: "reregister"), firstFailure == nil {
                    firstFailure = f
                }
                outstanding -= 1
                if outstanding == 0 {
                    if let firstFailure {
                        logger.warning("re-registering streams in redis failed", metadata: ["error": "\(firstFailure)"])
                    } else {
                        logger.info("re-registered streams in redis", metadata: ["streams": "\(streams.count)"])
                    }
                    completion?(firstFailure.map { .failure($0) } ?? .success(()))
                }
            }
        }
    }

    // MARK: reply decoding

    private func restoredCount(_ result: Result<RedisReply, RedisFailure>, operation: String) -> Result<Void, RedisFailure> {
        switch result {
        case .success(.integer(let restored)):
            metrics.restored(restored)
            return .success(())
        case .success(let other):
            return .failure(unexpected(other, operation: operation))
        case .failure(let f):
            metrics.failure(operation)
            return .failure(f)
        }
    }

    /// An integer reply (count 0) or an array of `count` integers.
    private func integers(_ result: Result<RedisReply, RedisFailure>, count: Int, operation: String) -> Result<[Int64], RedisFailure> {
        switch result {
        case .success(.integer(let n)) where count == 0:
            return .success([n])
        case .success(.array(let items)) where count > 0 && items.count == count:
            let values = items.compactMap(\.integer)
            if values.count == count { return .success(values) }
            return .failure(unexpected(.array(items), operation: operation))
        case .success(let other):
            return .failure(unexpected(other, operation: operation))
        case .failure(let f):
            metrics.failure(operation)
            return .failure(f)
        }
    }

    private func unexpected(_ reply: RedisReply, operation: String) -> RedisFailure {
        metrics.failure(operation)
        let text = reply.errorMessage ?? "\(reply)"
        logger.error("unexpected redis reply", metadata: ["operation": "\(operation)", "reply": "\(text.prefix(200))"])
        return .unexpectedReply(text)
    }
}
