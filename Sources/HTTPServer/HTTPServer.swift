import EventLoop
import HTTP
import Logging
import TLS

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
    /// Who may take a slot of the connection table (docs/tls.md, "Connection admission").
    private var admission: ConnectionAdmission
    /// Admission log lines are rate-limited: one per `admissionLogIntervalMs`, with the number
    /// of refusals and sheds since the previous line.
    static let admissionLogIntervalMs: UInt64 = 10_000
    private var admissionLogNextMs: UInt64 = 0
    private var admissionEventsUnlogged = 0
    private var nextConnectionID: UInt64 = 0
    private var dateCache = HTTPDate()
    public private(set) var isDraining = false
    private var drainCompletion: (() -> Void)?
    private var drainTimer: LoopTimer?
    /// Contexts for new connections; replaced by `reloadTLS` (existing connections keep theirs).
    public private(set) var tlsContext: TLSContext?
    /// Handshake steps (socket reads of connections still in their handshake) per loop turn.
    /// A full RSA handshake costs ~2 ms of loop time; past the budget, handshakes wait for the
    /// next turn so that established connections are served in between.
    public var handshakeStepsPerTurnMax = 8
    private var handshakeTurn: UInt64 = .max
    private var handshakeStepsThisTurn = 0
    private var deferredHandshakes: [HTTPConnection] = []
    private let tlsScratch = TLSScratch()

    public init(loop: Loop, config: HTTPServerConfig, router: Router<RouteHandler>, logger: Logger,
                tls: TLSContext? = nil) {
        self.loop = loop
        self.config = config
        self.router = router
        self.logger = logger
        tlsContext = tls
        metrics = ServerMetrics(listener: config.name)
        admission = ConnectionAdmission(policy: config.admission)
    }

    /// New connections use `context`; established ones keep the context they started with,
    /// except that those whose client certificate `context`'s CRLs revoke are closed now (in
    /// flight or idle): a revocation must not wait for the client to hang up. Returns how many
    /// were closed.
    @discardableResult
    public func reloadTLS(_ context: TLSContext) -> Int {
        precondition(tlsContext != nil, "reloadTLS on a plaintext listener")
        tlsContext = context
        var revoked = 0
        for connection in Array(connections.values) {
            guard let identity = connection.peerIdentity, context.revokes(identity) else { continue }
            logger.warning("closing a connection whose client certificate is now revoked",
                           metadata: ["subject": "\(identity.subject)", "serial": "\(identity.serialNumberHex)"])
            metrics.connectionRevoked()
            connection.close()
            revoked += 1
        }
        return revoked
    }

    /// Takes one handshake step from this turn's budget; false when it is spent.
    func takeHandshakeStep(_ connection: HTTPConnection) -> Bool {
        if handshakeTurn != loop.turn {
            handshakeTurn = loop.turn
            handshakeStepsThisTurn = 0
        }
        if handshakeStepsThisTurn < handshakeStepsPerTurnMax {
            handshakeStepsThisTurn += 1
            return true
        }
        if deferredHandshakes.isEmpty {
            loop.onNextTurn { [unowned self] in resumeHandshakes() }
        }
        deferredHandshakes.append(connection)
        return false
    }

    private func resumeHandshakes() {
        let waiting = deferredHandshakes
        deferredHandshakes.removeAll()
        for c in waiting where !c.closed { c.resumeDeferredHandshake() }
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
        guard !isDraining else {
            metrics.connectionRefused(reason: "draining")
            socket.close(reset: true)
            return
        }
        let id = nextConnectionID + 1
        let peer = socket.peerAddress
        let address = ConnectionAdmission.addressKey(peer)
        switch admission.arrive(id: id, address: address, turn: loop.turn, established: tlsContext == nil) {
        case .refuse(let limit):
            metrics.connectionRefused(reason: limit.rawValue)
            logAdmission("refused", limit, address: address)
            socket.close(reset: true)
            return
        case .admitShedding(let shed, let limit):
            metrics.connectionShed(reason: limit.rawValue)
            logAdmission("shed", limit, address: connections[shed].map { ConnectionAdmission.addressKey($0.socket.peerAddress) } ?? "?")
            connections[shed]?.reset()
        case .admit:
            break
        }
        nextConnectionID = id
        let transport: any ConnectionTransport
        if let tlsContext {
            transport = TLSTransport(socket: socket, context: tlsContext, scratch: tlsScratch)
        } else {
            transport = PlainTransport(socket: socket)
        }
        let connection = HTTPConnection(server: self, socket: socket, transport: transport, id: id)
        connections[id] = connection
        metrics.connectionOpened()
        metrics.unauthenticated(admission.unauthenticatedCount)
        connection.start()
    }

    /// A warning when a limit trips, at most one per interval (a flood must not flood the log).
    private func logAdmission(_ action: String, _ limit: AdmissionLimit, address: String) {
        admissionEventsUnlogged += 1
        let now = loop.nowMs
        guard now >= admissionLogNextMs else { return }
        admissionLogNextMs = now + Self.admissionLogIntervalMs
        logger.warning("connection admission limit reached", metadata: [
            "listener": "\(config.name)", "limit": "\(limit.rawValue)", "action": "\(action)",
            "address": "\(address)", "events": "\(admissionEventsUnlogged)",
            "connections": "\(admission.count)", "unauthenticated": "\(admission.unauthenticatedCount)"])
        admissionEventsUnlogged = 0
    }

    /// Bytes arrived on a connection still in its handshake.
    func connectionReceived(_ connection: HTTPConnection) {
        admission.received(id: connection.id)
    }

    /// A connection completed its mutual-TLS handshake.
    func connectionAuthenticated(_ connection: HTTPConnection) {
        admission.authenticated(id: connection.id)
        metrics.unauthenticated(admission.unauthenticatedCount)
    }

    func connectionClosed(_ connection: HTTPConnection) {
        admission.closed(id: connection.id)
        guard connections.removeValue(forKey: connection.id) != nil else { return }
        metrics.connectionClosed()
        metrics.unauthenticated(admission.unauthenticatedCount)
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
