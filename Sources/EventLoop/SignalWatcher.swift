import CUV

/// Delivers a process signal (SIGTERM, SIGINT, SIGHUP, ...) to the loop thread.
public final class SignalWatcher {
    private let handle: UnsafeMutablePointer<uv_signal_t>
    private let loop: Loop
    private let callback: (Int32) -> Void

    public init(loop: Loop, signal: Int32, _ callback: @escaping (Int32) -> Void) throws {
        self.loop = loop
        self.callback = callback
        handle = .allocate(capacity: 1)
        uv_signal_init(loop.raw, handle)
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        try LoopError.check(uv_signal_start(handle, { h, signum in
            guard let data = h!.pointee.data else { return }
            Unmanaged<SignalWatcher>.fromOpaque(data).takeUnretainedValue().callback(signum)
        }, signal), "signal \(signal)")
        uv_unref(rtp_uv_handle(handle))
    }

    deinit {
        handle.pointee.data = nil
        if loop.closed {
            handle.deallocate()
        } else {
            uv_close(rtp_uv_handle(handle)) { h in UnsafeMutableRawPointer(h!).deallocate() }
        }
    }
}

/// Measures event-loop lag: a repeating timer compares when it fired with when it was due.
/// A loop blocked by a long callback shows up as lag.
public final class LoopLagProbe {
    private let timer: LoopTimer
    private let loop: Loop
    private var dueNs: UInt64 = 0
    public let intervalMs: UInt64
    /// Latest measured lag.
    public private(set) var lastLagNs: UInt64 = 0

    public init(loop: Loop, intervalMs: UInt64 = 250, report: @escaping (UInt64) -> Void) {
        self.loop = loop
        self.intervalMs = intervalMs
        timer = LoopTimer(loop: loop)
        timer.unref()
        dueNs = Loop.hrtimeNs + intervalMs * 1_000_000
        timer.start(afterMs: intervalMs, repeatMs: intervalMs) { [unowned self] in
            let now = Loop.hrtimeNs
            lastLagNs = now > dueNs ? now - dueNs : 0
            dueNs = now + intervalMs * 1_000_000
            report(lastLagNs)
        }
    }
}
