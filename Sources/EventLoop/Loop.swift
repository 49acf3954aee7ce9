import CUV

/// A libuv error: the operation that failed and libuv's error code.
public struct LoopError: Error, CustomStringConvertible, Equatable {
    public let operation: String
    public let code: Int32

    public init(_ operation: String, _ code: Int32) {
        self.operation = operation
        self.code = code
    }

    public var description: String { "\(operation): \(reason)" }

    /// libuv's text for the code alone, e.g. "address already in use".
    public var reason: String { String(cString: uv_strerror(code)) }

    /// Throws when `code` is a libuv error (negative).
    @inline(__always)
    static func check(_ code: Int32, _ operation: @autoclosure () -> String) throws {
        if code < 0 { throw LoopError(operation(), code) }
    }
}

/// One libuv loop and the thread that runs it. Every object made from a `Loop` (timers, sockets,
/// listeners) belongs to that thread; only `LoopExecutor.submit` may be called from elsewhere.
public final class Loop {
    /// Size of the single read buffer shared by every socket of this loop. A read callback
    /// consumes its bytes before returning, so one buffer per loop is enough.
    public static let readBufferBytes = 64 * 1024

    public let raw: UnsafeMutablePointer<uv_loop_t>
    let readBuffer: UnsafeMutableRawPointer
    private var idle: UnsafeMutablePointer<uv_idle_t>?
    private let check: UnsafeMutablePointer<uv_check_t>
    /// Loop iterations completed; lets per-turn budgets reset without a callback each.
    public private(set) var turn: UInt64 = 0
    private var nextTurn: [() -> Void] = []
    /// True after `close()`: owners released later free their handle memory without libuv.
    public private(set) var closed = false

    public init() throws {
        raw = .allocate(capacity: 1)
        let rc = uv_loop_init(raw)
        if rc < 0 {
            raw.deallocate()
            throw LoopError("uv_loop_init", rc)
        }
        _ = rtp_uv_loop_enable_idle_metrics(raw)
        readBuffer = .allocate(byteCount: Loop.readBufferBytes, alignment: 16)
        check = .allocate(capacity: 1)
        raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        uv_check_init(raw, check)
        check.pointee.data = raw.pointee.data
        uv_check_start(check) { h in
            Unmanaged<Loop>.fromOpaque(h!.pointee.data).takeUnretainedValue().turn &+= 1
        }
        uv_unref(rtp_uv_handle(check))
    }

    deinit {
        precondition(closed, "Loop must be closed before it is released")
    }

    static func from(_ raw: UnsafeMutablePointer<uv_loop_t>?) -> Loop {
        Unmanaged<Loop>.fromOpaque(raw!.pointee.data).takeUnretainedValue()
    }

    /// Runs until `stop()` is called or no active handle is left.
    public func run() { uv_run(raw, UV_RUN_DEFAULT) }

    /// Runs one iteration; blocks for I/O when `block` is true. Returns whether handles remain.
    @discardableResult
    public func runOnce(block: Bool = true) -> Bool {
        uv_run(raw, block ? UV_RUN_ONCE : UV_RUN_NOWAIT) != 0
    }

    public func stop() { uv_stop(raw) }

    /// The loop's cached monotonic time in milliseconds (updated once per iteration).
    public var nowMs: UInt64 { uv_now(raw) }

    /// Monotonic high-resolution time in nanoseconds.
    public static var hrtimeNs: UInt64 { uv_hrtime() }

    /// Cumulative time the loop spent idle in the kernel's poll, in nanoseconds.
    public var idleTimeNs: UInt64 { uv_metrics_idle_time(raw) }

    /// Runs `body` at the start of the next loop turn, after the current I/O callbacks. Used to
    /// spread work (e.g. capped writes) fairly over turns; the loop does not block while work waits.
    public func onNextTurn(_ body: @escaping () -> Void) {
        nextTurn.append(body)
        if idle == nil {
            let h = UnsafeMutablePointer<uv_idle_t>.allocate(capacity: 1)
            uv_idle_init(raw, h)
            h.pointee.data = Unmanaged.passUnretained(self).toOpaque()
            idle = h
        }
        if nextTurn.count == 1 {
            uv_idle_start(idle!) { h in
                let loop = Unmanaged<Loop>.fromOpaque(h!.pointee.data).takeUnretainedValue()
                loop.runNextTurn()
            }
        }
    }

    private func runNextTurn() {
        let work = nextTurn
        nextTurn.removeAll(keepingCapacity: true)
        if let idle { uv_idle_stop(idle) }
        for body in work { body() }
    }

    /// Closes every remaining handle, runs the loop until their close callbacks ran, and frees
    /// the loop. Call once, on the loop thread, after `run()` returned.
    public func close() {
        precondition(!closed)
        if let idle {
            uv_close(rtp_uv_handle(idle)) { h in UnsafeMutableRawPointer(h!).deallocate() }
            self.idle = nil
        }
        uv_close(rtp_uv_handle(check)) { h in UnsafeMutableRawPointer(h!).deallocate() }
        uv_walk(raw, { h, _ in
            if uv_is_closing(h) == 0 { uv_close(h, nil) }
        }, nil)
        // The walk closes handles whose owners are still alive; those owners see `closed` when
        // they are released and free their memory without calling into libuv again.
        while uv_run(raw, UV_RUN_NOWAIT) != 0 {}
        uv_loop_close(raw)
        readBuffer.deallocate()
        raw.deallocate()
        closed = true
    }
}
