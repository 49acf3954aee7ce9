import Foundation
import TestSupport
import XCTest

/// Competing consumers: six streams of one ISPB pulling at once on six threads while messages
/// arrive, one of them giving a batch back (DELETE with its previous pointer) and reopening.
/// No message is in two streams' hands at the same time, first deliveries follow log order,
/// the given-back batch is delivered again, everything is acknowledged exactly once.
final class PullCompetingTests: XCTestCase {
    struct Received {
        let stream: Int
        let ids: [String]
        /// When the request that got the batch was sent, when the batch arrived, and when its
        /// holder let go of it (the acknowledging request or the DELETE was sent).
        let requestedMs: Double
        let receivedMs: Double
        var releasedMs = Double.infinity
        var acknowledged = false
    }

    func testSixStreamsNeverHoldTheSameMessageAtOnce() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1"])
        let outbox = Outbox()
        let sender = try hub.client(Pull.a)
        var sent = try outbox.send(100, from: sender, to: Pull.b)
        let total = 160
        let clients = Handoff(try (0..<6).map { _ in try hub.client(Pull.b) })
        let batches = Locked<[Received]>([])
        let acknowledgedCount = Locked<Int>(0)
        let failures = Locked<[String]>([])
        let deadline = Pull.nowMs() + 30_000

        // 60 more messages arrive while the streams pull.
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
            var givenBack = i != 0                                  // stream 0 gives one batch back
            do {
                var requested = Pull.nowMs()
                var batch = try client.start(accept: accept)
                var followed: String?      // the pointer that got this batch (its previous pointer)
                var batchesSeen = 0
                var holding: Int?          // index in `batches` of the batch this stream holds
                func release(acknowledged: Bool) {
                    guard let h = holding else { return }
                    let at = Pull.nowMs()
                    let n = batches.withLock { b -> Int in
                        b[h].releasedMs = at
                        b[h].acknowledged = acknowledged
                        return b[h].ids.count
                    }
                    if acknowledged { acknowledgedCount.withLock { $0 += n } }
                    holding = nil
                }
                while Pull.nowMs() < deadline {
                    let received = Pull.nowMs()
                    guard [200, 204].contains(batch.status), let next = batch.next else {
                        failures.withLock { $0.append("stream \(i): \(batch.response)") }
                        return
                    }
                    if batch.status == 200 {
                        let r = Received(stream: i, ids: batch.ids, requestedMs: requested, receivedMs: received)
                        holding = batches.withLock { $0.append(r); return $0.count - 1 }
                        batchesSeen += 1
                        if !givenBack && batchesSeen == 2, let previous = followed {
                            givenBack = true
                            release(acknowledged: false)
                            XCTAssertEqual(try client.delete(previous).status, 200)
                            requested = Pull.nowMs()
                            batch = try client.start(accept: accept)
                            followed = nil
                            continue
                        }
                    } else if acknowledgedCount.withLock({ $0 }) >= total {
                        XCTAssertEqual(try client.delete(next).status, 200)
                        return
                    }
                    requested = Pull.nowMs()
                    release(acknowledged: true)
                    followed = next
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
        let acked = all.filter(\.acknowledged).flatMap(\.ids)
        XCTAssertEqual(acked.count, total, "each message acknowledged exactly once")
        XCTAssertEqual(Set(acked), Set(sent))
        XCTAssertEqual(Set(all.map(\.stream)).count, 6, "all six streams took part")
        let givenBack = all.filter { !$0.acknowledged }
        XCTAssertEqual(givenBack.count, 1)
        let returnedIDs = Set(givenBack.flatMap(\.ids))

        // Never in two hands at once: the holds of one message do not overlap.
        var holds: [String: [(from: Double, to: Double, stream: Int)]] = [:]
        for b in all { for id in b.ids { holds[id, default: []].append((b.receivedMs, b.releasedMs, b.stream)) } }
        for (id, list) in holds {
            XCTAssertEqual(list.count, returnedIDs.contains(id) ? 2 : 1, "deliveries of \(id)")
            let sorted = list.sorted { $0.from < $1.from }
            for (x, y) in zip(sorted, sorted.dropFirst()) {
                XCTAssertLessThanOrEqual(x.to, y.from, "\(id) held by streams \(x.stream) and \(y.stream) at once")
            }
        }

        // First deliveries: fresh batches are runs of the log, and leases follow the log across
        // streams (a batch that arrived before another stream's request was sent lies earlier).
        let position = Dictionary(uniqueKeysWithValues: sent.enumerated().map { ($1, $0) })
        var first: [String: (Double, Int)] = [:]   // id -> the reception that delivered it first
        for b in all.sorted(by: { $0.receivedMs < $1.receivedMs }) {
            for id in b.ids where first[id] == nil { first[id] = (b.receivedMs, b.stream) }
        }
        let fresh = all.filter { b in b.ids.allSatisfy { first[$0]! == (b.receivedMs, b.stream) } }
        XCTAssertGreaterThan(fresh.count, all.count / 2)
        for b in fresh {
            let p = b.ids.map { position[$0]! }
            XCTAssertEqual(p, Array(p[0]..<p[0] + p.count), "batch \(p) of stream \(b.stream) is not a run of the log")
        }
        for x in fresh {
            for y in fresh where y.receivedMs < x.requestedMs {
                XCTAssertLessThan(position[y.ids[0]]!, position[x.ids[0]]!, "first deliveries out of log order")
            }
        }
        let m = try hub.metrics()
        XCTAssertEqual(m["rtpstream_pull_messages_acknowledged_total"], Double(total))
        XCTAssertEqual(m["rtpstream_pull_messages_delivered_total"], Double(total + returnedIDs.count))
        XCTAssertEqual(m["rtpstream_pull_messages_redelivered_total"], Double(returnedIDs.count))
    }
}
