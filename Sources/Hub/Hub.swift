import EventLoop
import Foundation
import Glibc
import HTTP
import HTTPServer
import ISO20022
import LogStore
import Logging
import Metrics
import TLS

/// The running hub: one libuv loop thread owning the API and admin listeners and every
/// component, wired together. `run()` blocks until a clean shutdown (SIGTERM/SIGINT).
///
/// Start-up in two phases. First everything that can fail and needs no loop: the data
/// directory, TLS files, schemas, participants, token key, audit log, Redis URL; a failure
/// there throws with nothing to undo. Then the loop-bound objects, each kept by the hub the
/// moment it exists; if one of them fails (storage recovery, a port in use), `stop()` closes
/// what was opened, newest first, and closes the loop before the error propagates. Shutdown
/// takes the same `stop()`. The loop is never released open (its deinit requires `close()`).
public final class Hub {
    public let config: HubConfiguration
    private let logger: Logger
    private let loop: Loop
    private var api: HTTPServer?
    private var admin: HTTPServer?
    private var services: HubServices?
    private var executor: LoopExecutor?
    private var store: LogStore?
    private var signals: [SignalWatcher] = []
    private var lagProbe: LoopLagProbe?
    private var retentionTimer: LoopTimer?
    private var shuttingDown = false
    private var ready = false

    public init(config: HubConfiguration, logger: Logger) throws {
        self.config = config
        self.logger = logger
        MetricsExposition.bootstrap()
        WorkQueue.configureThreadPool(threads: config.workerThreads)
        loop = try Loop()
    }

    /// A hub released without running, or whose start-up failed, still closes its loop.
    deinit { stop() }

    /// Starts, calls `serving` once both listeners are open, and blocks until SIGTERM/SIGINT
    /// has drained them. A start-up failure closes what was opened and throws a
    /// `ConfigurationError` whose text starts with the option at fault (`--listen: ...`).
    public func run(serving: () -> Void = {}) throws {
        do {
            try start()
        } catch {
            stop()
            throw error
        }
        serving()
        loop.run()
        stop()
        logger.notice("rtpstream stopped cleanly")
    }

