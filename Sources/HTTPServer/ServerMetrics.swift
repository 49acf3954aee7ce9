import HTTP
import Metrics

/// The HTTP layer's metrics (names in docs/operations.md). Handles are cached per label set:
/// swift-metrics lookups take a lock, the hot path must not.
final class ServerMetrics {
    private let listener: String
    private var requestCounters: [Key: Counter] = [:]
    private var latency: [String: Metrics.Timer] = [:]
    private let connectionsOpen: Gauge
    private let connectionsAccepted: Counter
    private let connectionsRevoked: Counter
    private var connectionsRefused: [String: Counter] = [:]
    private var connectionsShed: [String: Counter] = [:]
    private let connectionsUnauthenticated: Gauge
    private var unauthenticatedCount = -1
    private var timeouts: [TimeoutKind: Counter] = [:]
    private var parseErrors: [Int: Counter] = [:]
    private var openCount = 0

    private struct Key: Hashable {
        let route: String
        let status: Int
    }

    init(listener: String) {
        self.listener = listener
        connectionsOpen = Gauge(label: "rtpstream_http_connections_open", dimensions: [("listener", listener)])
        connectionsAccepted = Counter(label: "rtpstream_http_connections_accepted_total", dimensions: [("listener", listener)])
        connectionsRevoked = Counter(label: "rtpstream_http_connections_revoked_total", dimensions: [("listener", listener)])
        connectionsUnauthenticated = Gauge(label: "rtpstream_http_connections_unauthenticated",
                                           dimensions: [("listener", listener)])
    }

    func request(route: String, status: Int, durationNs: UInt64) {
        let key = Key(route: route, status: status)
        let counter: Counter
        if let c = requestCounters[key] {
            counter = c
        } else {
            counter = Counter(label: "rtpstream_http_requests_total",
                              dimensions: [("listener", listener), ("route", route), ("status", String(status))])
            requestCounters[key] = counter
        }
        counter.increment()
        let timer: Metrics.Timer
        if let t = latency[route] {
            timer = t
        } else {
            timer = Metrics.Timer(label: "rtpstream_http_request_duration_seconds",
                                  dimensions: [("listener", listener), ("route", route)])
            latency[route] = timer
        }
        timer.recordNanoseconds(Int64(durationNs))
    }

    func connectionOpened() {
        openCount += 1
        connectionsAccepted.increment()
        connectionsOpen.record(openCount)
    }

    func connectionClosed() {
        openCount -= 1
        connectionsOpen.record(openCount)
    }

    /// Reset at accept; `reason` is "draining" or an `AdmissionLimit`.
    func connectionRefused(reason: String) {
        counter(&connectionsRefused, "rtpstream_http_connections_refused_total", reason).increment()
    }

    /// An unauthenticated connection reset to make room for a new one.
    func connectionShed(reason: String) {
        counter(&connectionsShed, "rtpstream_http_connections_shed_total", reason).increment()
    }

    /// Open connections whose TLS handshake has not completed.
    func unauthenticated(_ count: Int) {
        guard count != unauthenticatedCount else { return }
        unauthenticatedCount = count
        connectionsUnauthenticated.record(count)
    }

    private func counter(_ table: inout [String: Counter], _ label: String, _ reason: String) -> Counter {
        if let c = table[reason] { return c }
        let c = Counter(label: label, dimensions: [("listener", listener), ("reason", reason)])
        table[reason] = c
        return c
    }

    func connectionRevoked() { connectionsRevoked.increment() }

    func timeout(_ kind: TimeoutKind) {
        if timeouts[kind] == nil {
            timeouts[kind] = Counter(label: "rtpstream_http_timeouts_total",
                                     dimensions: [("listener", listener), ("kind", kind.rawValue)])
        }
        timeouts[kind]!.increment()
    }

    func parseError(status: Int) {
        if parseErrors[status] == nil {
            parseErrors[status] = Counter(label: "rtpstream_http_protocol_errors_total",
                                          dimensions: [("listener", listener), ("status", String(status))])
        }
        parseErrors[status]!.increment()
    }
}
