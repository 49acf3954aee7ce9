#if canImport(Glibc)
import Glibc
#endif

/// Carries a loop-confined value through a `@Sendable` closure that is guaranteed to run on the
/// same loop (a `LoopExecutor.submit` completion, a worker's completion). The compiler cannot
/// see that guarantee; this type states it at the one place it is relied on, and debug builds
/// check it (as SwiftNIO's `NIOLoopBound` does): the value is created on its loop's thread and
/// may be read only there.
public struct LoopBound<Value>: @unchecked Sendable {
    private let wrapped: Value
    /// The thread that created the value (its loop's thread).
    private let owner: pthread_t

    public init(_ value: Value) {
        wrapped = value
        owner = pthread_self()
    }

    public var value: Value {
        assert(isOnOwningThread, "LoopBound value touched off its loop's thread")
        return wrapped
    }

    /// Whether the calling thread is the one that created the value.
    public var isOnOwningThread: Bool { pthread_equal(owner, pthread_self()) != 0 }
}
