import EventLoop
import HTTP
import Logging
import TLS

/// One client connection: bytes in through the transport into the strict parser, one request
/// at a time to its handler (pipelined requests wait, in order), responses out through the
/// transport with one gathered write per flush, one timer for whichever deadline applies.
final class HTTPConnection {
    private unowned let server: HTTPServer
    let socket: TCPSocket
    private var transport: any ConnectionTransport
    private var parser: HTTPRequestParser
    private var timeouts: ConnectionTimeouts
    private let timer: LoopTimer
    private var armedDeadlineMs: UInt64?
    private var inFlight: RequestContext?
    /// Close once the queued bytes are written (error response, Connection: close, shutdown).
    private var closeAfterWrite = false
    /// Inside processInput: responses are queued and flushed once at the end.
    private var processing = false
    private var readEOF = false
    private(set) var closed = false
    /// close() was called; the socket's close callback has not run yet.
    private var closing = false
    /// After a protocol error response: half-close and discard input for a while before
    /// closing, so that a client still sending its request reads our answer instead of a reset.
    private var lingerBeforeClose = false
    private var lingering = false
    private var lingerBytes = 0
    /// How long and how much a lingering close waits and discards.
    static let lingerMs: UInt64 = 2000
    static let lingerBytesMax = 4 << 20
    private var lastBytesWritten: UInt64 = 0
    let id: UInt64

    init(server: HTTPServer, socket: TCPSocket, transport: any ConnectionTransport, id: UInt64) {
        self.server = server
        self.socket = socket
        self.transport = transport
        self.id = id
        parser = HTTPRequestParser(limits: server.config.limits)
        timeouts = ConnectionTimeouts(policy: server.config.timeouts, nowMs: Self.clockMs,
                                      handshaking: !transport.isEstablished)
        timer = LoopTimer(loop: socket.loop)
    }

    func start() {
        socket.onData = { [unowned self] bytes in received(bytes) }
        socket.onReadEnd = { [unowned self] code in readEnded(code) }
        socket.onDrained = { [unowned self] in drained() }
        socket.onClosed = { [unowned self] in socketClosed() }
        socket.startReading()
        observe()
    }

    var isIdle: Bool { inFlight == nil && parser.phase == .idle && !socket.hasPendingWrites }

    // MARK: input

    /// Ciphertext of a handshake that waits for the next turn's budget.
    private var deferredHandshakeBytes: [UInt8]?

    private func received(_ bytes: UnsafeRawBufferPointer) {
        if lingering {
            lingerBytes += bytes.count
            if lingerBytes > Self.lingerBytesMax { close() }
            return
        }
        if !transport.isEstablished {
            server.connectionReceived(self)
            if deferredHandshakeBytes != nil {
                deferredHandshakeBytes!.append(contentsOf: bytes)
                return
            }
            if !server.takeHandshakeStep(self) {
                deferredHandshakeBytes = Array(bytes)
                socket.stopReading()
                return
            }
        }
        receivedNow(bytes)
    }

    func resumeDeferredHandshake() {
        guard let bytes = deferredHandshakeBytes, !closed, !closing else { return }
        if !server.takeHandshakeStep(self) { return }
        deferredHandshakeBytes = nil
        socket.startReading()
        bytes.withUnsafeBytes { receivedNow($0) }
    }

    private func receivedNow(_ bytes: UnsafeRawBufferPointer) {
        let wasEstablished = transport.isEstablished
        let ok = transport.receive(bytes) { plain in parser.feed(plain) }
        if !ok {
            if let reason = transport.failureReason {
                server.logger.info("connection closed by transport", metadata: [
                    "peer": "\(socket.peerAddress)", "reason": "\(reason)", "listener": "\(server.config.name)"])
            }
            socket.flush()  // a TLS alert may be queued
            closeAfterWrite = true
            if !socket.hasPendingWrites { close() }
            return
        }
        if !wasEstablished && transport.isEstablished {
            server.connectionAuthenticated(self)
            observe()
        }
        processInput()
    }

    private func readEnded(_ code: Int32) {
        readEOF = true
        if lingering {
            close()
            return
        }
        if code != 0 || (inFlight == nil && !socket.hasPendingWrites) {
            close()
            return
        }
        closeAfterWrite = true
    }

