import Foundation
import TestSupport
import XCTest

/// Competing consumers: six streams of one ISPB pulling at once on six threads, while more
/// messages arrive. No message is in two streams' hands at the same time, first deliveries
/// follow log order, everything is delivered and acknowledged exactly once.
final class PullCompetingTests: XCTestCase {
    struct Received {
        let stream: Int
        let ids: [String]
        /// When the request that got the batch was sent, and when the batch arrived.
        let requestedMs: Double
        let receivedMs: Double
    }

    func testSixStreamsNeverShareAMessage() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1"])
        let outbox = Outbox()
        let sender = try hub.client(Pull.a)
        var sent = try outbox.send(100, from: sender, to: Pull.b)
        let total = 160
        let clients = Handoff(try (0..<6).map { _ in try hub.client(Pull.b) })
        let batches = Locked<[Received]>([])
        let delivered = Locked<Int>(0)
        let failures = Locked<[String]>([])
        let deadline = Pull.nowMs() + 30_000

        // Senders and pullers at once: 60 more messages arrive while the streams pull.
        let sending = DispatchSemaphore(value: 0)
        let late = Locked<[String]>([])
        let senderBox = Handoff((sender, outbox))
        Thread.detachNewThread {
            do {
                for _ in 0..<6 {
                    let ids = try senderBox.value.1.send(10, from: senderBox.value.0, to: Pull.b)
                    late.withLock { $0 += ids }
                    usleep(20_000)
                }
            } catch {
                failures.withLock { $0.append("send: \(error)") }
            }
            sending.signal()
        }

        concurrently(6) { i in
            let client = clients.value[i]
            let accept = i % 2 == 0 ? Pull.multipart : Pull.xml   // batches of 10 and of 1
            do {
                var requested = Pull.nowMs()
                var batch = try client.start(accept: accept)
                while Pull.nowMs() < deadline {
                    let received = Pull.nowMs()
                    guard [200, 204].contains(batch.status), let next = batch.next else {
                        failures.withLock { $0.append("stream \(i): \(batch.response)") }
                        return
                    }
                    if batch.status == 200 {
                        let r = Received(stream: i, ids: batch.ids, requestedMs: requested, receivedMs: received)
                        batches.withLock { $0.append(r) }
                        delivered.withLock { $0 += batch.ids.count }
                    } else if delivered.withLock({ $0 }) >= total {
                        XCTAssertEqual(try client.delete(next).status, 200)
                        return
                    }
                    requested = Pull.nowMs()
                    batch = try client.pull(next, accept: accept)
                }
                failures.withLock { $0.append("stream \(i) ran out of time") }
            } catch {
                failures.withLock { $0.append("stream \(i): \(error)") }
            }
        }
        XCTAssertEqual(sending.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(failures.withLock { $0 }, [])
        sent += late.withLock { $0 }
        XCTAssertEqual(sent, outbox.order[Pull.b], "log order is send order (one sender)")

        let all = batches.withLock { $0 }
        let flat = all.flatMap(\.ids)
        XCTAssertEqual(flat.count, total, "each message delivered exactly once (nobody abandoned anything)")
        XCTAssertEqual(Set(flat), Set(sent))
        XCTAssertEqual(Set(all.map(\.stream)).count, 6, "all six streams took part")

        // Fresh batches are contiguous runs of the log, and each stream's batches ascend.
        let position = Dictionary(uniqueKeysWithValues: sent.enumerated().map { ($1, $0) })
        for b in all {
            let p = b.ids.map { position[$0]! }
            XCTAssertEqual(p, Array(p[0]..<p[0] + p.count), "batch \(p) of stream \(b.stream) is not a run of the log")
        }
        for stream in 0..<6 {
            let firsts = all.filter { $0.stream == stream }.map { position[$0.ids[0]]! }
            XCTAssertEqual(firsts, firsts.sorted(), "stream \(stream) went back in the log")
        }
        // Across streams, leases follow the log: a batch that had arrived before another
        // stream's request was even sent was leased first, so it lies earlier in the log.
        for x in all {
            for y in all where y.receivedMs < x.requestedMs {
                XCTAssertLessThan(position[y.ids[0]]!, position[x.ids[0]]!, "first deliveries out of log order")
            }
        }
        let m = try hub.metrics()
        XCTAssertEqual(m["rtpstream_pull_messages_acknowledged_total"], Double(total))
        XCTAssertEqual(m["rtpstream_pull_messages_delivered_total"], Double(total))
        XCTAssertEqual(m["rtpstream_pull_messages_redelivered_total"] ?? 0, 0)
    }
}
