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

    public func run() throws {
        if config.insecurePlaintext {
            logger.warning("API listener is PLAINTEXT (--insecure-plaintext): development only, no client authentication")
        }
        signal(SIGPIPE, SIG_IGN)
        try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
        let tls = try config.makeTLSContext()
        if let tls { logger.notice("mutual TLS", metadata: ["context": "\(tls.summary)"]) }

        // Validation first (cheap to fail), then storage recovery.
        let registry: SchemaRegistry
        do {
            registry = config.schemas.isEmpty ? try SchemaRegistry.shipped() : try SchemaRegistry(schemaFiles: config.schemas)
        } catch {
            throw ConfigurationError("schema: \(error)")
        }
        let directory = try config.participantsFile.map { path in
            do { return try ParticipantDirectory.load(path: path) } catch {
                throw ConfigurationError("--participants: \(error)")
            }
        } ?? .empty
        let validators = ThreadLocalValidators(registry: registry, directory: directory, hubISPB: config.hubISPB)
        logger.notice("schema registry", metadata: ["namespaces": "\(registry.namespaces.joined(separator: " "))"])

        let executor = LoopExecutor(loop: loop)
        self.executor = executor
        var storeConfig = LogStoreConfig()
        storeConfig.dedupWindowMs = Int64(config.dedupWindowSeconds) * 1000
        storeConfig.retentionAgeMs = Int64(config.retentionHours) * 3_600_000
        storeConfig.payloadBytesMax = max(config.decompressedBytesMax, storeConfig.quarantinePayloadBytesMax + 8192)
        let t0 = Loop.hrtimeNs
        let store: LogStore
        do {
            store = try LogStore.open(directory: "\(config.dataDir)/log", config: storeConfig, completions: executor,
                                      logger: logger)
        } catch {
            throw ConfigurationError("storage: \(error)")
        }
        self.store = store
        logger.notice("storage open", metadata: ["partitions": "\(store.partitions().count)",
                                                 "ms": "\((Loop.hrtimeNs - t0) / 1_000_000)"])
        let services = try HubServices(config: config, loop: loop, executor: executor, logger: logger, store: store,
                                       validators: validators, mutualTLS: tls != nil)
        self.services = services

        let adminServer = HTTPServer(loop: loop, config: adminConfig(),
                                     router: AdminRoutes.router { [unowned self] in readiness() }, logger: logger)
        let apiServer = HTTPServer(loop: loop, config: apiConfig(), router: apiRouter(services), logger: logger, tls: tls)
        do {
            try adminServer.start()
            try apiServer.start()
        } catch {
            throw ConfigurationError("cannot listen: \(error)")
        }
        admin = adminServer
        api = apiServer
        let lagGauge = Gauge(label: "rtpstream_event_loop_lag_seconds")
        lagProbe = LoopLagProbe(loop: loop) { lagNs in lagGauge.record(Double(lagNs) / 1e9) }
        startRetention(store)
        for sig in [SIGTERM, SIGINT] {
            signals.append(try SignalWatcher(loop: loop, signal: sig) { [unowned self] s in beginShutdown(signal: s) })
        }
        signals.append(try SignalWatcher(loop: loop, signal: SIGHUP) { [unowned self] _ in reloadTLS() })
        ready = true
        logger.notice("rtpstream serving", metadata: [
            "api": "\(config.listen.host):\(apiServer.port)", "admin": "\(config.adminListen.host):\(adminServer.port)",
            "region": "\(config.region)"])
        loop.run()

        signals.removeAll()
        lagProbe = nil
        retentionTimer = nil
        api = nil
        admin = nil
        services.close()
        self.services = nil
        store.close()
        executor.close()
        loop.close()
        logger.notice("rtpstream stopped cleanly")
    }

    private func readiness() -> (ready: Bool, reason: String) {
        if shuttingDown { return (false, "shutting down") }
        return ready ? (true, "ready") : (false, "starting")
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
        c.connectionsMax = config.connectionsMax
        c.shutdownGraceMs = UInt64(config.shutdownGraceSeconds) * 1000
        return c
    }

    private func adminConfig() -> HTTPServerConfig {
        var c = HTTPServerConfig(name: "admin", host: config.adminListen.host, port: config.adminListen.port)
        c.connectionsMax = 256
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
        api?.beginShutdown { [unowned self] in
            admin?.beginShutdown { [unowned self] in
                loop.stop()
            }
        }
    }
}
