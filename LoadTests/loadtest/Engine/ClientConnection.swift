import EventLoop
import TLS

/// Why a request got no response.
enum ConnectionFailure: Error, CustomStringConvertible {
    case connect(String)
    case tls(String)
    /// The server closed the connection (or a write failed) before the response was complete.
    case closed(String)
    case protocolError(String)
    case timeout

    var description: String {
        switch self {
        case .connect(let d): "connect: \(d)"
        case .tls(let d): "TLS: \(d)"
        case .closed(let d): "connection closed: \(d)"
        case .protocolError(let d): "protocol: \(d)"
        case .timeout: "timeout"
        }
    }

    /// A short label for counting.
    var label: String {
        switch self {
        case .connect: "connect"
        case .tls: "tls"
        case .closed: "closed"
        case .protocolError: "protocol"
        case .timeout: "timeout"
        }
    }
}

/// A complete response; `body` points into the connection's buffer and is valid only during
/// the completion callback.
struct Response {
    let head: ResponseHead
    let body: UnsafeRawBufferPointer
    let latencyNs: UInt64
}

/// Connection-level counts shared by every connection of a run.
final class ConnectionCounters {
    var connects: UInt64 = 0
    var fullHandshakes: UInt64 = 0
    var resumedHandshakes: UInt64 = 0
    var failures: [String: UInt64] = [:]

    func failed(_ f: ConnectionFailure) { failures[f.label, default: 0] += 1 }
}

/// An asynchronous HTTP/1.1 client connection on a libuv loop: plaintext or TLS (client role,
/// optionally presenting a client certificate), keep-alive, one request in flight. Connects
/// lazily on the first request and again after the server closed an idle connection; a TLS
/// session from the previous connection is offered for resumption unless `resume` is false.
///
/// Responses are parsed in place in one reusable buffer: nothing is allocated per response
/// except the pointer and boundary values the caller asked for (`ResponseHead`).
final class ClientConnection {
    enum State { case disconnected, connecting, handshaking, ready, closed }

    static let headBytesMax = 64 * 1024
    static let readChunkBytes = 16 * 1024

    let loop: Loop
    let host: String
    let port: Int
    let tls: TLSContext?
    /// Offer the previous connection's TLS session on reconnect.
    var resume = true
    let counters: ConnectionCounters

    private(set) var state: State = .disconnected
    private var socket: TCPSocket?
    private var engine: TLSEngine?
    private var session: TLSSession?
    private var sessionCaptured = false
    private let inbound = ByteBuffer(capacity: 64 * 1024)
    private var head: ResponseHead?
    private var headScan = 0
    private var completion: ((Result<Response, ConnectionFailure>) -> Void)?
    private var queued: [UInt8]?
    private var sentAtNs: UInt64 = 0
    /// Loop time (ms) after which the request in flight fails with `.timeout`; 0 when idle.
    private(set) var deadlineMs: UInt64 = 0

    init(loop: Loop, host: String, port: Int, tls: TLSContext?, counters: ConnectionCounters) {
        self.loop = loop
        self.host = host
        self.port = port
        self.tls = tls
        self.counters = counters
    }

    var isBusy: Bool { completion != nil }
    var isConnected: Bool { state == .ready }

    /// Sends `request` (a complete HTTP/1.1 request) and calls `completion` once with the
    /// response or the failure. Connects first when needed.
    func send(_ request: [UInt8], timeoutMs: UInt64, _ completion: @escaping (Result<Response, ConnectionFailure>) -> Void) {
        precondition(self.completion == nil, "one request in flight per connection")
        precondition(state != .closed, "connection closed for good")
        self.completion = completion
        deadlineMs = loop.nowMs + timeoutMs
        switch state {
        case .ready:
            write(request)
        case .disconnected:
            queued = request
            connect()
        case .connecting, .handshaking:
            queued = request
        case .closed:
            break
        }
    }

    /// Opens the connection (and completes the TLS handshake) without sending a request.
    func warmUp(timeoutMs: UInt64, _ done: @escaping (ConnectionFailure?) -> Void) {
        precondition(completion == nil)
        guard state == .disconnected else { return done(nil) }
        completion = { result in
            if case .failure(let f) = result { done(f) } else { done(nil) }
        }
        deadlineMs = loop.nowMs + timeoutMs
        connect()
    }

    /// Fails the request in flight with `.timeout` when its deadline passed.
    func checkDeadline(nowMs: UInt64) {
        if completion != nil && deadlineMs != 0 && nowMs > deadlineMs { fail(.timeout) }
    }

    /// Closes for good (end of run); a request in flight fails with `.closed`.
    func close() {
        if completion != nil { fail(.closed("closed by the load generator")) }
        dropSocket()
        state = .closed
    }

    /// Closes the transport now; the next request reconnects.
    func disconnect() {
        if completion != nil { fail(.closed("disconnected by the load generator")) } else { dropSocket() }
    }

    // MARK: connecting

    private func connect() {
        state = .connecting
        counters.connects += 1
        TCPSocket.connect(loop: loop, host: host, port: port) { [weak self] result in
            guard let self else {
                if case .success(let s) = result { s.close() }
                return
            }
            switch result {
            case .failure(let e):
                state = .disconnected
                fail(.connect(e.description))
            case .success(let s):
                guard state == .connecting else {
                    s.close()
                    return
                }
                attach(s)
            }
        }
    }

