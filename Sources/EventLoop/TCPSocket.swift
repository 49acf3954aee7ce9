import CUV

/// A TCP connection on a loop: reads into the loop's shared buffer and hands the bytes to
/// `onData` synchronously; writes from a queue of immutable byte arrays with gathered
/// (vectored) `uv_try_write`, at most `writeBytesPerTurnMax` per loop turn, falling back to an
/// asynchronous `uv_write` only when the kernel's buffer is full.
///
/// Lifetime: the handle keeps the socket alive (retained in `handle.data`) until `close()`'s
/// callback ran; then `onClosed` runs once and every callback is dropped.
public final class TCPSocket {
    /// Most iovecs gathered into one write call.
    public static let iovecsPerWriteMax = 64
    /// Fairness cap: bytes one socket may write in one loop turn before yielding to others.
    public nonisolated(unsafe) static var writeBytesPerTurnMax = 256 * 1024

    let handle: UnsafeMutablePointer<uv_tcp_t>
    public let loop: Loop

    /// Bytes read; valid only during the call.
    public var onData: ((UnsafeRawBufferPointer) -> Void)?
    /// The read side ended: 0 for EOF, a libuv error code otherwise.
    public var onReadEnd: ((Int32) -> Void)?
    /// The write queue became empty (everything handed to the kernel).
    public var onDrained: (() -> Void)?
    /// A write failed (the connection is unusable); the socket is being closed.
    public var onWriteError: ((Int32) -> Void)?
    public var onClosed: (() -> Void)?

    private var queue: [[UInt8]] = []
    private var queueHead = 0          // index of the first unsent chunk
    private var headOffset = 0         // bytes of queue[queueHead] already sent
    public private(set) var queuedBytes = 0
    private var asyncWriteInFlight = false
    private var flushScheduled = false
    public private(set) var isClosing = false
    private var reading = false
    /// Total bytes handed to the kernel (for tests and metrics).
    public private(set) var bytesWritten: UInt64 = 0
    /// When bytes were last handed to the kernel (`Loop.hrtimeNs`), for the write-stall
    /// deadline: progress dated when it happened, not when the connection next looked.
    public private(set) var lastWriteNs: UInt64 = 0

