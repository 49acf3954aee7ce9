import CHiredis
import EventLoop
import Glibc
import Logging

/// A Redis client on a libuv loop: hiredis's async API through its libuv adapter, one
/// connection, commands pipelined. Loop thread only.
///
/// - Every command has a deadline (`commandTimeoutMs`, from the call). Replies are FIFO, so the
///   pending commands form a queue ordered by deadline and one timer watches the oldest. When it
///   expires, it and everything behind it fail with `.timeout` and the connection is dropped.
/// - A circuit breaker (`CircuitBreaker`) guards the network: while it is not closed, calls
///   fail at once with `.unavailable`. A lost or refused connection opens it at once; timeouts
///   and infrastructure error replies (LOADING, BUSY, ...) open it after `failuresToOpen` in a
///   row; below that a dropped connection is replaced at once. After the cool-down a probe opens
///   a fresh connection (AUTH and SELECT when configured, then TIME: a PING that also reads
///   Redis's clock); its answer closes the breaker and runs `onRecovered`.
/// - `redisNowMs` is Redis's clock estimated locally (`RedisClock`), sampled by every probe and
///   every `clockResyncMs`: scripts get their "now" from it instead of calling TIME.
/// - Completions run on the loop thread, exactly once; failures decided at the call (breaker
///   open, overload) run before the call returns.
public final class RedisClient {
    public typealias Completion = (Result<RedisReply, RedisFailure>) -> Void

    public let config: RedisClientConfig
    private let loop: Loop
    private let logger: Logger
    private let metrics: RedisMetrics

    public private(set) var breaker: CircuitBreaker
    /// Runs each time the breaker closes: after the first successful connect and after every
    /// recovery. Redis may have lost state meanwhile (restart, failover), so this is where slots
    /// and cursors are registered again.
    public var onRecovered: (() -> Void)?
    /// Scripts run so far, by SHA1; loaded first on every new connection.
    private var knownScripts: [String: RedisScript] = [:]

    private var connection: RedisConnection?
    private var connectionsMade: UInt64 = 0
    /// Commands sent on `connection`, oldest first; completed ones are popped from the front.
    private var pending: [PendingCommand] = []
    private var pendingHead = 0
    private var abandoned: [RedisConnection] = []
    private let deadlineTimer: LoopTimer
    private let probeTimer: LoopTimer
    private let clockTimer: LoopTimer
    private var clock = RedisClock()
    /// Depth of hiredis callbacks on the stack: a context is never freed inside its callbacks.
    private var callbackDepth = 0
    private var started = false
    public private(set) var isClosed = false

    public init(loop: Loop, config: RedisClientConfig, logger: Logger, metricDimensions: [(String, String)] = []) {
        config.validate()
        self.loop = loop
        self.config = config
        self.logger = logger
        metrics = RedisMetrics(dimensions: metricDimensions)
        breaker = CircuitBreaker(failuresToOpen: config.failuresToOpen,
                                 coolDownMsMin: config.coolDownMsMin, coolDownMsMax: config.coolDownMsMax)
        deadlineTimer = LoopTimer(loop: loop)
        probeTimer = LoopTimer(loop: loop)
        clockTimer = LoopTimer(loop: loop)
    }

    deinit {
        precondition(isClosed || !started, "RedisClient must be closed on its loop before it is released")
    }

    /// The breaker's state: `.closed` means commands go to Redis.
    public var state: BreakerState { breaker.state }

    /// Commands sent and not yet completed.
    public var pendingCount: Int { pending.count - pendingHead }

    /// Redis's current time (ms since the epoch) estimated from the last `TIME` sample; nil
    /// before the first probe succeeded.
    public var redisNowMs: UInt64? { clock.nowMs(monotonicNs: Loop.hrtimeNs) }

    /// Starts the first probe (connect, AUTH/SELECT, TIME). Calls fail with `.unavailable` until
    /// it was answered. Ignores SIGPIPE process-wide: hiredis writes with write(2), and a write
    /// to a connection Redis closed must fail with EPIPE, not kill the process.
    public func start() {
        precondition(!started && !isClosed, "start() once")
        started = true
        signal(SIGPIPE, SIG_IGN)
        metrics.breaker(breaker.state)
        startProbe()
        clockTimer.start(afterMs: config.clockResyncMs, repeatMs: config.clockResyncMs) { [unowned self] in resyncClock() }
    }

