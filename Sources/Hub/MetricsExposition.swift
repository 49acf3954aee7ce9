import Metrics
import Prometheus

/// The process's Prometheus registry, bootstrapped into swift-metrics once.
public enum MetricsExposition {
    private static let registry = PrometheusCollectorRegistry()
    private nonisolated(unsafe) static var bootstrapped = false

    /// Installs the Prometheus factory as the swift-metrics backend (idempotent; call before
    /// any metric is created).
    public static func bootstrap() {
        guard !bootstrapped else { return }
        bootstrapped = true
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        MetricsSystem.bootstrap(factory)
    }

    /// Prometheus text exposition format 0.0.4.
    public static func render() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(registry.internalBufferCapacity())
        registry.emit(into: &buffer)
        return buffer
    }
}