    init(loop: Loop) {
        self.loop = loop
        handle = .allocate(capacity: 1)
        uv_tcp_init(loop.raw, handle)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    private var stream: UnsafeMutablePointer<uv_stream_t> { rtp_uv_stream(handle) }

    static func from(_ h: UnsafeMutableRawPointer?) -> TCPSocket {
        let tcp = h!.assumingMemoryBound(to: uv_tcp_t.self)
        return Unmanaged<TCPSocket>.fromOpaque(tcp.pointee.data).takeUnretainedValue()
    }

    // MARK: connect (clients: load generator, tests)

    private final class ConnectRequest {
        let completion: (Result<TCPSocket, LoopError>) -> Void
        let socket: TCPSocket
        init(_ socket: TCPSocket, _ completion: @escaping (Result<TCPSocket, LoopError>) -> Void) {
            self.socket = socket
            self.completion = completion
        }
    }

    /// Opens a connection to `host:port` (numeric address). The completion runs on the loop.
    public static func connect(loop: Loop, host: String, port: Int,
                               completion: @escaping (Result<TCPSocket, LoopError>) -> Void) {
        let socket = TCPSocket(loop: loop)
        let req = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        req.pointee.data = Unmanaged.passRetained(ConnectRequest(socket, completion)).toOpaque()
        let rc = rtp_uv_tcp_connect(req, socket.handle, host, Int32(port)) { req, status in
            let box = Unmanaged<ConnectRequest>.fromOpaque(req!.pointee.data).takeRetainedValue()
            req!.deallocate()
            if status < 0 {
                box.socket.close()
                box.completion(.failure(LoopError("connect", status)))
            } else {
                uv_tcp_nodelay(box.socket.handle, 1)
                box.completion(.success(box.socket))
            }
        }
        if rc < 0 {
            Unmanaged<ConnectRequest>.fromOpaque(req.pointee.data).release()
            req.deallocate()
            socket.close()
            completion(.failure(LoopError("connect", rc)))
        }
    }

    // MARK: reading

    public func startReading() {
        guard !reading, !isClosing else { return }
        reading = true
        uv_read_start(stream, { h, _, buf in
            let loop = Loop.from(h!.pointee.loop)
            buf!.pointee = uv_buf_init(loop.readBuffer.assumingMemoryBound(to: CChar.self),
                                       UInt32(Loop.readBufferBytes))
        }, { s, nread, buf in
            let socket = TCPSocket.from(UnsafeMutableRawPointer(s))
            if nread > 0 {
                socket.onData?(UnsafeRawBufferPointer(start: buf!.pointee.base, count: nread))
            } else if nread < 0 {
                socket.stopReading()
                socket.onReadEnd?(nread == Int(UV_EOF.rawValue) ? 0 : Int32(nread))
            }
        })
    }

    public func stopReading() {
        guard reading else { return }
        reading = false
        uv_read_stop(stream)
    }

    public var isReading: Bool { reading }

    // MARK: writing

    /// Chunks up to this size are copied into the queue's last buffer (many small pieces of a
    /// response become one iovec); larger ones are queued by reference and gathered (vectored).
    public static let coalesceBytesMax = 16 * 1024
    /// Size a coalescing buffer may grow to.
    static let coalesceBufferBytesMax = 64 * 1024
    /// `queue.last` is a buffer this socket made (uniquely owned: safe to append to).
    private var tailIsOwned = false

    /// Queues bytes for writing; nothing is sent before `flush()`.
    public func enqueue(_ bytes: [UInt8]) {
        guard !bytes.isEmpty, !isClosing else { return }
        queuedBytes += bytes.count
        guard bytes.count <= TCPSocket.coalesceBytesMax else {
            queue.append(bytes)
            tailIsOwned = false
            return
        }
        if tailIsOwned && queue.count > queueHead
            && queue[queue.count - 1].count + bytes.count <= TCPSocket.coalesceBufferBytesMax {
            queue[queue.count - 1].append(contentsOf: bytes)
        } else {
            var buffer: [UInt8] = []
            buffer.reserveCapacity(TCPSocket.coalesceBytesMax)
            buffer.append(contentsOf: bytes)
            queue.append(buffer)
            tailIsOwned = true
        }
    }

    private var directWriteTurn: UInt64 = .max
    private var directBytesThisTurn = 0

    /// Hands `bytes` to the kernel at once, without queueing or copying them, when nothing is
    /// queued before them; returns how many the kernel took. 0 means none: something is queued
    /// or in flight (order first), the kernel buffer is full, this turn's direct-write budget
    /// (`writeBytesPerTurnMax`) is spent, or the write failed, in which case the caller queues
    /// the bytes and the next `flush` meets the error again and closes as usual. Never closes
    /// the socket itself and never calls back, so it is safe inside other libraries' callbacks
    /// (the TLS engine calls it from OpenSSL's BIO write).
    public func writeNow(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard !bytes.isEmpty, !isClosing, !asyncWriteInFlight, queuedBytes == 0 else { return 0 }
        if directWriteTurn != loop.turn {
            directWriteTurn = loop.turn
            directBytesThisTurn = 0
        }
        let budget = TCPSocket.writeBytesPerTurnMax - directBytesThisTurn
        guard budget > 0 else { return 0 }
        let base = UnsafeMutableRawPointer(mutating: bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
        var buf = uv_buf_init(base, UInt32(min(bytes.count, budget)))
        let rc = uv_try_write(stream, &buf, 1)
        guard rc > 0 else { return 0 }
        bytesWritten += UInt64(rc)
        lastWriteNs = Loop.hrtimeNs
        directBytesThisTurn += Int(rc)
        return Int(rc)
    }

    /// Writes queued bytes now, up to the per-turn cap; the rest continues on later turns or
    /// when the kernel accepts more.
    public func flush() {
        guard !isClosing, !asyncWriteInFlight, queuedBytes > 0 else { return }
        var budget = TCPSocket.writeBytesPerTurnMax
        while queuedBytes > 0 && budget > 0 {
            var offered = 0
            var bufs: [uv_buf_t] = []
            bufs.reserveCapacity(min(TCPSocket.iovecsPerWriteMax, queue.count - queueHead))
            let rc = gather(queueHead, &bufs, &offered, budget)
            if rc == Int32(UV_EAGAIN.rawValue) {
                startAsyncWrite(budget)
                return
            }
            if rc < 0 {
                failWrite(rc)
                return
            }
            consume(Int(rc))
            budget -= Int(rc)
            if Int(rc) < offered {
                // Kernel buffer full: let libuv finish when the socket becomes writable.
                if queuedBytes > 0 { startAsyncWrite(budget) }
                return
            }
        }
        if queuedBytes > 0 {
            scheduleFlush()
        } else {
            onDrained?()
        }
    }

    /// Builds the iovec array over queue[i...] (nested so that every array's storage stays
    /// pinned during the call) and performs one `uv_try_write`.
    private func gather(_ i: Int, _ bufs: inout [uv_buf_t], _ offered: inout Int, _ budget: Int) -> Int32 {
        if i == queue.count || bufs.count == TCPSocket.iovecsPerWriteMax || offered >= budget {
            return bufs.withUnsafeBufferPointer { uv_try_write(stream, $0.baseAddress, UInt32($0.count)) }
        }
        return queue[i].withUnsafeBytes { raw in
            let start = i == queueHead ? headOffset : 0
            let len = min(raw.count - start, budget - offered)
            let base = UnsafeMutableRawPointer(mutating: raw.baseAddress! + start)
            bufs.append(uv_buf_init(base.assumingMemoryBound(to: CChar.self), UInt32(len)))
            offered += len
            return gather(i + 1, &bufs, &offered, budget)
        }
    }

    private func consume(_ n: Int) {
        var left = n
        queuedBytes -= n
        bytesWritten += UInt64(n)
        lastWriteNs = Loop.hrtimeNs
        while left > 0 {
            let avail = queue[queueHead].count - headOffset
            if left >= avail {
                left -= avail
                queueHead += 1
                headOffset = 0
            } else {
                headOffset += left
                left = 0
            }
        }
        if queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
            tailIsOwned = false
        } else if queueHead > 32 {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
    }

    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.onNextTurn { [self] in
            flushScheduled = false
            flush()
        }
    }

    private final class WriteRequest {
        let socket: TCPSocket
        let bytes: UnsafeMutableRawBufferPointer
        init(_ socket: TCPSocket, _ count: Int) {
            self.socket = socket
            bytes = .allocate(byteCount: count, alignment: 1)
        }
        deinit { bytes.deallocate() }
    }

    /// Copies up to `limit` queued bytes into one owned block and hands it to `uv_write`.
    private func startAsyncWrite(_ limit: Int) {
        let count = min(queuedBytes, max(limit, 64 * 1024))
        let req = WriteRequest(self, count)
        var filled = 0
        var i = queueHead
        var offset = headOffset
        while filled < count {
            queue[i].withUnsafeBytes { raw in
                let n = min(raw.count - offset, count - filled)
                (req.bytes.baseAddress! + filled).copyMemory(from: raw.baseAddress! + offset, byteCount: n)
                filled += n
            }
            i += 1
            offset = 0
        }
        consume(count)
        asyncWriteInFlight = true
        let w = UnsafeMutablePointer<uv_write_t>.allocate(capacity: 1)
        w.pointee.data = Unmanaged.passRetained(req).toOpaque()
        var buf = uv_buf_init(req.bytes.baseAddress!.assumingMemoryBound(to: CChar.self), UInt32(count))
        let rc = uv_write(w, stream, &buf, 1) { w, status in
            let req = Unmanaged<WriteRequest>.fromOpaque(w!.pointee.data).takeRetainedValue()
            w!.deallocate()
            let socket = req.socket
            socket.asyncWriteInFlight = false
            if status < 0 {
                socket.failWrite(status)
            } else if socket.queuedBytes > 0 {
                socket.flush()
            } else if !socket.isClosing {
                socket.onDrained?()
            }
        }
        if rc < 0 {
            Unmanaged<WriteRequest>.fromOpaque(w.pointee.data).release()
            w.deallocate()
            asyncWriteInFlight = false
            failWrite(rc)
        }
    }

    private func failWrite(_ code: Int32) {
        onWriteError?(code)
        close(reset: true)
    }

    /// True while bytes are queued or a write is in flight.
    public var hasPendingWrites: Bool { queuedBytes > 0 || asyncWriteInFlight }

    // MARK: closing

    /// Closes the connection; queued bytes not yet handed to the kernel are dropped (callers
    /// close after `onDrained` for a graceful close). `reset` sends RST instead of FIN.
    public func close(reset: Bool = false) {
        guard !isClosing, !loop.closed else { return }
        isClosing = true
        stopReading()
        queue.removeAll()
        queuedBytes = 0
        let closeCallback: uv_close_cb = { h in
            let tcp = UnsafeMutableRawPointer(h!).assumingMemoryBound(to: uv_tcp_t.self)
            let socket = Unmanaged<TCPSocket>.fromOpaque(tcp.pointee.data).takeRetainedValue()
            let onClosed = socket.onClosed
            socket.dropCallbacks()
            tcp.deallocate()
            onClosed?()
        }
        if reset, uv_tcp_close_reset(handle, closeCallback) == 0 { return }
        uv_close(rtp_uv_handle(handle), closeCallback)
    }

    private func dropCallbacks() {
        onData = nil
        onReadEnd = nil
        onDrained = nil
        onWriteError = nil
        onClosed = nil
    }

    public func setNoDelay(_ on: Bool) { uv_tcp_nodelay(handle, on ? 1 : 0) }

    /// Sends FIN after the queued bytes; reading continues (for a lingering close).
    public func shutdownWrite() {
        guard !isClosing else { return }
        let req = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        if uv_shutdown(req, stream, { req, _ in req!.deallocate() }) != 0 {
            req.deallocate()
        }
    }

    public var peerAddress: String {
        var buf = [CChar](repeating: 0, count: 80)
        guard rtp_uv_tcp_peer(handle, &buf, buf.count) == 0 else { return "unknown" }
        let len = buf.firstIndex(of: 0) ?? buf.count
        return String(decoding: buf[..<len].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A listening TCP socket; every accepted connection is handed to `onAccept` with
/// TCP_NODELAY set and not yet reading.
public final class TCPListener {
    private let handle: UnsafeMutablePointer<uv_tcp_t>
    private let loop: Loop
    private var onAccept: ((TCPSocket) -> Void)?
    public private(set) var port: Int = 0
    private var closed = false

    public init(loop: Loop, host: String, port: Int, backlog: Int32 = 1024,
                onAccept: @escaping (TCPSocket) -> Void) throws {
        self.loop = loop
        self.onAccept = onAccept
        handle = .allocate(capacity: 1)
        uv_tcp_init(loop.raw, handle)
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        do {
            try LoopError.check(rtp_uv_tcp_bind(handle, host, Int32(port)), "bind \(host):\(port)")
            try LoopError.check(uv_listen(rtp_uv_stream(handle), backlog) { server, status in
                guard status >= 0, let data = server!.pointee.data else { return }
                let listener = Unmanaged<TCPListener>.fromOpaque(data).takeUnretainedValue()
                listener.accept()
            }, "listen \(host):\(port)")
        } catch {
            close()
            throw error
        }
        self.port = Int(rtp_uv_tcp_local_port(handle))
    }

    deinit { close() }

    private func accept() {
        let socket = TCPSocket(loop: loop)
        if uv_accept(rtp_uv_stream(handle), rtp_uv_stream(socket.handle)) != 0 {
            socket.close()
            return
        }
        uv_tcp_nodelay(socket.handle, 1)
        onAccept?(socket)
    }

    /// Stops accepting; established connections are unaffected.
    public func close() {
        guard !closed else { return }
        closed = true
        if loop.closed {
            handle.deallocate()
            return
        }
        onAccept = nil
        handle.pointee.data = nil
        uv_close(rtp_uv_handle(handle)) { h in UnsafeMutableRawPointer(h!).deallocate() }
    }
}
