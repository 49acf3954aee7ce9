import Foundation
import Glibc
import HTTP
import HTTPClient
import ISO20022
import TestSupport
import XCTest

/// Senders choose recipients. With a participant directory an invented recipient is refused
/// before anything is stored; without one, the partitions invented recipients create cannot
/// exhaust the hub's descriptors or metric series, a legitimate send still succeeds at a low
/// descriptor limit, and a restart recovers them all. Real binary, mutual TLS, Redis.
final class RecipientBoundsTests: XCTestCase {
    static let sender = "12345678"

    func testDirectoryRefusesUnknownRecipientsBeforeStoring() throws {
        let work = TempDir("rtpstream-participants")
        let file = work.path + "/participants.txt"
        try "# ISPB lines list participants\n12345678 12345678\n87654321 87654321\n".write(toFile: file, atomically: true, encoding: .utf8)
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "0", "--participants", file])
        let client = try SendSupport.client(hub, Self.sender)
        let generator = Pacs008Generator(runTag: Pacs008Generator.randomRunTag(), addressing: .direct)

        let refused = try SendSupport.post(client, Self.sender, generator.make(sender: Self.sender, recipient: "11112222", sequence: 1))
        XCTAssertEqual(refused.status, 422, String(decoding: refused.body, as: UTF8.self))
        let text = String(decoding: refused.body, as: UTF8.self)
        XCTAssertTrue(text.contains("urn:rtpstream:problem:unknown-recipient"), text)
        XCTAssertTrue(text.contains("11112222 is not a participant"), text)
        XCTAssertEqual(try SendSupport.post(client, Self.sender, generator.make(sender: Self.sender, recipient: "87654321", sequence: 2)).status, 201)

        let partitions = try FileManager.default.contentsOfDirectory(atPath: hub.data.path + "/log/partitions")
        XCTAssertFalse(partitions.contains { $0.hasSuffix("11112222") }, "no partition for the refused recipient: \(partitions)")
        let audit = try SendSupport.auditLines(hub)
        XCTAssertEqual(audit.last?["reason"] as? String, "unknown-recipient")
        XCTAssertEqual(try hub.metrics()["rtpstream_send_rejected_total{reason=\"unknown-recipient\"}"], 1)
    }

    /// Descriptors of `pid` open on segment files.
    static func openSegmentFiles(_ pid: Int32) -> Int {
        let dir = "/proc/\(pid)/fd"
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter {
            ((try? FileManager.default.destinationOfSymbolicLink(atPath: "\(dir)/\($0)")) ?? "").hasSuffix(".log")
        }.count
    }

    static func openDescriptors(_ pid: Int32) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
    }

    func testInventedRecipientsCannotExhaustDescriptorsOrSeries() throws {
        let segmentsMax = 16, seriesMax = 10
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "0", "--open-segments-max", "\(segmentsMax)",
                                             "--ispb-metrics-max", "\(seriesMax)"])
        let client = try SendSupport.client(hub, Self.sender)
        let generator = Pacs008Generator(runTag: Pacs008Generator.randomRunTag(), addressing: .direct)
        var sequence: UInt64 = 0
        func sendToInvented(_ count: Int, from first: Int) throws {
            for start in stride(from: first, to: first + count, by: 10) {
                let parts = (start..<min(start + 10, first + count)).map { n -> [UInt8] in
                    sequence += 1
                    return generator.make(sender: Self.sender, recipient: String(format: "5%07d", n), sequence: sequence)
                }
                let m = SendSupport.multipart(parts)
                let r = try SendSupport.post(client, Self.sender, m.body, headers: m.headers)
                XCTAssertEqual(r.status, 201, String(decoding: r.body.prefix(400), as: UTF8.self))
            }
        }
        let pid = hub.server.process.processIdentifier
        try sendToInvented(300, from: 0)
        XCTAssertLessThanOrEqual(Self.openSegmentFiles(pid), segmentsMax + 2, "segment files stay within --open-segments-max")
        let metrics = try hub.metrics()
        let backlogSeries = metrics.keys.filter { $0.hasPrefix("rtpstream_pull_backlog_messages{ispb=") }
        XCTAssertLessThanOrEqual(backlogSeries.count, seriesMax, "per-ISPB series stay within --ispb-metrics-max")
        XCTAssertGreaterThanOrEqual(metrics["rtpstream_pull_partitions_without_gauges_total"] ?? 0, 290)
        XCTAssertGreaterThan(metrics["logstore_segment_files_closed_total"] ?? 0, 0)

        // A descriptor limit just above what the hub holds now: more invented recipients and a
        // legitimate send still succeed (before: EMFILE, 503, a failed partition until restart).
        let limit = Self.openDescriptors(pid) + 24
        let prlimit = Process()
        prlimit.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        prlimit.arguments = ["--pid", "\(pid)", "--nofile=\(limit):\(limit)"]
        try prlimit.run()
        prlimit.waitUntilExit()
        XCTAssertEqual(prlimit.terminationStatus, 0)
        try sendToInvented(200, from: 300)
        XCTAssertEqual(try SendSupport.post(client, Self.sender, generator.make(sender: Self.sender, recipient: "87654321", sequence: 9999)).status, 201)
        XCTAssertEqual(try hub.server.adminGet("/readyz").status, 200)

        // kill -9 and restart: recovery opens every partition within the same bound.
        client.close()
        try hub.restart()
        let newPid = hub.server.process.processIdentifier
        XCTAssertEqual(try hub.server.adminGet("/readyz").status, 200)
        XCTAssertLessThanOrEqual(Self.openSegmentFiles(newPid), segmentsMax + 2)
        // Every message is back: the backlog over all partitions (refreshed by the pull sweep).
        var backlog = 0.0
        for _ in 0..<50 {
            backlog = try hub.metrics()["rtpstream_pull_backlog_messages_total"] ?? 0
            if backlog == 501 { break }
            usleep(100_000)
        }
        XCTAssertEqual(backlog, 501, "300 + 200 invented recipients and one participant")
        XCTAssertEqual(try SendSupport.pullAll(hub, "87654321").count, 1)
    }
}
