import MetricsTestKit
import XCTest
@testable import TLS

/// Server contexts count handshakes and failures, and publish certificate dates.
final class MetricsTests: XCTestCase {
    func testHandshakesFailuresAndDatesAreRecorded() throws {
        let metrics = TestMetrics()
        let server = try TLSContext.server(fixture.serverConfig(crl: true), metricsFactory: metrics)

        let client = try TLSContext.client(fixture.clientConfig(fixture.client(Fixture.ispbA)))
        let first = Link(client: client, server: server)
        first.handshake()
        let session = try XCTUnwrap(first.client.resumableSession)
        Link(client: client, server: server, session: session).handshake()
        let revoked = try TLSContext.client(fixture.clientConfig(fixture.test.revokedClient))
        Link(client: revoked, server: server).handshake()

        let full = try metrics.expectCounter("rtpstream_tls_handshakes_total", [("version", "TLSv1.3"), ("resumed", "false")])
        let resumed = try metrics.expectCounter("rtpstream_tls_handshakes_total", [("version", "TLSv1.3"), ("resumed", "true")])
        let refused = try metrics.expectCounter("rtpstream_tls_failures_total", [("reason", "certificate_revoked")])
        XCTAssertEqual(full.totalValue, 1)
        XCTAssertEqual(resumed.totalValue, 1)
        XCTAssertEqual(refused.totalValue, 1)

        let notAfter = try metrics.expectGauge("rtpstream_tls_certificate_not_after_seconds", [("certificate", "server")])
        XCTAssertGreaterThan(notAfter.lastValue ?? 0, Double(X509Text.nowEpochSeconds()))
        let crlNext = try metrics.expectGauge("rtpstream_tls_crl_next_update_seconds")
        XCTAssertGreaterThan(crlNext.lastValue ?? 0, Double(X509Text.nowEpochSeconds()))
    }
}
