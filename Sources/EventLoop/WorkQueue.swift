import CUV

/// Runs blocking or CPU-heavy work on libuv's thread pool and hands the result back to the loop
/// thread (`uv_queue_work`). The pool size is fixed at the first use by `UV_THREADPOOL_SIZE`;
/// `configureThreadPool` sets it before that.
public enum WorkQueue {
    /// Sets libuv's worker-thread count; effective only before the first `run` in the process.
    public static func configureThreadPool(threads: Int) {
        precondition(threads >= 1 && threads <= 128)
        setenv("UV_THREADPOOL_SIZE", String(threads), 1)
    }

    private final class Job {
        let work: @Sendable () -> Void
        let done: () -> Void
        init(work: @escaping @Sendable () -> Void, done: @escaping () -> Void) {
            self.work = work
            self.done = done
        }
    }

    /// Runs `work` on a worker thread, then `completion(result)` on the loop thread.
    public static func run<T: Sendable>(on loop: Loop, _ work: @escaping @Sendable () -> T,
                                        completion: @escaping (T) -> Void) {
        let result = ResultBox<T>()
        let job = Job(work: { result.value = work() }, done: { completion(result.value!) })
        let req = UnsafeMutablePointer<uv_work_t>.allocate(capacity: 1)
        req.pointee.data = Unmanaged.passRetained(job).toOpaque()
        let rc = uv_queue_work(loop.raw, req, { req in
            Unmanaged<Job>.fromOpaque(req!.pointee.data).takeUnretainedValue().work()
        }, { req, _ in
            let job = Unmanaged<Job>.fromOpaque(req!.pointee.data).takeRetainedValue()
            req!.deallocate()
            job.done()
        })
        precondition(rc == 0, "uv_queue_work: \(rc)")
    }
}

/// Carries a worker's result to the loop; written once by the worker before the loop reads it
/// (libuv orders the two through its queue).
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