    private func start() throws {
        signal(SIGPIPE, SIG_IGN)

        // Phase 1: nothing bound to the loop yet. Validation first (cheap to fail).
        try HubConfiguration.prepareWritableDirectory(config.dataDir, option: "data-dir")
        let tls = try config.makeTLSContext()
        let registry = try loadSchemas()
        let directory = try config.participantsFile.map { path in
            try HubConfiguration.checkReadableFile(path, option: "participants")
            do { return try ParticipantDirectory.load(path: path) } catch {
                throw ConfigurationError("--participants: \(error)")
            }
        } ?? .empty
        let tokenKey = try HubServices.tokenKey(config: config)
        let audit: AuditLog
        do {
            audit = try AuditLog(path: config.auditLogPath ?? "\(config.dataDir)/audit.jsonl")
        } catch {
            throw ConfigurationError("\(config.auditLogPath == nil ? "--data-dir" : "--audit-log"): \(error)")
        }
        let redisEndpoint: RedisEndpoint
        do { redisEndpoint = try RedisEndpoint(url: config.redisURL) } catch { throw ConfigurationError("--redis: \(error)") }
        let validators = ThreadLocalValidators(registry: registry, directory: directory, hubISPB: config.hubISPB)
        if let tls { logger.notice("mutual TLS", metadata: ["context": "\(tls.summary)"]) }
        logger.notice("schema registry", metadata: ["namespaces": "\(registry.namespaces.joined(separator: " "))"])

        // Phase 2: loop-bound objects, each assigned to the hub as soon as it exists so that
        // `stop()` closes it. Signal watchers first: a SIGTERM during start-up is handled as
        // soon as the loop runs (a clean shutdown), not by the default action mid-recovery.
        do {
            for sig in [SIGTERM, SIGINT] {
                signals.append(try SignalWatcher(loop: loop, signal: sig) { [unowned self] s in beginShutdown(signal: s) })
            }
            signals.append(try SignalWatcher(loop: loop, signal: SIGHUP) { [unowned self] _ in reloadTLS() })
        } catch {
            throw ConfigurationError("signals: \(error)")
        }
        let executor = LoopExecutor(loop: loop)
        self.executor = executor
        var storeConfig = LogStoreConfig()
        storeConfig.dedupWindowMs = Int64(config.dedupWindowSeconds) * 1000
        storeConfig.retentionAgeMs = Int64(config.retentionHours) * 3_600_000
        storeConfig.openSegmentsMax = config.openSegmentsMax
        let storeEvents = StoreEventRelay(executor: executor)
        storeConfig.eventObserver = storeEvents.observer
        storeConfig.payloadBytesMax = max(config.decompressedBytesMax, storeConfig.quarantinePayloadBytesMax + 8192)
        let t0 = Loop.hrtimeNs
        let store: LogStore
        do {
            store = try LogStore.open(directory: "\(config.dataDir)/log", config: storeConfig, completions: executor,
                                      logger: logger)
        } catch {
            throw ConfigurationError("--data-dir: storage: \(error)")
        }
        self.store = store
        logger.notice("storage open", metadata: ["partitions": "\(store.partitions().count)",
                                                 "ms": "\((Loop.hrtimeNs - t0) / 1_000_000)"])
        let services = HubServices(config: config, loop: loop, executor: executor, logger: logger, store: store,
                                   validators: validators, mutualTLS: tls != nil, audit: audit,
                                   redisEndpoint: redisEndpoint, tokenKey: tokenKey)
        self.services = services
        storeEvents.attach { [unowned services] group in services.pull.committed(group) }

        let adminServer = HTTPServer(loop: loop, config: adminConfig(),
                                     router: AdminRoutes.router { [unowned self] in readiness() }, logger: logger)
        admin = adminServer
        let apiServer = HTTPServer(loop: loop, config: apiConfig(), router: apiRouter(services), logger: logger, tls: tls)
        api = apiServer
        do { try adminServer.start() } catch {
            throw ConfigurationError("--admin-listen: cannot listen on \(config.adminListen): \(Self.reason(error))")
        }
        do { try apiServer.start() } catch {
            throw ConfigurationError("--listen: cannot listen on \(config.listen): \(Self.reason(error))")
        }
        let lagGauge = Gauge(label: "rtpstream_event_loop_lag_seconds")
        lagProbe = LoopLagProbe(loop: loop) { lagNs in lagGauge.record(Double(lagNs) / 1e9) }
        startRetention(store)
        ready = true
        // Said once the hub serves (a start-up that fails says only why).
        if config.insecurePlaintext {
            logger.warning("API listener is PLAINTEXT (--insecure-plaintext): development only, no client authentication")
        }
        logger.notice("rtpstream serving", metadata: [
            "api": "\(config.listen.host):\(apiServer.port)", "admin": "\(config.adminListen.host):\(adminServer.port)",
            "region": "\(config.region)"])
    }

    /// Closes what `start()` opened, newest first, then the loop (running it until every close
    /// callback ran). Idempotent; on the loop thread, never while `loop.run()` is running.
    private func stop() {
        guard !loop.closed else { return }
        lagProbe = nil
        retentionTimer = nil
        api = nil
        admin = nil
        services?.close()
        services = nil
        store?.close()
        store = nil
        executor?.close()
        executor = nil
        // Last: until here a second SIGTERM is caught (and ignored) rather than killing the
        // process while the store flushes.
        signals.removeAll()
        loop.close()
    }

    /// The schema registry from `--schema` files (each must be readable), or the shipped profile.
    private func loadSchemas() throws -> SchemaRegistry {
        if config.schemas.isEmpty {
            do { return try SchemaRegistry.shipped() } catch { throw ConfigurationError("--schema: shipped profile: \(error)") }
        }
        for path in config.schemas { try HubConfiguration.checkReadableFile(path, option: "schema") }
        do {
            return try SchemaRegistry(schemaFiles: config.schemas)
        } catch {
            throw ConfigurationError("--schema: \(error)")
        }
    }

    /// "address already in use" rather than "listen 127.0.0.1:8443: address already in use".
    private static func reason(_ error: any Error) -> String {
        if let e = error as? LoopError { return e.reason }
        return "\(error)"
    }

    private func readiness() -> (ready: Bool, reason: String) {
        if shuttingDown { return (false, "shutting down") }
        guard ready else { return (false, "starting") }
        if let failure = store?.failure { return (false, "storage: \(failure)") }
        return (true, "ready")
    }