    /// Samples Redis's clock again (while the breaker is closed).
    private func resyncClock() {
        guard breaker.allowsCommands else { return }   // every probe samples it anyway
        let sentNs = Loop.hrtimeNs
        send(RedisCommand("TIME")) { [unowned self] result in
            if case .success(let reply) = result, !clock.sample(reply, sentNs: sentNs, receivedNs: Loop.hrtimeNs) {
                logger.error("unexpected TIME reply", metadata: ["reply": "\(reply)"])
            }
        }
    }

    /// Fails everything pending with `.unavailable`, frees the connection and stops the timers.
    /// Call on the loop thread before the loop is closed; when called inside a completion, the
    /// hiredis context is freed on the next loop turn.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        deadlineTimer.stop()
        probeTimer.stop()
        clockTimer.stop()
        onRecovered = nil
        guard let connection else { return }
        let victims = detach(connection)
        dispose(connection)
        fail(victims, .unavailable)
    }

    // MARK: commands

    /// Sends one command. The completion gets the reply (an error reply is a `.success`), or
    /// `.unavailable`, `.timeout` or `.connectionLost`.
    public func send(_ command: RedisCommand, completion: @escaping Completion) {
        guard breaker.allowsCommands, !isClosed, let connection else {
            metrics.command(.unavailable)
            completion(.failure(.unavailable))
            return
        }
        guard pendingCount < config.pendingCommandsMax else {
            metrics.command(.overloaded)
            completion(.failure(.unavailable))
            return
        }
        submit(command, on: connection, completion: completion)
    }

    /// Scripts to load at the head of every connection from now on (and on the current one).
    public func preload(_ scripts: [RedisScript]) {
        for script in scripts where knownScripts[script.sha1] == nil {
            knownScripts[script.sha1] = script
            if let connection, breaker.allowsCommands { submit(script.load(), on: connection) { _ in } }
        }
    }

    /// Runs a script with EVALSHA; on NOSCRIPT sends it once with EVAL (which caches it again).
    /// Scripts seen once are loaded (SCRIPT LOAD) at the head of every new connection, so
    /// NOSCRIPT only follows a SCRIPT FLUSH on a live connection.
    public func run(_ script: RedisScript, _ invocation: RedisScript.Invocation, completion: @escaping Completion) {
        if knownScripts[script.sha1] == nil { knownScripts[script.sha1] = script }
        send(script.evalsha(invocation)) { [unowned self] result in
            if case .success(.error(let message)) = result, message.hasPrefix("NOSCRIPT") {
                metrics.scriptReload()
                send(script.eval(invocation), completion: completion)
                return
            }
            completion(result)
        }
    }

    private func submit(_ command: RedisCommand, on connection: RedisConnection, completion: @escaping Completion) {
        let startNs = Loop.hrtimeNs
        let entry = PendingCommand(connection: connection, startNs: startNs,
                                   deadlineNs: startNs + config.commandTimeoutMs * 1_000_000, completion: completion)
        let privdata = Unmanaged.passRetained(entry).toOpaque()
        let rc = command.withArgv { argc, argv, lens in
            redisAsyncCommandArgv(connection.context, onRedisReply, privdata, argc, argv, lens)
        }
        guard rc == REDIS_OK else {
            // hiredis refuses commands only on a context that is going away.
            Unmanaged<PendingCommand>.fromOpaque(privdata).release()
            entry.completion = nil
            metrics.command(.connectionLost)
            completion(.failure(.connectionLost))
            return
        }
        pending.append(entry)
        if !deadlineTimer.isActive { armDeadlineTimer(entry.deadlineNs) }
    }

    // MARK: replies and deadlines (called from the C callbacks)

    func replyArrived(_ entry: PendingCommand, _ reply: UnsafePointer<redisReply>?) {
        callbackDepth += 1
        defer { callbackDepth -= 1 }
        guard let completion = entry.completion else { return }   // already failed: late or NULL reply
        guard let reply else {
            // hiredis fails its pending callbacks with NULL: the connection is gone, and the
            // disconnect callback follows once all of them ran.
            connectionLost(entry.connection, state: .closingByHiredis, reason: entry.connection.errorText)
            return
        }
        entry.completion = nil
        popCompleted()
        let value = RedisReply(copying: reply)
        metrics.latency(ns: Loop.hrtimeNs - entry.startNs)
        if case .error(let message) = value {
            metrics.command(.errorReply)
            if RedisClient.isInfrastructureError(message) {
                logger.warning("redis error reply", metadata: ["error": "\(message)"])
                countFailure(entry.connection, reason: message)
            } else {
                breaker.recordSuccess()
            }
        } else {
            metrics.command(.ok)
            breaker.recordSuccess()
        }
        completion(.success(value))
    }

    /// Error replies that say Redis cannot serve right now (as opposed to a bad command).
    static func isInfrastructureError(_ message: String) -> Bool {
        for prefix in ["LOADING", "BUSY", "MASTERDOWN", "READONLY", "OOM", "CLUSTERDOWN", "TRYAGAIN", "MISCONF", "NOAUTH"]
        where message.hasPrefix(prefix) {
            return true
        }
        return false
    }

    private func popCompleted() {
        while pendingHead < pending.count && pending[pendingHead].completion == nil { pendingHead += 1 }
        if pendingHead == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
        } else if pendingHead >= 1024 {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
    }

    /// How late the deadline timer may fire before the loop counts as lagging (a fifth of the
    /// deadline, at least 2 ms: an idle loop fires its timers within a millisecond).
    private var lagToleranceNs: UInt64 { max(2_000_000, config.commandTimeoutMs * 200_000) }

    private func armDeadlineTimer(_ deadlineNs: UInt64) {
        let now = Loop.hrtimeNs
        let afterMs = deadlineNs > now ? (deadlineNs - now + 999_999) / 1_000_000 : 0
        deadlineTimer.start(afterMs: afterMs) { [unowned self] in checkDeadlines() }
    }

    /// The deadline timer fired. libuv runs timers before polling for I/O in each turn, so after
    /// a long turn of the hub's own (a busy loop), the deadline has passed while the command may
    /// still sit in hiredis's output buffer or its reply unread in the socket: that is loop lag,
    /// not a slow Redis. So first flush and read; then, if the timer itself fired late by more
    /// than `lagToleranceNs` (the loop was busy), the command gets one more deadline counted
    /// from now. A Redis that does not answer still fails within two deadlines plus the lag;
    /// on an idle loop (timer on time) nothing changes.
    private func checkDeadlines() {
        popCompleted()
        guard pendingHead < pending.count else { return }
        var oldest = pending[pendingHead]
        let firedNs = Loop.hrtimeNs
        guard oldest.deadlineNs <= firedNs else { return armDeadlineTimer(oldest.deadlineNs) }
        let head = oldest.connection
        if head.state == .ready {
            callbackDepth += 1   // replies and a disconnect may run inside these calls
            redisAsyncHandleWrite(head.context)
            if head.state == .ready { redisAsyncHandleRead(head.context) }
            callbackDepth -= 1
            popCompleted()
            guard pendingHead < pending.count else { return }
            oldest = pending[pendingHead]
            guard oldest.deadlineNs <= firedNs else { return armDeadlineTimer(oldest.deadlineNs) }
        }
        if !oldest.extendedForLag && firedNs - oldest.deadlineNs > lagToleranceNs && oldest.connection.state == .ready {
            oldest.extendedForLag = true
            oldest.deadlineNs = firedNs + config.commandTimeoutMs * 1_000_000
            metrics.lagExtension()
            return armDeadlineTimer(oldest.deadlineNs)
        }
        let connection = oldest.connection
        logger.warning("redis command timed out; dropping the connection",
                       metadata: ["timeoutMs": "\(config.commandTimeoutMs)", "pending": "\(pendingCount)"])
        let victims = detach(connection)
        dispose(connection)
        if breaker.recordFailure(nowMs: nowMs) {
            opened(reason: "command timeout")
        } else {
            replaceConnection()
        }
        fail(victims, .timeout)
    }

    // MARK: connection events

    func connectFinished(_ connection: RedisConnection, ok: Bool) {
        callbackDepth += 1
        defer { callbackDepth -= 1 }
        if ok {
            if connection.state == .connecting { connection.state = .ready }
            return
        }
        // hiredis frees the context after this callback (and fails its pending callbacks
        // with NULL first); its `data` is not used again.
        switch connection.state {
        case .connecting, .ready:
            connectionLost(connection, state: .gone, reason: "connect: \(connection.errorText)")
        case .abandoned:
            connection.state = .gone
        case .freeing, .closingByHiredis, .gone:
            preconditionFailure("connect callback in state \(connection.state)")
        }
        connection.releaseFromContext()
    }

    func disconnected(_ connection: RedisConnection) {
        callbackDepth += 1
        defer { callbackDepth -= 1 }
        switch connection.state {
        case .freeing:
            return   // our own redisAsyncFree; released when it returns
        case .connecting, .ready:
            connectionLost(connection, state: .gone, reason: connection.errorText)
        case .abandoned, .closingByHiredis:
            connection.state = .gone
        case .gone:
            preconditionFailure("disconnect callback after the context was freed")
        }
        connection.releaseFromContext()   // the last callback hiredis makes for this context
    }

    /// hiredis lost the connection (EOF, reset, refused): open the breaker at once.
    private func connectionLost(_ connection: RedisConnection, state: RedisConnection.State, reason: String) {
        guard connection === self.connection else {
            connection.state = state
            return
        }
        let victims = detach(connection)
        connection.state = state
        if !isClosed {
            breaker.trip(nowMs: nowMs)
            opened(reason: reason)
        }
        fail(victims, .connectionLost)
    }

    /// A timeout or an infrastructure error reply on a live connection.
    private func countFailure(_ connection: RedisConnection, reason: String) {
        guard connection === self.connection, breaker.recordFailure(nowMs: nowMs) else { return }
        let victims = detach(connection)
        dispose(connection)
        opened(reason: reason)
        fail(victims, .connectionLost)
    }

    // MARK: connecting and probing

    /// Opens a new connection and queues AUTH and SELECT on it. Returns false when hiredis
    /// could not even start (the reason is logged).
    private func connect() -> Bool {
        precondition(connection == nil)
        guard let ac = redisAsyncConnect(config.host, Int32(config.port)) else {
            logger.error("redisAsyncConnect: out of memory")
            return false
        }
        if ac.pointee.err != 0 {
            let reason = ac.pointee.errstr.map { String(cString: $0) } ?? "error \(ac.pointee.err)"
            logger.debug("redis connect failed", metadata: ["error": "\(reason)"])
            redisAsyncFree(ac)
            return false
        }
        connectionsMade += 1
        if connectionsMade > 1 { metrics.reconnect() }
        let connection = RedisConnection(context: ac, client: self, id: connectionsMade)
        guard rtp_redis_libuv_attach(ac, UnsafeMutableRawPointer(loop.raw)) == REDIS_OK else {
            logger.error("redisLibuvAttach failed")
            connection.free()
            return false
        }
        redisAsyncSetConnectCallback(ac, onRedisConnect)
        redisAsyncSetDisconnectCallback(ac, onRedisDisconnect)
        self.connection = connection
        if let password = config.password {
            var auth = RedisCommand("AUTH")
            auth.append(password)
            submit(auth, on: connection) { [unowned self] in handshakeAnswered($0, connection, "AUTH") }
        }
        if config.database != 0 {
            var select = RedisCommand("SELECT")
            select.append(config.database)
            submit(select, on: connection) { [unowned self] in handshakeAnswered($0, connection, "SELECT") }
        }
        // Every script used so far is loaded before any command of the new connection: a
        // restarted Redis would otherwise answer NOSCRIPT, and the EVAL retry would run after
        // commands queued behind it (a release overtaken by an acquire, for one).
        for script in knownScripts.values.sorted(by: { $0.sha1 < $1.sha1 }) {
            submit(script.load(), on: connection) { _ in }
        }
        return true
    }

    private func handshakeAnswered(_ result: Result<RedisReply, RedisFailure>, _ connection: RedisConnection, _ what: String) {
        guard case .success(.error(let message)) = result, connection === self.connection else { return }
        // A configuration problem (wrong password or database): keep probing with back-off,
        // loudly, rather than sending commands to the wrong place.
        logger.error("redis \(what) refused", metadata: ["error": "\(message)"])
        let victims = detach(connection)
        dispose(connection)
        breaker.trip(nowMs: nowMs)
        opened(reason: "\(what) refused")
        fail(victims, .connectionLost)
    }

    /// After a dropped connection while the breaker stays closed.
    private func replaceConnection() {
        guard !isClosed else { return }
        if !connect() {
            breaker.trip(nowMs: nowMs)
            opened(reason: "reconnect failed")
        }
    }

    private func startProbe() {
        guard !isClosed, breaker.state == .open else { return }
        guard breaker.beginProbe(nowMs: nowMs) else {
            // The loop's timer clock (cached per turn) runs behind the monotonic clock the
            // breaker uses, so the timer may fire a little early: wait for the rest.
            scheduleProbe()
            return
        }
        metrics.breaker(breaker.state)
        guard connect(), let connection else {
            breaker.trip(nowMs: nowMs)
            opened(reason: "connect failed")
            return
        }
        let sentNs = Loop.hrtimeNs
        submit(RedisCommand("TIME"), on: connection) { [unowned self] result in
            guard connection === self.connection, breaker.state == .halfOpen else { return }
            switch result {
            case .success(.error(let message)):
                handshakeAnswered(.success(.error(message)), connection, "TIME")
            case .success(let reply) where !clock.sample(reply, sentNs: sentNs, receivedNs: Loop.hrtimeNs):
                handshakeAnswered(.success(.error("unexpected TIME reply \(reply)")), connection, "TIME")
            case .success:
                breaker.probeSucceeded()
                metrics.breaker(breaker.state)
                logger.info("redis available", metadata: ["endpoint": "\(config.host):\(config.port)"])
                onRecovered?()
            case .failure:
                break   // the failure already opened the breaker again
            }
        }
    }

    /// The breaker just opened (or stayed open after a failed probe): schedule the next probe.
    private func opened(reason: String) {
        precondition(breaker.state == .open)
        metrics.breaker(breaker.state)
        if breaker.openingsSinceClose == 1 {
            logger.warning("redis unavailable; commands fail fast until a probe succeeds",
                           metadata: ["reason": "\(reason)"])
        } else {
            logger.debug("redis probe failed", metadata: ["reason": "\(reason)"])
        }
        scheduleProbe()
    }

    private func scheduleProbe() {
        let now = nowMs
        let delay = breaker.probeAtMs > now ? breaker.probeAtMs - now : 0
        probeTimer.start(afterMs: max(delay, 1)) { [unowned self] in startProbe() }
    }

    // MARK: tearing down a connection

    /// Makes `connection` no longer current and takes the completions of everything pending
    /// on it (cleared, so hiredis's NULL replies for them are ignored).
    private func detach(_ connection: RedisConnection) -> [Completion] {
        precondition(connection === self.connection)
        self.connection = nil
        var victims: [Completion] = []
        victims.reserveCapacity(pendingCount)
        for entry in pending[pendingHead...] {
            if let c = entry.completion {
                entry.completion = nil
                victims.append(c)
            }
        }
        pending.removeAll(keepingCapacity: true)
        pendingHead = 0
        deadlineTimer.stop()
        return victims
    }

    /// Frees a detached connection now, or on the next loop turn when inside a hiredis callback.
    private func dispose(_ connection: RedisConnection) {
        if callbackDepth == 0 {
            connection.free()
            return
        }
        connection.state = .abandoned
        abandoned.append(connection)
        if abandoned.count == 1 {
            loop.onNextTurn { [self] in
                let list = abandoned
                abandoned.removeAll()
                for c in list where c.state == .abandoned { c.free() }
            }
        }
    }

    private func fail(_ victims: [Completion], _ failure: RedisFailure) {
        let outcome: CommandOutcome = switch failure {
        case .timeout: .timeout
        case .connectionLost: .connectionLost
        default: .unavailable
        }
        for completion in victims {
            metrics.command(outcome)
            completion(.failure(failure))
        }
    }

    private var nowMs: UInt64 { Loop.hrtimeNs / 1_000_000 }
}
