import Foundation
import Synchronization

/// Runs `makeWorker()`'s closure in a tight loop on `threads` threads for `seconds` and returns
/// operations per wall-clock second (all threads together) and per CPU-second the threads used
/// (the second is what a fully available core would do; it is robust to other load). Each thread builds its own worker first (so
/// per-thread state such as libxml2 contexts is created outside the timed window); a worker
/// returning false aborts the run. Reusable for any "messages/s on N threads" figure.
func measureThroughput(threads: Int, seconds: Double, makeWorker: @escaping @Sendable () -> () -> Bool) -> (perSecond: Double, perCPUSecond: Double) {
    precondition(threads >= 1 && seconds > 0)
    let ready = DispatchSemaphore(value: 0)
    let start = DispatchSemaphore(value: 0)
    let done = DispatchSemaphore(value: 0)
    let operations = Mutex<Int>(0)
    let cpuNanoseconds = Mutex<UInt64>(0)
    let failed = Mutex<Bool>(false)
    let deadline = Mutex<UInt64>(0)
    for _ in 0..<threads {
        Thread {
            let work = makeWorker()
            _ = work()  // warm-up: contexts, caches
            ready.signal()
            start.wait()
            let end = deadline.withLock { $0 }
            let cpuStart = threadCPUNanoseconds()
            var count = 0
            outer: while true {
                for _ in 0..<64 {
                    guard work() else { failed.withLock { $0 = true }; break outer }
                    count += 1
                }
                if DispatchTime.now().uptimeNanoseconds >= end { break }
            }
            let cpu = threadCPUNanoseconds() - cpuStart
            operations.withLock { $0 += count }
            cpuNanoseconds.withLock { $0 += cpu }
            done.signal()
        }.start()
    }
    for _ in 0..<threads { ready.wait() }
    let began = DispatchTime.now().uptimeNanoseconds
    deadline.withLock { $0 = began + UInt64(seconds * 1e9) }
    for _ in 0..<threads { start.signal() }
    for _ in 0..<threads { done.wait() }
    let elapsed = Double(DispatchTime.now().uptimeNanoseconds - began) / 1e9
    precondition(!failed.withLock { $0 }, "a worker failed: the message did not validate")
    let total = Double(operations.withLock { $0 })
    return (total / elapsed, total / (Double(cpuNanoseconds.withLock { $0 }) / 1e9))
}

func threadCPUNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