    /// Unsent output above the high-water mark: no further request is dispatched (pipelined
    /// requests wait unparsed in the parser's buffer, and reading stops) until it drains. So a
    /// client that pipelines requests and never reads gets at most one response built beyond
    /// the mark, however many requests it sent.
    private var outputAboveHighWater: Bool { socket.queuedBytes > server.config.outputHighWaterBytes }

    /// Dispatches buffered requests one at a time until one is in flight, input runs out, or
    /// the output is above its high-water mark (`drained()` resumes).
    private func processInput() {
        guard !processing, !closed else { return }
        processing = true
        loop: while !closed && inFlight == nil && !closeAfterWrite && transport.isEstablished && !outputAboveHighWater {
            switch parser.next() {
            case .needMore:
                break loop
            case .request(let request):
                dispatch(request)
            case .error(let error):
                server.metrics.parseError(status: error.status)
                closeAfterWrite = true
                lingerBeforeClose = true
                write(.problem(Problem(error.problem, detail: error.detail)), keepAlive: false, head: false)
            }
        }
        processing = false
        flushAndSettle()
    }

    private func dispatch(_ request: HTTPRequest) {
        let now = Loop.hrtimeNs
        switch server.router.match(method: request.method, path: request.path) {
        case .found(let handler, let params):
            let ctx = RequestContext(request: request, params: params, routeName: handler.name,
                                     peer: transport.peer, receivedNs: now, connection: self)
            inFlight = ctx
            handler.handle(ctx)
        case .methodNotAllowed(let allowed):
            let ctx = RequestContext(request: request, params: RouteParameters(), routeName: "unmatched",
                                     peer: transport.peer, receivedNs: now, connection: self)
            inFlight = ctx
            ctx.respond(.problem(Problem(.methodNotAllowed, detail: "\(request.method) is not allowed here"),
                                 headers: [HTTPHeader("Allow", allowed.map(\.description).joined(separator: ", "))]))
        case .notFound:
            let ctx = RequestContext(request: request, params: RouteParameters(), routeName: "unmatched",
                                     peer: transport.peer, receivedNs: now, connection: self)
            inFlight = ctx
            ctx.respond(problem: Problem(.notFound, detail: "no resource at this path"))
        }
    }

    // MARK: output

    /// Called by `RequestContext.respond`.
    func send(_ response: HTTPResponse, for ctx: RequestContext) {
        guard !closed, ctx === inFlight else { return }
        inFlight = nil
        let keepAlive = ctx.request.keepAlive && !server.isDraining && !closeAfterWrite && !readEOF
        if !keepAlive { closeAfterWrite = true }
        write(response, keepAlive: keepAlive, head: ctx.request.method == .head)
        server.metrics.request(route: ctx.routeName, status: response.status,
                               durationNs: Loop.hrtimeNs &- ctx.receivedNs)
        if !processing {
            processInput()
        }
    }

    private func write(_ response: HTTPResponse, keepAlive: Bool, head: Bool) {
        let bytes = response.serializeHead(keepAlive: keepAlive, date: server.date(), bodyOmitted: head)
        if head || response.body.isEmpty {
            transport.send([bytes])
        } else {
            var chunks = [bytes]
            chunks.append(contentsOf: response.body)
            transport.send(chunks)
        }
    }

    private func flushAndSettle() {
        guard !closed, !lingering else { return }
        socket.flush()
        if closeAfterWrite && inFlight == nil && !socket.hasPendingWrites {
            finishAfterWrite()
            return
        }
        flowControl()
        observe()
    }

    private func drained() {
        if lingering { return }
        if closeAfterWrite && inFlight == nil {
            finishAfterWrite()
            return
        }
        flowControl()
        processInput()
    }

    /// Pauses reading while a busy request has a lot of pipelined input behind it or the peer
    /// is slow to take our output.
    private func flowControl() {
        guard !readEOF, !closed else { return }
        let tooMuch = outputAboveHighWater
            || (inFlight != nil && parser.bufferedBytes > server.config.pipelineBufferBytesMax)
        if tooMuch { socket.stopReading() } else { socket.startReading() }
    }

    // MARK: timeouts

