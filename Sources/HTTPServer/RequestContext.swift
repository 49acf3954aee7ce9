import HTTP

/// Who is on the other end of a connection.
public struct PeerInfo: Sendable {
    public let address: String
    /// ISPB bound to the client certificate (mutual TLS); nil on plaintext listeners.
    public let ispb: String?
    /// Certificate subject, for logs.
    public let subject: String?

    public init(address: String, ispb: String? = nil, subject: String? = nil) {
        self.address = address
        self.ispb = ispb
        self.subject = subject
    }
}

/// One request being handled. Handlers run on the loop thread and call `respond` exactly once,
/// now or later (after a worker, a commit or a long poll). If the connection goes away first,
/// `isCancelled` becomes true, `onCancel` runs once, and a later `respond` is ignored.
public final class RequestContext {
    public let request: HTTPRequest
    public let params: RouteParameters
    /// Route name used as the metrics label.
    public let routeName: String
    public let peer: PeerInfo
    public let receivedNs: UInt64
    public private(set) var isCancelled = false
    public private(set) var hasResponded = false
    /// Runs once when the connection closes before the response was sent.
    public var onCancel: (() -> Void)?

    weak var connection: HTTPConnection?

    init(request: HTTPRequest, params: RouteParameters, routeName: String, peer: PeerInfo,
         receivedNs: UInt64, connection: HTTPConnection?) {
        self.request = request
        self.params = params
        self.routeName = routeName
        self.peer = peer
        self.receivedNs = receivedNs
        self.connection = connection
    }

    public func respond(_ response: HTTPResponse) {
        guard !hasResponded else {
            assertionFailure("respond called twice for \(request.method) \(request.target)")
            return
        }
        hasResponded = true
        onCancel = nil
        guard !isCancelled, let connection else { return }
        connection.send(response, for: self)
    }

    public func respond(problem: Problem, headers: [HTTPHeader] = []) {
        respond(.problem(problem, headers: headers))
    }

    func cancel() {
        guard !hasResponded, !isCancelled else { return }
        isCancelled = true
        let cb = onCancel
        onCancel = nil
        cb?()
    }
}

/// A route's handler and its metrics name.
public struct RouteHandler {
    public let name: String
    /// Called on the loop thread only.
    public let handle: (RequestContext) -> Void

    public init(name: String, _ handle: @escaping (RequestContext) -> Void) {
        self.name = name
        self.handle = handle
    }
}
