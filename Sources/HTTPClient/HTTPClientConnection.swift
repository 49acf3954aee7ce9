import HTTP
import TLS

/// One HTTP/1.1 connection to a server, plaintext or TLS (the project's `TLSEngine` over a
/// blocking socket), used for one request at a time with keep-alive. Not thread-safe: one
/// thread drives it.
///
/// `perform` writes a request and reads its response; `write` and `readResponse` are the two
/// halves, for callers that frame requests themselves (chunked bodies, deliberately broken
/// requests in tests).
public final class HTTPClientConnection {
    /// Bytes read from the socket per call.
    public static let receiveChunkBytes = 64 * 1024

    private let socket: ClientSocket
    private let engine: TLSEngine?
    /// `Host` header value sent with `perform`'s requests.
    public let hostHeader: String
    private var parser = HTTPResponseParser()
    private var receiveBuffer = [UInt8](repeating: 0, count: HTTPClientConnection.receiveChunkBytes)
    private var plaintext: [UInt8] = []
    private var ciphertext: [UInt8] = []
    /// False once the server ended the connection or announced `Connection: close`.
    public private(set) var isOpen = true

    /// Connects and, with `tls`, completes the handshake (throws with the TLS failure reason).
    /// `timeoutMs` bounds every connect, send and receive.
    public init(host: String, port: Int, tls: TLSContext?, session: TLSSession? = nil,
                timeoutMs: Int = 10_000) throws {
        socket = try ClientSocket(host: host, port: port, timeoutMs: timeoutMs)
        hostHeader = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        engine = tls.map { TLSEngine(context: $0, resuming: session) }
        if let engine { try handshake(engine) }
    }

    deinit { socket.close() }

    private func handshake(_ engine: TLSEngine) throws {
        while true {
            let result = engine.handshake()
            try flushCiphertext()
            switch result {
            case .ok: return
            case .wantRead:
                let n = try receiveRaw()
                if n == 0 { throw HTTPClientError("connection closed during the TLS handshake") }
            case .closed:
                throw HTTPClientError("connection closed during the TLS handshake")
            case .failed(let failure):
                throw HTTPClientError("TLS handshake failed: \(failure.reason)")
            }
        }
    }

    /// "TLSv1.3", "TLSv1.2", or nil for plaintext.
    public var tlsVersion: String? { engine?.protocolVersion }

    /// The TLS session to offer when reconnecting (nil for plaintext or before the server
    /// sent one).
    public var resumableSession: TLSSession? { engine?.resumableSession }

    /// Sends one request and reads its response. Marks the connection closed when the response
    /// says `Connection: close`.
    public func perform(_ request: HTTPClientRequest) throws -> HTTPClientResponse {
        try write(request.serialized(host: hostHeader))
        return try readResponse(headRequest: request.method == "HEAD")
    }

    /// Writes raw request bytes (encrypted first under TLS).
    public func write(_ bytes: [UInt8]) throws {
        guard isOpen else { throw HTTPClientError("connection is closed") }
        do {
            if let engine {
                let result = bytes.withUnsafeBytes { engine.writePlaintext($0) }
                try flushCiphertext()
                switch result {
                case .ok: return
                case .wantRead: throw HTTPClientError("TLS write before the handshake completed")
                case .closed: throw HTTPClientError("TLS connection closed")
                case .failed(let failure): throw HTTPClientError("TLS write failed: \(failure.reason)")
                }
            }
            try bytes.withUnsafeBytes { (raw) in try socket.send(raw) }
        } catch {
            close()
            throw error
        }
    }

    /// Reads the next response. Throws when the connection ends or times out first.
    public func readResponse(headRequest: Bool = false) throws -> HTTPClientResponse {
        do {
            while true {
                switch parser.next(headRequest: headRequest) {
                case .response(let response):
                    if response.header("connection")?.lowercased() == "close" { close() }
                    return response
                case .error(let reason):
                    throw HTTPClientError("malformed response: \(reason)")
                case .needMore:
                    break
                }
                guard isOpen else { throw HTTPClientError("connection closed before a complete response") }
                if try !receivePlaintext() {
                    isOpen = false
                    if case .response(let response) = parser.next(headRequest: headRequest) {
                        socket.close()
                        return response
                    }
                    throw HTTPClientError("connection closed before a complete response")
                }
            }
        } catch {
            close()
            throw error
        }
    }

    /// Reads from the socket and feeds the parser; false on end of stream.
    private func receivePlaintext() throws -> Bool {
        let n = try receiveRaw()
        guard let engine else {
            if n == 0 { return false }
            receiveBuffer.withUnsafeBytes { parser.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            return true
        }
        if n == 0 { return false }
        plaintext.removeAll(keepingCapacity: true)
        let result = engine.readPlaintext(into: &plaintext)
        try flushCiphertext()
        plaintext.withUnsafeBytes { parser.feed($0) }
        switch result {
        case .ok, .wantRead: return true
        case .closed: return false
        case .failed(let failure): throw HTTPClientError("TLS failed: \(failure.reason)")
        }
    }

    /// One socket read: plaintext bytes stay in `receiveBuffer`; ciphertext goes to the engine.
    private func receiveRaw() throws -> Int {
        let n = try receiveBuffer.withUnsafeMutableBytes { (raw) in try socket.receive(into: raw) }
        if let engine, n > 0 {
            receiveBuffer.withUnsafeBytes { engine.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return n
    }

    private func flushCiphertext() throws {
        guard let engine else { return }
        engine.takeCiphertext(into: &ciphertext)
        guard !ciphertext.isEmpty else { return }
        defer { ciphertext.removeAll(keepingCapacity: true) }
        try ciphertext.withUnsafeBytes { (raw) in try socket.send(raw) }
    }

    /// Closes the socket (a TLS close_notify is sent first when possible).
    public func close() {
        guard isOpen || socket.isOpen else { return }
        isOpen = false
        if let engine, socket.isOpen {
            engine.shutdown()
            try? flushCiphertext()
        }
        socket.close()
    }
}
