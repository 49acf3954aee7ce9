import HTTP
import TLS

/// A keep-alive client for one endpoint: connects on first use and again after the server
/// closed the connection, offering the previous TLS session. A request is never re-sent after
/// a failure: the connection is dropped and the error thrown (the caller decides; sends are
/// idempotent by message id, other requests may not be).
public final class HTTPClient {
    public let endpoint: HTTPEndpoint
    private let tls: TLSContext?
    private let timeoutMs: Int
    private var connection: HTTPClientConnection?
    private var session: TLSSession?
    /// Connections opened so far (1 while keep-alive holds).
    public private(set) var connectionsOpened = 0

    /// `tls` must be given exactly when the endpoint is https.
    public init(endpoint: HTTPEndpoint, tls: TLSContext?, timeoutMs: Int = 10_000) {
        precondition(endpoint.tls == (tls != nil), "https needs a TLS context, http must not have one")
        self.endpoint = endpoint
        self.tls = tls
        self.timeoutMs = timeoutMs
    }

    /// Sends `request` and returns the response.
    public func perform(_ request: HTTPClientRequest) throws -> HTTPClientResponse {
        let c = try open()
        do {
            let response = try c.perform(request)
            if !c.isOpen { drop() }
            return response
        } catch {
            drop()
            throw error
        }
    }

    /// The open connection, connecting when there is none.
    public func open() throws -> HTTPClientConnection {
        if let connection, connection.isOpen { return connection }
        let c = try HTTPClientConnection(host: endpoint.host, port: endpoint.port, tls: tls, session: session,
                                         timeoutMs: timeoutMs)
        connectionsOpened += 1
        connection = c
        return c
    }

    private func drop() {
        if let c = connection, let s = c.resumableSession { session = s }
        connection?.close()
        connection = nil
    }

    public func close() { drop() }
}
