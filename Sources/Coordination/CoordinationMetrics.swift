import Metrics

/// Metric handles of `Coordination`, created once.
final class CoordinationMetrics {
    private let slotGranted, slotDenied, slotUnavailable: Counter
    private let rateAllowed, rateLimited, rateUnavailable: Counter
    private let leasesRestored: Counter
    private var failures: [String: Counter] = [:]
    private let dimensions: [(String, String)]

    init(dimensions: [(String, String)]) {
        self.dimensions = dimensions
        func counter(_ label: String, _ extra: [(String, String)]) -> Counter {
            Counter(label: label, dimensions: dimensions + extra)
        }
        slotGranted = counter("rtpstream_coordination_slot_decisions_total", [("decision", "granted")])
        slotDenied = counter("rtpstream_coordination_slot_decisions_total", [("decision", "denied")])
        slotUnavailable = counter("rtpstream_coordination_slot_decisions_total", [("decision", "unavailable")])
        rateAllowed = counter("rtpstream_coordination_rate_decisions_total", [("decision", "allowed")])
        rateLimited = counter("rtpstream_coordination_rate_decisions_total", [("decision", "limited")])
        rateUnavailable = counter("rtpstream_coordination_rate_decisions_total", [("decision", "unavailable")])
        leasesRestored = counter("rtpstream_coordination_leases_restored_total", [])
        for op in ["acquire", "touch", "release", "load_cursor", "rate", "reregister"] {
            failures[op] = counter("rtpstream_coordination_failures_total", [("operation", op)])
        }
    }

    func slot(_ d: SlotDecision) {
        switch d {
        case .granted: slotGranted.increment()
        case .denied: slotDenied.increment()
        case .unavailable: slotUnavailable.increment()
        }
    }

    func rate(_ d: RateDecision) {
        switch d {
        case .allowed: rateAllowed.increment()
        case .limited: rateLimited.increment()
        case .unavailable: rateUnavailable.increment()
        }
    }

    func restored(_ n: Int64) { if n > 0 { leasesRestored.increment(by: n) } }
    func failure(_ operation: String) { failures[operation]!.increment() }
}
