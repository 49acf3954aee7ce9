import CoreMetrics
import Synchronization

/// Sums and counts of every metric, by label and dimensions (enough for the benchmark's report).
final class BenchMetrics: MetricsFactory, Sendable {
    final class Handler: CounterHandler, RecorderHandler, TimerHandler, Sendable {
        let totals = Mutex<(sum: Double, count: Int)>((0, 0))
        func increment(by amount: Int64) { add(Double(amount)) }
        func reset() { totals.withLock { $0 = (0, 0) } }
        func record(_ value: Int64) { add(Double(value)) }
        func record(_ value: Double) { add(value) }
        func recordNanoseconds(_ duration: Int64) { add(Double(duration)) }
        private func add(_ v: Double) { totals.withLock { $0 = ($0.sum + v, $0.count + 1) } }
    }

    private let handlers = Mutex<[String: Handler]>([:])

    private func handler(_ label: String, _ dimensions: [(String, String)]) -> Handler {
        let key = label + dimensions.map { "{\($0.0)=\($0.1)}" }.joined()
        return handlers.withLock { h in
            if let existing = h[key] { return existing }
            let made = Handler()
            h[key] = made
            return made
        }
    }

    func totals(_ key: String) -> (sum: Double, count: Int) {
        handlers.withLock { $0[key]?.totals.withLock { $0 } } ?? (0, 0)
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { handler(label, dimensions) }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { handler(label, dimensions) }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { handler(label, dimensions) }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
