import Foundation
import Glibc
import ISO20022
import TestSupport
import XCTest

/// Retries of a large gzip'd batch (ten messages of 4.15 MB): the loop is not stalled by the
/// compression, a client that pipelines retries and never reads gets no more than one response
/// built for it, is reset after the write-stall time, and the hub's memory stays bounded.
/// Real binary, mutual TLS, Redis. Thresholds are correctness bounds, not benchmarks.
final class PullLargeBatchTests: XCTestCase {
    static let messageBytes = 4_150_000

    /// A valid pacs.008 of about `bytes`: the generator's message with an XML comment of
    /// pseudo-random base64 letters in its prolog (poorly compressible, like signatures).
    static func bigMessage(_ generator: Pacs008Generator, sequence: UInt64, bytes: Int) -> [UInt8] {
        let xml = generator.make(sender: Pull.a, recipient: Pull.b, sequence: sequence)
        let declarationEnd = xml.firstIndex(of: UInt8(ascii: ">"))! + 1
        let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var state = 0x9E37_79B9_7F4A_7C15 &+ sequence
        let padding = max(0, bytes - xml.count - 10)
        var comment = Array("\n<!--".utf8)
        comment.reserveCapacity(padding + 10)
        for i in 0..<padding {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            comment.append(i % 77 == 76 ? 10 : letters[Int(state & 63)])
        }
        comment += Array("-->".utf8)
        return Array(xml[..<declarationEnd]) + comment + Array(xml[declarationEnd...])
    }

    /// Sends eleven big messages to B; B takes the first alone (pointer p1), then follows p1
    /// with multipart (not gzip'd: the first gzip'd answer is a retry's): p1 is now the
    /// previous pointer, whose retries answer the ten others (about 41 MB before
    /// compression). Returns p1 and B's client.
    func setUpLargeBatch(_ hub: HubHarness) throws -> (previous: String, client: HubClient) {
        let generator = Pacs008Generator(runTag: Pacs008Generator.randomRunTag(), addressing: .direct)
        let sender = try hub.client(Pull.a, timeoutMs: 60_000)
        for i in 1...11 {
            let r = try sender.send(Self.bigMessage(generator, sequence: UInt64(i), bytes: Self.messageBytes))
            XCTAssertEqual(r.status, 201, String(decoding: r.body.prefix(400), as: UTF8.self))
        }
        let b = try hub.client(Pull.b, timeoutMs: 60_000)
        let first = try b.start(accept: Pull.xml)
        XCTAssertEqual(first.ids.count, 1)
        let p1 = try XCTUnwrap(first.next)
        let batch = try b.pull(p1, accept: Pull.multipart)
        XCTAssertEqual(batch.ids.count, 10)
        // Bounded by batch count × message maximum (4 MiB by default) plus framing.
        XCTAssertLessThanOrEqual(batch.response.body.count, 10 * ((4 << 20) + 200))
        XCTAssertEqual(batch.bodies.map(\.count).reduce(0, +), 10 * Self.messageBytes, accuracy: 10 * 200)
        return (p1, b)
    }

    static func retryRequest(_ pointer: String) -> String {
        "GET \(pointer) HTTP/1.1\r\nHost: localhost\r\nAccept: multipart/mixed\r\nAccept-Encoding: gzip\r\n\r\n"
    }

