import Foundation
import Glibc
import TestSupport
import XCTest

/// The real `rtpstream` binary over loopback: listeners, admin endpoints, configuration errors
/// and SIGTERM shutdown.
final class ServeProcessTests: XCTestCase {
    func testAdminEndpointsAndBenchRouteAndSigterm() throws {
        let data = TempDir()
        let server = try ServerProcess(arguments: ["--insecure-plaintext", "--bench-fixed-response",
                                                   "--data-dir", data.path])
        XCTAssertTrue(server.stderr.contains("PLAINTEXT"), "plaintext mode must be logged loudly")

        XCTAssertEqual(try server.adminGet("/healthz").status, 200)
        XCTAssertEqual(try server.adminGet("/readyz").status, 200)

        let c = try server.client()
        let r = try c.roundTrip("GET /bench/fixed HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.body.count, 8192)
        let bad = try server.client().roundTrip("GET /bench/fixed HTTP/1.1\r\nHost: t\r\nX-Custom: 1\r\n\r\n")
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual(bad.header("content-type"), "application/problem+xml")

        let metrics = try server.adminGet("/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.bodyText.contains("rtpstream_http_requests_total{listener=\"api\",route=\"bench_fixed\",status=\"200\"} 1"),
                      metrics.bodyText)
        XCTAssertTrue(metrics.bodyText.contains("rtpstream_http_request_duration_seconds_bucket"))
        XCTAssertTrue(metrics.bodyText.contains("rtpstream_http_connections_open"))

        // An idle keep-alive connection stays open until SIGTERM; then the process exits 0.
        server.kill(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0, server.stderr)
        XCTAssertTrue(c.waitForClose())
        XCTAssertTrue(server.stderr.contains("stopped cleanly"))
    }

    func testBenchRouteIsAbsentUnlessEnabled() throws {
        let data = TempDir()
        let server = try ServerProcess(arguments: ["--insecure-plaintext", "--data-dir", data.path])
        XCTAssertEqual(try server.client().roundTrip("GET /bench/fixed HTTP/1.1\r\nHost: t\r\n\r\n").status, 404)
        server.kill(SIGINT)
        XCTAssertEqual(server.waitForExit(), 0)
    }

    func testBadConfigurationExitsNonZeroWithOneLine() throws {
        let bin = Paths.executable("rtpstream").path
        let cases: [([String], [String: String], String)] = [
            (["serve", "--insecure-plaintext", "--listen", "nowhere"], [:], "--listen"),
            (["serve", "--insecure-plaintext", "--slots-per-ispb", "0"], [:], "--slots-per-ispb"),
            (["serve", "--insecure-plaintext", "--hub-ispb", "123"], [:], "8-digit"),
            (["serve"], [:], "--tls-cert: required"),
            (["serve", "--insecure-plaintext"], ["RTPSTREAM_LONG_POLL_SECONDZ": "5"], "unknown variable RTPSTREAM_LONG_POLL_SECONDZ"),
            (["serve", "--insecure-plaintext"], ["RTPSTREAM_LONG_POLL_SECONDS": "abc"], "--long-poll-seconds"),
            (["serve", "--no-such-flag"], [:], "no-such-flag"),
        ]
        for (args, env, expected) in cases {
            var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("RTPSTREAM_") }
            for (k, v) in env { environment[k] = v }
            let (status, output) = try runCommand(bin, args, environment: environment)
            XCTAssertNotEqual(status, 0, "\(args) must fail")
            XCTAssertTrue(output.contains(expected), "\(args): \(output)")
            if env.isEmpty || !args.contains("--no-such-flag") {
                let lines = output.split(separator: "\n").filter { !$0.isEmpty }
                XCTAssertLessThanOrEqual(lines.count, args.contains("--no-such-flag") ? 10 : 1, output)
            }
        }
    }

    func testConfigFileAndEnvironmentPrecedence() throws {
        let dir = TempDir()
        let configPath = dir.url.appendingPathComponent("rtpstream.conf").path
        try """
        # development settings
        insecure-plaintext
        bench-fixed-response = true
        data-dir = \(dir.path)/from-file
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
        let server = try ServerProcess(arguments: ["--config", configPath, "--bench-fixed-bytes", "100"],
                                       environment: ["RTPSTREAM_REGION": "sa-east-1"])
        let fixed = try server.client().roundTrip("GET /bench/fixed HTTP/1.1\r\nHost: t\r\n\r\n")
        XCTAssertEqual(fixed.status, 200)
        XCTAssertEqual(fixed.body.count, 100, "--bench-fixed-bytes from the command line")
        XCTAssertTrue(server.stderr.contains("region=sa-east-1"), server.stderr)
        server.kill(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
    }
}