    private func apiConfig() -> HTTPServerConfig {
        var limits = HTTPLimits()
        limits.allowedHeaders = HTTPLimits.icomAllowedHeaders
        limits.bodyBytesMax = config.bodyBytesMax
        var timeouts = TimeoutPolicy()
        timeouts.idleMs = UInt64(config.idleTimeoutSeconds) * 1000
        timeouts.headMs = UInt64(config.headerTimeoutSeconds) * 1000
        timeouts.bodyMs = UInt64(config.bodyTimeoutSeconds) * 1000
        timeouts.handshakeMs = UInt64(config.handshakeTimeoutSeconds) * 1000
        timeouts.writeStallMs = UInt64(config.writeStallTimeoutSeconds) * 1000
        var c = HTTPServerConfig(name: "api", host: config.listen.host, port: config.listen.port,
                                 limits: limits, timeouts: timeouts)
        c.admission.connectionsMax = config.connectionsMax
        c.admission.connectionsPerAddressMax = config.connectionsPerAddressMax
        c.admission.handshakesPerAddressMax = config.handshakesPerAddressMax
        c.admission.establishedReservePercent = config.establishedReservePercent
        c.shutdownGraceMs = UInt64(config.shutdownGraceSeconds) * 1000
        return c
    }

    private func adminConfig() -> HTTPServerConfig {
        var c = HTTPServerConfig(name: "admin", host: config.adminListen.host, port: config.adminListen.port)
        c.admission.connectionsMax = 256
        c.admission.connectionsPerAddressMax = 256  // scrapers and probes share few addresses
        c.limits.bodyBytesMax = 0
        c.shutdownGraceMs = 1000
        return c
    }

    private func apiRouter(_ services: HubServices) -> Router<RouteHandler> {
        var router = Router<RouteHandler>()
        let send = services.send!
        let pull = services.pull!
        router.add(.post, "/api/v1/in/{ispb}/msgs", RouteHandler(name: "send") { send.handle($0) })
        router.add(.get, "/api/v1/out/{ispb}/stream/start", RouteHandler(name: "pull_start") { pull.start($0) })
        router.add(.get, "/api/v1/out/{ispb}/stream/{token}", RouteHandler(name: "pull_next") { pull.next($0) })
        router.add(.delete, "/api/v1/out/{ispb}/stream/{token}", RouteHandler(name: "pull_delete") { pull.delete($0) })
        if config.benchFixedResponse { BenchRoutes.add(to: &router, bodyBytes: config.benchFixedBytes) }
        return router
    }

    /// Retention runs on a worker thread once a minute (it deletes files).
    private func startRetention(_ store: LogStore) {
        let timer = LoopTimer(loop: loop)
        timer.unref()
        let logger = self.logger
        timer.start(afterMs: 60_000, repeatMs: 60_000) { [unowned self] in
            WorkQueue.run(on: loop, { store.applyRetention(nowMs: Int64(Date().timeIntervalSince1970 * 1000)) }) { report in
                guard report.segmentsDeleted > 0 else { return }
                logger.info("retention", metadata: ["segments": "\(report.segmentsDeleted)", "bytes": "\(report.bytesDeleted)",
                                                    "unacknowledgedDropped": "\(report.unacknowledgedRecordsDropped)"])
            }
        }
        retentionTimer = timer
    }

    /// SIGHUP: rebuild the TLS context from the same files (certificate, key, CA bundle, CRL).
    /// New connections use it; open connections keep theirs. A broken file keeps the old context.
    private func reloadTLS() {
        guard let api, api.tlsContext != nil else {
            logger.notice("SIGHUP ignored: the API listener is plaintext")
            return
        }
        do {
            if let context = try config.makeTLSContext() {
                api.reloadTLS(context)
                logger.notice("TLS reloaded", metadata: ["context": "\(context.summary)"])
            }
        } catch {
            logger.error("TLS reload failed; keeping the previous certificates", metadata: ["reason": "\(error)"])
        }
    }

    /// SIGTERM/SIGINT: stop accepting, answer long polls, finish in-flight requests (their
    /// acknowledgements and appends are durable before they answer), then stop the loop;
    /// `run` then closes Redis and the store (flushing its journal).
    private func beginShutdown(signal: Int32) {
        guard !shuttingDown else { return }
        shuttingDown = true
        logger.notice("shutdown requested", metadata: ["signal": "\(signal)"])
        services?.pull.drain()
        guard let api else {
            loop.stop()
            return
        }
        api.beginShutdown { [unowned self] in
            guard let admin else { return loop.stop() }
            admin.beginShutdown { [unowned self] in
                loop.stop()
            }
        }
    }
}
