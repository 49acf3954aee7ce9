import CUV
import Synchronization

/// The one door into a loop from other threads: `submit` queues a closure and wakes the loop
/// (`uv_async_send`, which coalesces); the loop runs every queued closure in order.
public final class LoopExecutor: Sendable {
    private struct State {
        var work: [@Sendable () -> Void] = []
        var closed = false
    }

    private let state = Mutex(State())
    private nonisolated(unsafe) let handle: UnsafeMutablePointer<uv_async_t>

    public init(loop: Loop) {
        handle = .allocate(capacity: 1)
        uv_async_init(loop.raw, handle) { h in
            let executor = Unmanaged<LoopExecutor>.fromOpaque(h!.pointee.data).takeUnretainedValue()
            executor.drain()
        }
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    /// Queues `work` to run on the loop thread. Work submitted after `close()` is dropped.
    public func submit(_ work: @escaping @Sendable () -> Void) {
        state.withLock { s in
            guard !s.closed else { return }
            s.work.append(work)
            // Under the lock, so that close() cannot free the handle while we signal it.
            uv_async_send(handle)
        }
    }

    private func drain() {
        let batch = state.withLock { s -> [@Sendable () -> Void] in
            let w = s.work
            s.work.removeAll(keepingCapacity: true)
            return w
        }
        for work in batch { work() }
    }

    /// Keeps the loop from staying alive just for this executor.
    public func unref() { uv_unref(rtp_uv_handle(handle)) }

    /// Runs what is queued, then closes the handle. Loop thread only.
    public func close() {
        drain()
        let wasClosed = state.withLock { s -> Bool in
            let was = s.closed
            s.closed = true
            return was
        }
        guard !wasClosed else { return }
        uv_close(rtp_uv_handle(handle)) { h in
            Unmanaged<LoopExecutor>.fromOpaque(h!.pointee.data).release()
            UnsafeMutableRawPointer(h!).deallocate()
        }
    }
}
