import CUV

/// A one-shot or repeating libuv timer, owned by the object that created it. Releasing the
/// `LoopTimer` closes the handle; a callback never runs after that.
public final class LoopTimer {
    private let handle: UnsafeMutablePointer<uv_timer_t>
    private let loop: Loop
    private var callback: (() -> Void)?

    public init(loop: Loop) {
        self.loop = loop
        handle = .allocate(capacity: 1)
        uv_timer_init(loop.raw, handle)
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        handle.pointee.data = nil
        if loop.closed {
            handle.deallocate()
        } else {
            uv_close(rtp_uv_handle(handle)) { h in UnsafeMutableRawPointer(h!).deallocate() }
        }
    }

    /// (Re)starts the timer: `callback` runs after `afterMs`, then every `repeatMs` if non-zero.
    public func start(afterMs: UInt64, repeatMs: UInt64 = 0, _ callback: @escaping () -> Void) {
        self.callback = callback
        uv_timer_start(handle, { h in
            guard let data = h!.pointee.data else { return }
            let timer = Unmanaged<LoopTimer>.fromOpaque(data).takeUnretainedValue()
            timer.callback?()
        }, afterMs, repeatMs)
    }

    public func stop() {
        guard !loop.closed else { return }
        uv_timer_stop(handle)
        callback = nil
    }

    public var isActive: Bool { uv_is_active(rtp_uv_handle(handle)) != 0 }

    /// Keeps the loop from staying alive just for this timer.
    public func unref() { uv_unref(rtp_uv_handle(handle)) }
}
