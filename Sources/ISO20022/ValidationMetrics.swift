import Glibc
import Metrics

/// Metrics of one validator (one thread): outcomes by result and validation time.
///   rtpstream_xml_validations_total{result="accepted"|<RejectCode rawValue>}
///   rtpstream_xml_validation_seconds (Timer)
///   rtpstream_xml_limit_refusals_total{limit=<DocumentPreScan.Limit rawValue>}
struct ValidationMetrics {
    static let validationsLabel = "rtpstream_xml_validations_total"
    static let durationLabel = "rtpstream_xml_validation_seconds"
    static let limitRefusalsLabel = "rtpstream_xml_limit_refusals_total"

    private let accepted: Counter
    private let rejected: [RejectCode: Counter]
    private let duration: Metrics.Timer
    private let limitRefusals: [DocumentPreScan.Limit: Counter]

    init() {
        accepted = Counter(label: ValidationMetrics.validationsLabel, dimensions: [("result", "accepted")])
        var rejected: [RejectCode: Counter] = [:]
        for code in RejectCode.allCases {
            rejected[code] = Counter(label: ValidationMetrics.validationsLabel, dimensions: [("result", code.rawValue)])
        }
        self.rejected = rejected
        duration = Metrics.Timer(label: ValidationMetrics.durationLabel)
        var limitRefusals: [DocumentPreScan.Limit: Counter] = [:]
        for limit in DocumentPreScan.Limit.allCases {
            limitRefusals[limit] = Counter(label: ValidationMetrics.limitRefusalsLabel, dimensions: [("limit", limit.rawValue)])
        }
        self.limitRefusals = limitRefusals
    }

    /// A `document-too-complex` refusal, by the bound it hit.
    func refused(_ limit: DocumentPreScan.Limit) {
        limitRefusals[limit]!.increment()
    }

    func record(_ outcome: ValidationOutcome, nanoseconds: Int64) {
        switch outcome {
        case .accepted: accepted.increment()
        case .rejected(let rejection): rejected[rejection.code]!.increment()
        }
        duration.recordNanoseconds(nanoseconds)
    }

    /// CPU time of the calling thread.
    static func threadCPUNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    static func monotonicNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
