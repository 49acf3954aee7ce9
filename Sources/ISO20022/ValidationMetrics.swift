import Glibc
import Metrics

/// Metrics of one validator (one thread): outcomes by result and validation time.
///   rtpstream_xml_validations_total{result="accepted"|<RejectCode rawValue>}
///   rtpstream_xml_validation_seconds (Timer)
struct ValidationMetrics {
    static let validationsLabel = "rtpstream_xml_validations_total"
    static let durationLabel = "rtpstream_xml_validation_seconds"

    private let accepted: Counter
    private let rejected: [RejectCode: Counter]
    private let duration: Metrics.Timer

    init() {
        accepted = Counter(label: ValidationMetrics.validationsLabel, dimensions: [("result", "accepted")])
        var rejected: [RejectCode: Counter] = [:]
        for code in RejectCode.allCases {
            rejected[code] = Counter(label: ValidationMetrics.validationsLabel, dimensions: [("result", code.rawValue)])
        }
        self.rejected = rejected
        duration = Metrics.Timer(label: ValidationMetrics.durationLabel)
    }

    func record(_ outcome: ValidationOutcome, nanoseconds: Int64) {
        switch outcome {
        case .accepted: accepted.increment()
        case .rejected(let rejection): rejected[rejection.code]!.increment()
        }
        duration.recordNanoseconds(nanoseconds)
    }

    static func monotonicNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
