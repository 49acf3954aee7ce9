#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic and wall clocks in the units the store uses.
enum Clock {
    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func wallMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// State behind a pthread mutex with a condition variable, for the writer's and the
/// checkpointer's work queues (they sleep until work arrives or a deadline passes).
final class ConditionLock<State>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var state: State

    init(_ state: State) {
        self.state = state
        precondition(pthread_mutex_init(mutex, nil) == 0)
        #if os(Linux)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        precondition(pthread_cond_init(condition, &attributes) == 0)
        pthread_condattr_destroy(&attributes)
        #else
        precondition(pthread_cond_init(condition, nil) == 0)
        #endif
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }

    /// Waits until `ready` holds or `deadlineNs` (monotonic) passes, then runs `body`, all
    /// under the lock.
    func wait<R, E: Error>(until ready: (inout State) -> Bool, deadlineNs: UInt64?,
                           then body: (inout State) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !ready(&state) {
            guard let deadlineNs else {
                pthread_cond_wait(condition, mutex)
                continue
            }
            let now = Clock.monotonicNanoseconds()
            if now >= deadlineNs { break }
            #if os(Linux)
            var ts = timespec(tv_sec: Int(deadlineNs / 1_000_000_000), tv_nsec: Int(deadlineNs % 1_000_000_000))
            _ = pthread_cond_timedwait(condition, mutex, &ts)
            #else
            let delta = deadlineNs - now
            var ts = timespec(tv_sec: Int(delta / 1_000_000_000), tv_nsec: Int(delta % 1_000_000_000))
            _ = pthread_cond_timedwait_relative_np(condition, mutex, &ts)
            #endif
        }
        return try body(&state)
    }

    func broadcast() { pthread_cond_broadcast(condition) }
}

/// A joinable OS thread running a closure (the writer and the checkpointer).
final class OSThread: @unchecked Sendable {
    private final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    #if os(Linux)
    private var thread: pthread_t = 0
    #else
    private var thread: pthread_t?
    #endif
    private var joined = false

    init(name: String, body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            #if os(Linux)
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            #else
            let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            _ = pthread_setname_np(String(box.name.prefix(15)))
            #endif
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    /// True on the thread this object runs.
    var isCurrent: Bool {
        #if os(Linux)
        pthread_equal(pthread_self(), thread) != 0
        #else
        pthread_equal(pthread_self(), thread!) != 0
        #endif
    }

    func join() {
        guard !joined else { return }
        joined = true
        #if os(Linux)
        pthread_join(thread, nil)
        #else
        pthread_join(thread!, nil)
        #endif
    }
}
