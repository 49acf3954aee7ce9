import CoreMetrics
import Metrics

/// Counters of a server context (created once per context, so a reload re-registers the
/// same labels). Client contexts record nothing.
struct TLSMetrics: Sendable {
    /// `rtpstream_tls_handshakes_total{version, resumed}`
    private let handshakes: [String: Counter]
    /// `rtpstream_tls_failures_total{reason}` with `reason` = `TLSFailure.label`.
    private let failures: [String: Counter]

    static let handshakesLabel = "rtpstream_tls_handshakes_total"
    static let failuresLabel = "rtpstream_tls_failures_total"
    /// `rtpstream_tls_certificate_not_after_seconds{certificate="server"}`, and
    /// `rtpstream_tls_crl_next_update_seconds`: Unix times, set when a context is built.
    static let notAfterLabel = "rtpstream_tls_certificate_not_after_seconds"
    static let crlNextUpdateLabel = "rtpstream_tls_crl_next_update_seconds"

    /// `factory` nil: the process-wide `MetricsSystem` (tests inject their own).
    init(factory: (any MetricsFactory)?, serverNotAfterEpochSeconds: Int64?, crlNextUpdateEpochSeconds: Int64?) {
        let factory = factory ?? MetricsSystem.factory
        var handshakes: [String: Counter] = [:]
        for version in TLSVersion.allCases {
            for resumed in [false, true] {
                handshakes[TLSMetrics.key(version: version.description, resumed: resumed)] = Counter(
                    label: TLSMetrics.handshakesLabel,
                    dimensions: [("version", version.description), ("resumed", String(resumed))], factory: factory)
            }
        }
        var failures: [String: Counter] = [:]
        var labels = CertificateProblem.allCases.map { TLSFailure(.peerCertificate($0), "").label }
        labels += [TLSFailure.Kind.alertReceived, .protocolViolation, .unexpectedEOF, .internal]
            .map { TLSFailure($0, "").label }
        for label in labels {
            failures[label] = Counter(label: TLSMetrics.failuresLabel, dimensions: [("reason", label)], factory: factory)
        }
        self.handshakes = handshakes
        self.failures = failures
        if let serverNotAfterEpochSeconds {
            Gauge(label: TLSMetrics.notAfterLabel, dimensions: [("certificate", "server")], factory: factory)
                .record(serverNotAfterEpochSeconds)
        }
        if let crlNextUpdateEpochSeconds {
            Gauge(label: TLSMetrics.crlNextUpdateLabel, factory: factory).record(crlNextUpdateEpochSeconds)
        }
    }

    func handshakeCompleted(version: String, resumed: Bool) {
        handshakes[TLSMetrics.key(version: version, resumed: resumed)]?.increment()
    }

    func failed(_ failure: TLSFailure) {
        failures[failure.label]?.increment()
    }

    private static func key(version: String, resumed: Bool) -> String { version + (resumed ? "/r" : "/f") }
}