    private func attach(_ s: TCPSocket) {
        socket = s
        inbound.clear()
        head = nil
        headScan = 0
        s.onData = { [weak self] bytes in self?.received(bytes) }
        s.onReadEnd = { [weak self] code in self?.readEnded(code) }
        s.onWriteError = { [weak self] code in self?.fail(.closed("write error \(code)")) }
        s.startReading()
        if let tls {
            let e = TLSEngine(context: tls, resuming: resume ? session : nil)
            e.directOutput = { [s] record in s.writeNow(record) }  // records straight to an idle socket
            engine = e
            sessionCaptured = false
            state = .handshaking
            let r = e.handshake()
            flushCiphertext()
            if case .failed(let f) = r { fail(.tls(f.reason)) }
        } else {
            becameReady()
        }
    }

    private func becameReady() {
        state = .ready
        if let engine {
            if engine.sessionReused { counters.resumedHandshakes += 1 } else { counters.fullHandshakes += 1 }
        }
        if let request = queued {
            queued = nil
            write(request)
        } else if let c = completion {
            // warmUp: done.
            completion = nil
            deadlineMs = 0
            c(.success(Response(head: ResponseHead(), body: UnsafeRawBufferPointer(start: nil, count: 0), latencyNs: 0)))
        }
    }

    // MARK: writing

    private func write(_ request: [UInt8]) {
        sentAtNs = Loop.hrtimeNs
        if let engine {
            let r = request.withUnsafeBytes { engine.writePlaintext($0) }
            flushCiphertext()
            if case .failed(let f) = r { fail(.tls(f.reason)) }
        } else if let socket {
            socket.enqueue(request)
            socket.flush()
        }
    }

    private func flushCiphertext() {
        guard let engine, let socket, engine.pendingCiphertextCount > 0 else { return }
        var out: [UInt8] = []
        engine.takeCiphertext(into: &out)
        socket.enqueue(out)
        socket.flush()
    }

    // MARK: reading

    private func received(_ bytes: UnsafeRawBufferPointer) {
        guard let engine else {
            inbound.append(bytes)
            parse()
            return
        }
        engine.feed(bytes)
        if state == .handshaking {
            let r = engine.handshake()
            flushCiphertext()
            switch r {
            case .ok:
                becameReady()
            case .wantRead:
                return
            case .closed:
                return fail(.tls("closed during the handshake"))
            case .failed(let f):
                return fail(.tls(f.reason))
            }
        }
        var result = TLSResult.ok
        while result == .ok {
            inbound.reserveWritable(ClientConnection.readChunkBytes)
            let (n, r) = engine.readPlaintext(into: inbound.writable)
            inbound.writeIndex += n
            result = r
        }
        flushCiphertext()
        if !sessionCaptured && inbound.readableCount > 0 && resume {
            // TLS 1.3 tickets arrive after the handshake; by the first response they are in.
            sessionCaptured = true
            session = engine.resumableSession
        }
        parse()
        switch result {
        case .closed:
            if socket != nil { readEnded(0) }
        case .failed(let f):
            fail(.tls(f.reason))
        default:
            break
        }
    }

    private func parse() {
        while socket != nil {
            if head == nil {
                guard inbound.readableCount > 0 else { return }
                switch ResponseHead.parse(inbound.readable, scanFrom: &headScan, headBytesMax: ClientConnection.headBytesMax) {
                case .needMore:
                    return
                case .error(let d):
                    return fail(.protocolError(d))
                case .head(let h):
                    if h.chunked { return fail(.protocolError("chunked responses are not supported")) }
                    inbound.readIndex += h.byteCount
                    head = h
                }
            }
            guard let h = head, inbound.readableCount >= h.contentLength else { return }
            let body = UnsafeRawBufferPointer(start: inbound.base + inbound.readIndex, count: h.contentLength)
            inbound.readIndex += h.contentLength
            head = nil
            if inbound.readableCount == 0 { inbound.clear() }
            guard let c = completion else { return fail(.protocolError("response without a request")) }
            completion = nil
            deadlineMs = 0
            let latency = Loop.hrtimeNs &- sentAtNs
            if h.connectionClose { dropSocket() }
            c(.success(Response(head: h, body: body, latencyNs: latency)))
        }
    }

    private func readEnded(_ code: Int32) {
        if completion != nil {
            fail(.closed(code == 0 ? "server closed the connection" : "read error \(code)"))
        } else {
            dropSocket()
        }
    }

    private func fail(_ failure: ConnectionFailure) {
        counters.failed(failure)
        dropSocket()
        queued = nil
        if let c = completion {
            completion = nil
            deadlineMs = 0
            c(.failure(failure))
        }
    }

    private func dropSocket() {
        if resume && !sessionCaptured, let engine, engine.handshakeComplete {
            // Closed before any response (an idle connection the server timed out): the
            // session ticket, if one came, was read by then.
            sessionCaptured = true
            session = engine.resumableSession
        }
        if let socket {
            socket.onData = nil
            socket.onReadEnd = nil
            socket.onWriteError = nil
            socket.close()
        }
        socket = nil
        engine = nil
        head = nil
        headScan = 0
        inbound.clear()
        if state != .closed { state = .disconnected }
    }
}