    /// Now, read fresh: the loop's cached time (`Loop.nowMs`) is the start of the current turn,
    /// which after a long turn would date output queued at its end seconds too early (its
    /// write-stall deadline already past). Same monotonic base as libuv's timers.
    private static var clockMs: UInt64 { Loop.hrtimeNs / 1_000_000 }

    /// Reports the connection's situation to the timeout state machine and arms the one timer
    /// for the resulting deadline.
    private func observe() {
        guard !closed, !closing else { return }
        updateTimeouts()
        armTimer()
    }

    private func updateTimeouts() {
        let written = socket.bytesWritten
        timeouts.observe(nowMs: Self.clockMs, readPhase: parser.phase, handlerBusy: inFlight != nil,
                         writePending: socket.hasPendingWrites, wroteBytes: written != lastBytesWritten,
                         wroteAtMs: socket.lastWriteNs / 1_000_000, handshakeDone: transport.isEstablished)
        lastBytesWritten = written
    }

    /// Lazy: the timer is restarted only when the deadline comes earlier than the armed one. A
    /// later (or no) deadline leaves it armed; when it fires, `timerFired` re-evaluates. Busy
    /// keep-alive connections thus re-arm about once per idle period, not per request.
    private func armTimer() {
        guard let deadline = timeouts.deadlineMs else { return }
        if let armed = armedDeadlineMs, armed <= deadline { return }
        let now = Self.clockMs
        armedDeadlineMs = deadline
        // At least 1 ms: a 0 ms timer re-armed from a timer callback would run again in the
        // same libuv timer pass.
        timer.start(afterMs: deadline > now ? deadline - now : 1) { [unowned self] in timerFired() }
    }

    private func timerFired() {
        guard !closed, !closing else { return }
        armedDeadlineMs = nil
        updateTimeouts()  // write progress since the last observation moves the deadline
        guard let kind = timeouts.expiredAtTimer(nowMs: Self.clockMs) else {
            armTimer()  // a deadline already past (a late timer's grace): 1 ms, after the next poll
            return
        }
        server.metrics.timeout(kind)
        switch kind {
        case .idle, .handshake:
            close()
        case .writeStall:
            closing = true
            socket.close(reset: true)
        case .head, .body:
            closeAfterWrite = true
            write(.problem(Problem(.requestTimeout, detail: "request \(kind.rawValue) not received within the time limit")),
                  keepAlive: false, head: false)
            flushAndSettle()
            if !closed && !closing {
                // Give the 408 the write-stall allowance to leave, then close regardless.
                timer.start(afterMs: server.config.timeouts.writeStallMs) { [unowned self] in close() }
                armedDeadlineMs = nil
                closing = true
            }
        }
    }

    // MARK: shutdown and close

    /// Everything is written and the connection ends: at once, or lingering after an error.
    /// Runs once: a flush that drains synchronously re-enters through `drained()` before the
    /// caller's own check, and a second call must not cut the linger short (that close, with
    /// the refused upload still arriving, is an RST that the client sees before the answer).
    private func finishAfterWrite() {
        guard !lingering else { return }
        guard lingerBeforeClose, !readEOF, !closing else { return close() }
        lingering = true
        closing = true  // no more requests, no more deadlines but the linger timer
        transport.shutdown()
        socket.flush()
        socket.shutdownWrite()
        socket.startReading()
        timer.start(afterMs: Self.lingerMs) { [unowned self] in close() }
    }

    /// Graceful shutdown: idle connections close now, busy ones after their response.
    func drain() {
        if isIdle {
            close()
        } else {
            closeAfterWrite = inFlight == nil ? true : closeAfterWrite
            if inFlight == nil && !socket.hasPendingWrites { close() }
        }
    }

    /// The client certificate's identity, once the TLS handshake completed.
    var peerIdentity: PeerIdentity? { transport.peerIdentity }

    /// Shed by admission: reset at once, nothing more is read or written.
    func reset() {
        guard !closed, !closing else { return }
        closing = true
        timer.stop()
        socket.close(reset: true)
    }

    func close() {
        guard !closed else { return }
        if !closing && !lingering && transport.isEstablished {
            transport.shutdown()
            socket.flush()
        }
        closing = true
        timer.stop()
        socket.close()
    }

    private func socketClosed() {
        closed = true
        timer.stop()
        inFlight?.cancel()
        inFlight = nil
        server.connectionClosed(self)
    }
}
