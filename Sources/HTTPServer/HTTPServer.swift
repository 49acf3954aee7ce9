import EventLoop
import HTTP
import Logging

/// An HTTP/1.1 listener on a loop: accepts connections, owns them, routes their requests to
/// handlers, and shuts down gracefully.
public final class HTTPServer {
    public let config: HTTPServerConfig
    let router: Router<RouteHandler>
    let logger: Logger
    let metrics: ServerMetrics
    private let loop: Loop
    private var listener: TCPListener?
    private var connections: [UInt64: HTTPConnection] = [:]
    private var nextConnectionID: UInt64 = 0
    private var dateCache = HTTPDate()
    public private(set) var isDraining = false
    private var drainCompletion: (() -> Void)?
    private var drainTimer: LoopTimer?

    public init(loop: Loop, config: HTTPServerConfig, router: Router<RouteHandler>, logger: Logger) {
        self.loop = loop
        self.config = config
        self.router = router
        self.logger = logger
        metrics = ServerMetrics(listener: config.name)
    }

    /// Binds and starts accepting. Throws a one-line reason (address in use, bad address).
    public func start() throws {
        listener = try TCPListener(loop: loop, host: config.host, port: config.port) { [unowned self] socket in
            accept(socket)
        }
    }

    /// The bound port (useful with port 0).
    public var port: Int { listener?.port ?? 0 }

    public var connectionCount: Int { connections.count }

    private func accept(_ socket: TCPSocket) {
        guard !isDraining, connections.count < config.connectionsMax else {
            metrics.connectionRefused()
            socket.close(reset: true)
            return
        }
        nextConnectionID += 1
        let transport = PlainTransport(socket: socket)
        let connection = HTTPConnection(server: self, socket: socket, transport: transport, id: nextConnectionID)
        connections[nextConnectionID] = connection
        metrics.connectionOpened()
        connection.start()
    }

    func connectionClosed(_ connection: HTTPConnection) {
        guard connections.removeValue(forKey: connection.id) != nil else { return }
        metrics.connectionClosed()
        if isDraining && connections.isEmpty { finishDrain() }
    }

    func date() -> String { dateCache.now() }

    /// Stops accepting, closes idle connections, lets in-flight requests finish (their
    /// connections close after the response), and calls `completion` when no connection is
    /// left or after `shutdownGraceMs`, whichever comes first.
    public func beginShutdown(completion: @escaping () -> Void) {
        guard !isDraining else { return }
        isDraining = true
        drainCompletion = completion
        listener?.close()
        listener = nil
        for connection in Array(connections.values) { connection.drain() }
        if connections.isEmpty {
            finishDrain()
            return
        }
        let timer = LoopTimer(loop: loop)
        timer.start(afterMs: config.shutdownGraceMs) { [unowned self] in
            logger.warning("shutdown grace period over; closing remaining connections",
                           metadata: ["listener": "\(config.name)", "connections": "\(connections.count)"])
            for connection in Array(connections.values) { connection.close() }
        }
        drainTimer = timer
    }

    private func finishDrain() {
        drainTimer?.stop()
        drainTimer = nil
        let completion = drainCompletion
        drainCompletion = nil
        completion?()
    }
}
