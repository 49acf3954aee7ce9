/// Carries a loop-confined value through a `@Sendable` closure that is guaranteed to run on the
/// same loop (a `LoopExecutor.submit` completion, a worker's completion). The compiler cannot
/// see that guarantee; this type states it at the one place it is relied on.
public struct LoopBound<Value>: @unchecked Sendable {
    public let value: Value

    public init(_ value: Value) {
        self.value = value
    }
}