    /// Resident memory of a process in bytes (VmRSS).
    static func rss(_ pid: Int32) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return 0 }
        return kb * 1024
    }

    /// 40 pipelined retries of the previous pointer on one connection that never reads: the
    /// hub builds at most one response for it (the rest wait unparsed), resets it after the
    /// write-stall time (2 s here), and its RSS grows by far less than 40 responses. (Before:
    /// every retry was compressed on the loop in one turn, RSS grew by ~1.6 GB and no reset
    /// came.)
    func testNonReadingPipelinedRetrierIsResetAndMemoryStaysBounded() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1", "--write-stall-timeout-seconds", "2"])
        let pid = hub.server.process.processIdentifier
        let (p1, b) = try setUpLargeBatch(hub)
        let rssBefore = Self.rss(pid)

        let stalled = try BlockingTLSClient(port: hub.apiPort, context: TestCertificates.client(Pull.b), timeoutMs: 60_000)
        try stalled.send(String(repeating: Self.retryRequest(p1), count: 40))
        let t0 = Pull.nowMs()
        var peak = rssBefore
        var resetAfterMs: Double?
        while Pull.nowMs() - t0 < 30_000 {
            peak = max(peak, Self.rss(pid))
            if let m = try? hub.metrics(),
               (m["rtpstream_http_timeouts_total{listener=\"api\",kind=\"write-stall\"}"] ?? 0) >= 1 {
                resetAfterMs = Pull.nowMs() - t0
                break
            }
            usleep(100_000)
        }
        let growth = peak - rssBefore
        print("non-reading retrier: reset after \(resetAfterMs.map { "\(Int($0)) ms" } ?? "none within 30 s"), "
              + "RSS \(rssBefore >> 20) MiB -> peak \(peak >> 20) MiB (+\(growth >> 20) MiB)")
        let reset = try XCTUnwrap(resetAfterMs, "the write-stall reset never came")
        XCTAssertLessThan(reset, 15_000, "reset within the write-stall time plus building one response")
        XCTAssertLessThan(growth, 400 << 20, "memory of an unread connection is bounded (one response, not 40)")
        // The connection is gone (reset), and the stream still answers its retry.
        var answered = 0
        do { while answered < 40 { _ = try stalled.readResponse(); answered += 1 } } catch {}
        XCTAssertLessThan(answered, 40, "the stalled connection was reset")
        let again = try b.pull(p1, accept: Pull.multipart, gzip: true)
        XCTAssertEqual(again.ids.count, 10)
    }

    /// While B retries its large gzip'd batch on two connections (reading every answer), C's
    /// pulls are answered promptly: the compression does not run on the loop thread, and it
    /// runs once for the four retries. (Before: each retry held the loop for the whole
    /// compression, > 1 s.)
    func testAnotherPSPStaysFastWhileOneRetriesALargeGzipBatch() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1"])
        let (p1, b) = try setUpLargeBatch(hub)
        try Outbox().send(2, from: hub.client(Pull.a), to: Pull.c)
        let c = try hub.client(Pull.c)
        let c1 = try c.start(accept: Pull.xml)
        let c2 = try c.pull(XCTUnwrap(c1.next), accept: Pull.xml)
        XCTAssertEqual(c2.status, 200)
        let cPrevious = try XCTUnwrap(c1.next)

        // Two connections of B retry at once (the second request finds the compression in
        // flight and waits for it), then once more each (answered from the kept body).
        let retriers = Handoff([b, try hub.client(Pull.b, timeoutMs: 60_000)])
        let done = Locked(0)
        let retryTimes = Locked<[Double]>([])
        let failures = Locked<[String]>([])
        for i in 0..<2 {
            Thread {
                for _ in 0..<2 {
                    do {
                        let r = try retriers.value[i].pull(p1, accept: Pull.multipart, gzip: true)
                        if r.ids.count != 10 { failures.withLock { $0.append("retry answered \(r.status) with \(r.ids.count)") } }
                        retryTimes.withLock { $0.append(r.elapsedMs) }
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                }
                done.withLock { $0 += 1 }
            }.start()
        }
        var latencies: [Double] = []
        while done.withLock({ $0 }) < 2 {
            let r = try c.pull(cPrevious, accept: Pull.xml)   // a retry: answered at once
            XCTAssertEqual(r.status, 200)
            latencies.append(r.elapsedMs)
            usleep(20_000)
        }
        XCTAssertEqual(failures.withLock { $0 }, [])
        // Compressed once (on a worker), reused by the three other retries.
        let m = try hub.metrics()
        XCTAssertEqual(m["rtpstream_pull_gzip_worker_total"], 1)
        XCTAssertEqual(m["rtpstream_pull_gzip_reused_total"], 3)
        let sorted = latencies.sorted()
        let worst = sorted.last ?? 0
        print("other PSP during 4 large gzip retries: \(latencies.count) pulls, median \(sorted.isEmpty ? 0 : sorted[sorted.count / 2]) ms, "
              + "max \(worst) ms; retries took \(retryTimes.withLock { $0 }.map { Int($0) }) ms")
        XCTAssertGreaterThan(latencies.count, 3)
        XCTAssertLessThan(worst, 500, "another PSP's pull is not held behind a large compression")
    }
}
