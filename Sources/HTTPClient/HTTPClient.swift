import HTTP
import TLS

/// Where a client connects: `http://HOST[:PORT]` or `https://HOST[:PORT]` (IPv6 in brackets).
public struct HTTPEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var tls: Bool
    public var host: String
    public var port: Int

    public init(tls: Bool, host: String, port: Int) {
        self.tls = tls
        self.host = host
        self.port = port
    }

    /// Parses a base URL; a path other than "/" is refused (the API paths are fixed).
    public init(url: String) throws {
        let tls: Bool
        var rest: Substring
        if url.hasPrefix("https://") {
            tls = true
            rest = url.dropFirst("https://".count)
        } else if url.hasPrefix("http://") {
            tls = false
            rest = url.dropFirst("http://".count)
        } else {
            throw HTTPClientError("'\(url)' is not an http:// or https:// URL")
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/") else { throw HTTPClientError("'\(url)': give the base URL only (no path)") }
        var host = rest
        var port = tls ? 443 : 80
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw HTTPClientError("'\(url)': unclosed [") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()) else { throw HTTPClientError("'\(url)': bad port") }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let p = Int(rest[rest.index(after: colon)...]) else { throw HTTPClientError("'\(url)': bad port") }
            port = p
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw HTTPClientError("'\(url)': bad host or port") }
        self.init(tls: tls, host: String(host), port: port)
    }

    public var description: String {
        (tls ? "https://" : "http://") + (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
    }
}

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
