import Histogram

/// Latency and status counts of one route in one phase of a run: an HDR histogram (µs,
/// 3 significant digits, up to `latencyUsMax`) plus a per-second histogram that the time
/// series drains every second.
final class RouteStats {
    static let latencyUsMax: UInt64 = 300_000_000

    let name: String
    private(set) var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: RouteStats.latencyUsMax,
                                                   numberOfSignificantValueDigits: .three)
    private var secondHistogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: RouteStats.latencyUsMax,
                                                    numberOfSignificantValueDigits: .two)
    private(set) var statusCounts: [Int: UInt64] = [:]
    private(set) var failures: [String: UInt64] = [:]
    private(set) var count: UInt64 = 0
    private var secondCount: UInt64 = 0
    private var secondFailures: UInt64 = 0
    private var second429: UInt64 = 0

    init(name: String) {
        self.name = name
    }

    /// A response with `status` after `latencyNs`. 429 refusals are counted but kept out of
    /// the latency histograms: the percentiles describe admitted requests.
    func record(status: Int, latencyNs: UInt64) {
        statusCounts[status, default: 0] += 1
        count += 1
        secondCount += 1
        if status == 429 {
            second429 += 1
            return
        }
        let us = max(1, min(latencyNs / 1000, RouteStats.latencyUsMax))
        _ = histogram.record(us)
        _ = secondHistogram.record(us)
    }

    /// A request that got no response.
    func recordFailure(_ label: String) {
        failures[label, default: 0] += 1
        secondFailures += 1
    }

    struct Second {
        var count: UInt64
        var failures: UInt64
        var tooMany: UInt64
        var p50Ms: Double
        var p99Ms: Double
        var maxMs: Double
    }

    /// What happened since the last call; resets the per-second histogram.
    func takeSecond() -> Second {
        let h = secondHistogram
        let s = Second(count: secondCount, failures: secondFailures, tooMany: second429,
                       p50Ms: h.totalCount == 0 ? 0 : Double(h.valueAtPercentile(50)) / 1000,
                       p99Ms: h.totalCount == 0 ? 0 : Double(h.valueAtPercentile(99)) / 1000,
                       maxMs: h.totalCount == 0 ? 0 : Double(h.max) / 1000)
        secondHistogram.reset()
        secondCount = 0
        secondFailures = 0
        second429 = 0
        return s
    }

    var failureCount: UInt64 { failures.values.reduce(0, +) }

    /// Percentiles in ms and counts, for the JSON summary.
    func summary(seconds: Double) -> [String: Any] {
        let h = histogram
        func ms(_ p: Double) -> Double { h.totalCount == 0 ? 0 : Double(h.valueAtPercentile(p)) / 1000 }
        var statuses: [String: UInt64] = [:]
        for (k, v) in statusCounts { statuses[String(k)] = v }
        return [
            "count": count,
            "ratePerSecond": seconds > 0 ? Double(count) / seconds : 0,
            "statuses": statuses,
            "failures": failures,
            "latencyMs": [
                "p50": ms(50), "p90": ms(90), "p99": ms(99), "p99_9": ms(99.9),
                "max": h.totalCount == 0 ? 0 : Double(h.max) / 1000,
                "mean": h.totalCount == 0 ? 0 : h.mean / 1000,
            ],
        ]
    }

    func percentileMs(_ p: Double) -> Double {
        histogram.totalCount == 0 ? 0 : Double(histogram.valueAtPercentile(p)) / 1000
    }

    var maxMs: Double { histogram.totalCount == 0 ? 0 : Double(histogram.max) / 1000 }
}
