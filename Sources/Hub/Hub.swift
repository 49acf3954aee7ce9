import EventLoop
import Glibc
import HTTP
import HTTPServer
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
    private var signals: [SignalWatcher] = []
    private var lagProbe: LoopLagProbe?
    private var shuttingDown = false
    private var ready = false

    /// Called on the loop thread once both listeners are bound (tests and `--print-ports`).
    public var onListening: ((_ apiPort: Int, _ adminPort: Int) -> Void)?

    public init(config: HubConfiguration, logger: Logger) throws {
        self.config = config
        self.logger = logger
        MetricsExposition.bootstrap()
        loop = try Loop()
    }

    public func run() throws {
        if config.insecurePlaintext {
            logger.warning("API listener is PLAINTEXT (--insecure-plaintext): development only, no client authentication")
        }
        let adminServer = HTTPServer(loop: loop, config: adminConfig(),
                                     router: AdminRoutes.router { [unowned self] in readiness() }, logger: logger)
        let tls = try config.makeTLSContext()
        if let tls { logger.notice("mutual TLS", metadata: ["context": "\(tls.summary)"]) }
        let apiServer = HTTPServer(loop: loop, config: apiConfig(), router: apiRouter(), logger: logger, tls: tls)
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
        for sig in [SIGTERM, SIGINT] {
            signals.append(try SignalWatcher(loop: loop, signal: sig) { [unowned self] s in beginShutdown(signal: s) })
        }
        signals.append(try SignalWatcher(loop: loop, signal: SIGHUP) { [unowned self] _ in reloadTLS() })
        ready = true
        logger.notice("rtpstream serving", metadata: [
            "api": "\(config.listen.host):\(apiServer.port)", "admin": "\(config.adminListen.host):\(adminServer.port)",
            "region": "\(config.region)"])
        onListening?(apiServer.port, adminServer.port)
        loop.run()
        signals.removeAll()
        lagProbe = nil
        api = nil
        admin = nil
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

    private func apiRouter() -> Router<RouteHandler> {
        var router = Router<RouteHandler>()
        if config.benchFixedResponse { BenchRoutes.add(to: &router) }
        return router
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

    /// SIGTERM/SIGINT: stop accepting, finish in-flight requests, then stop the loop.
    private func beginShutdown(signal: Int32) {
        guard !shuttingDown else { return }
        shuttingDown = true
        logger.notice("shutdown requested", metadata: ["signal": "\(signal)"])
        api?.beginShutdown { [unowned self] in
            admin?.beginShutdown { [unowned self] in
                loop.stop()
            }
        }
    }
}
