import Foundation
import Glibc
import HTTP
import HTTPClient
import ISO20022
import TestSupport
import XCTest

/// Helpers shared by the Send*Tests: clients per ISPB over mutual TLS (the `HTTPClient`
/// `rtpstream send` uses), pulling a partition empty, the audit log, `rtpstream inspect`.
enum SendSupport {
    static func sendPath(_ ispb: String) -> String { "/api/v1/in/\(ispb)/msgs" }
    static let xml = [HTTPHeader("Content-Type", "application/xml; charset=utf-8")]

    /// The shared fixtures, found by `Paths.fixtures`.
    static let fixtures: String = Paths.fixtures.path

    static func fixture(_ relative: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/\(relative)")))
    }

    /// A keep-alive client acting as `ispb` (its test certificate).
    static func client(_ hub: HubHarness, _ ispb: String, timeoutMs: Int = 20_000) throws -> HTTPClient {
        HTTPClient(endpoint: HTTPEndpoint(tls: true, host: "127.0.0.1", port: hub.apiPort),
                   tls: try TestCertificates.client(ispb), timeoutMs: timeoutMs)
    }

    /// POST one message as `ispb` (path = `pathISPB` or `ispb`).
    static func post(_ client: HTTPClient, _ ispb: String, _ body: [UInt8], headers: [HTTPHeader] = xml) throws -> HTTPClientResponse {
        try client.perform(HTTPClientRequest(method: "POST", path: sendPath(ispb), headers: headers, body: body))
    }

    /// A multipart/mixed body of `parts` (each with its own Content-Type, application/xml by default).
    static func multipart(_ parts: [[UInt8]], types: [String]? = nil) -> (body: [UInt8], headers: [HTTPHeader]) {
        let boundary = "test-boundary-\(UInt64.random(in: 1...UInt64.max))"
        let built = Multipart.build(parts: parts.enumerated().map { i, bytes in
            ([HTTPHeader("Content-Type", types?[i] ?? "application/xml; charset=utf-8")], bytes)
        }, boundary: boundary)
        return (built.chunks.flatMap { $0 }, [HTTPHeader("Content-Type", built.contentType)])
    }

    /// One delivered message.
    struct Delivered: Equatable {
        let id: String
        let body: [UInt8]
    }

    /// Pulls `ispb`'s partition until it is empty (needs `--long-poll-seconds 0`), acknowledging
    /// every batch by following its pointer, and closes the stream. Returns messages in order.
    static func pullAll(_ hub: HubHarness, _ ispb: String, max: Int = 10_000) throws -> [Delivered] {
        let client = try client(hub, ispb)
        defer { client.close() }
        var out: [Delivered] = []
        var path = "/api/v1/out/\(ispb)/stream/start"
        let accept = [HTTPHeader("Accept", "multipart/mixed")]
        while true {
            let r = try client.perform(HTTPClientRequest(method: "GET", path: path, headers: accept))
            guard r.status == 200 || r.status == 204 else {
                throw ClientError("pull \(path): \(r.status) \(String(decoding: r.body, as: UTF8.self))")
            }
            guard let next = r.header("PI-Pull-Next") else { throw ClientError("pull without PI-Pull-Next") }
            if r.status == 204 {
                let closed = try client.perform(HTTPClientRequest(method: "DELETE", path: next))
                guard closed.status == 200 else { throw ClientError("DELETE \(next): \(closed.status)") }
                return out
            }
            if let parts = try r.multipartParts() {
                for p in parts { out.append(Delivered(id: p.header("pi-resourceid") ?? "?", body: p.body)) }
            } else {
                out.append(Delivered(id: r.header("PI-ResourceId") ?? "?", body: r.body))
            }
            guard out.count <= max else { throw ClientError("more than \(max) messages in \(ispb)") }
            path = next
        }
    }

    /// The audit log's lines as JSON objects.
    static func auditLines(_ hub: HubHarness) throws -> [[String: Any]] {
        let path = hub.data.path + "/audit.jsonl"
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return try String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "audit line \($0)")
        }
    }

    static func auditText(_ hub: HubHarness) -> String {
        FileManager.default.contents(atPath: hub.data.path + "/audit.jsonl").map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// Runs `rtpstream` with `arguments`; returns (status, stdout+stderr).
    static func rtpstream(_ arguments: [String]) throws -> (Int32, String) {
        try runCommand(Paths.executable("rtpstream").path, arguments)
    }

    /// One line of `rtpstream inspect quarantine`.
    struct QuarantineLine {
        let sender: String
        let messageId: String
        let reason: String
        let detail: String
    }

    /// The quarantine of a stopped hub, through `rtpstream inspect quarantine`.
    static func quarantine(dataDir: String) throws -> [QuarantineLine] {
        let (status, output) = try rtpstream(["inspect", "quarantine", "--data-dir", dataDir])
        guard status == 0 else { throw ClientError("inspect quarantine: \(status) \(output)") }
        let lines = output.split(separator: "\n").map(String.init)
        guard let header = lines.firstIndex(where: { $0.hasPrefix("offset\ttime") }) else { throw ClientError("inspect: \(output)") }
        return lines[(header + 1)...].map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return QuarantineLine(sender: f[2], messageId: f[3], reason: f[4], detail: f.count > 5 ? f[5] : "")
        }
    }

    /// `rtpstream inspect` of a stopped hub: partition name → (end offset, backlog).
    static func partitions(dataDir: String) throws -> [String: (end: UInt64, backlog: UInt64)] {
        let (status, output) = try rtpstream(["inspect", "--data-dir", dataDir])
        guard status == 0 else { throw ClientError("inspect: \(status) \(output)") }
        var out: [String: (end: UInt64, backlog: UInt64)] = [:]
        for line in output.split(separator: "\n") where line.hasPrefix("local:") {
            let f = line.split(separator: "\t").map(String.init)
            out[f[0]] = (UInt64(f[2])!, UInt64(f[6])!)
        }
        return out
    }

    /// Resident set size of a process in KiB (/proc/<pid>/status VmRSS).
    static func rssKiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else {
            throw ClientError("no VmRSS for \(pid)")
        }
        return kb
    }

    /// Stops the hub with SIGTERM and waits for a clean exit (the store closes, quarantine writes
    /// included); returns its log.
    static func stop(_ hub: HubHarness) throws -> String {
        hub.server.kill(SIGTERM)
        let status = hub.server.waitForExit()
        XCTAssertEqual(status, 0, "hub did not stop cleanly: \(hub.server.stderr.suffix(2000))")
        return hub.server.stderr
    }
}
