/// The routes a run measures separately.
enum Route: String, CaseIterable {
    case start
    case next
    /// `GET next` answered 204 (a long poll that ran out): its latency is the poll, not service.
    case nextEmpty = "next_204"
    case retry
    case delete
    case send
    /// Benchmarks: a fixed GET (static file, `/bench/fixed`).
    case get
}

/// Everything measured in a run, by phase: per-route statistics, plus a per-second time series
/// across phases.
final class Recorder {
    final class Phase {
        let name: String
        let startMs: UInt64
        var endMs: UInt64
        let routes: [Route: RouteStats]

        init(name: String, startMs: UInt64) {
            self.name = name
            self.startMs = startMs
            endMs = startMs
            var r: [Route: RouteStats] = [:]
            for route in Route.allCases { r[route] = RouteStats(name: route.rawValue) }
            routes = r
        }

        var seconds: Double { Double(endMs - startMs) / 1000 }
    }

    /// One second of the run.
    struct Sample {
        let second: Int
        let phase: String
        let routes: [Route: RouteStats.Second]
        let gauges: [String: Double]
    }

    let startMs: UInt64
    private(set) var phases: [Phase] = []
    private(set) var samples: [Sample] = []

    init(startMs: UInt64) {
        self.startMs = startMs
        phases.append(Phase(name: "setup", startMs: startMs))
    }

    var current: Phase { phases[phases.count - 1] }

    func beginPhase(_ name: String, nowMs: UInt64) {
        current.endMs = nowMs
        phases.append(Phase(name: name, startMs: nowMs))
    }

    func end(nowMs: UInt64) { current.endMs = nowMs }

    func phase(_ name: String) -> Phase? { phases.last { $0.name == name } }

    @inline(__always)
    func record(_ route: Route, status: Int, latencyNs: UInt64) {
        current.routes[route]!.record(status: status, latencyNs: latencyNs)
    }

    func failure(_ route: Route, _ label: String) {
        current.routes[route]!.recordFailure(label)
    }

    /// Closes the current second: drains the per-second histograms of the current phase.
    func sample(nowMs: UInt64, gauges: [String: Double]) -> Sample {
        var routes: [Route: RouteStats.Second] = [:]
        for (route, stats) in current.routes { routes[route] = stats.takeSecond() }
        let s = Sample(second: Int((nowMs - startMs + 500) / 1000), phase: current.name, routes: routes, gauges: gauges)
        samples.append(s)
        return s
    }
}
