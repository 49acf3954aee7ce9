import Foundation
import Synchronization

/// Runs `makeWorker()`'s closure in a tight loop on `threads` threads for `seconds` and returns
/// operations per second (all threads together). Each thread builds its own worker first (so
/// per-thread state such as libxml2 contexts is created outside the timed window); a worker
/// returning false aborts the run. Reusable for any "messages/s on N threads" figure.
func measureThroughput(threads: Int, seconds: Double, makeWorker: @escaping @Sendable () -> () -> Bool) -> Double {
    precondition(threads >= 1 && seconds > 0)
    let ready = DispatchSemaphore(value: 0)
    let start = DispatchSemaphore(value: 0)
    let done = DispatchSemaphore(value: 0)
    let operations = Mutex<Int>(0)
    let failed = Mutex<Bool>(false)
    let deadline = Mutex<UInt64>(0)
    for _ in 0..<threads {
        Thread {
            let work = makeWorker()
            _ = work()  // warm-up: contexts, caches
            ready.signal()
            start.wait()
            let end = deadline.withLock { $0 }
            var count = 0
            outer: while true {
                for _ in 0..<64 {
                    guard work() else { failed.withLock { $0 = true }; break outer }
                    count += 1
                }
                if DispatchTime.now().uptimeNanoseconds >= end { break }
            }
            operations.withLock { $0 += count }
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
    return Double(operations.withLock { $0 }) / elapsed
}
