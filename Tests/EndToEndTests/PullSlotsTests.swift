import Foundation
import TestSupport
import XCTest

/// Thread slots and abandoned streams, through the real binary, mutual TLS and Redis.
final class PullSlotsTests: XCTestCase {
    /// Six streams of one ISPB succeed, the seventh gets 429 with `Retry-After` (seconds until
    /// the earliest lease expires) and `PI-Slots: 6/6`; DELETE frees a slot.
    func testSeventhStreamIsRefusedUntilADeleteFreesASlot() throws {
        let idleSeconds = 4
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1", "--stream-idle-seconds", "\(idleSeconds)"])
        let outbox = Outbox()
        try outbox.send(8, from: hub.client(Pull.a), to: Pull.b)

        var streams: [(client: HubClient, batch: Batch)] = []
        for _ in 0..<6 {
            let client = try hub.client(Pull.b)
            let batch = try client.start(accept: Pull.xml)
            XCTAssertEqual(batch.status, 200)
            XCTAssertEqual(batch.ids.count, 1)
            streams.append((client, batch))
        }
        XCTAssertEqual(Set(streams.flatMap(\.batch.ids)).count, 6, "six different messages, one per stream")
        XCTAssertEqual(try hub.redisSlots(Pull.b).count, 6)

        let seventh = try hub.client(Pull.b)
        let refused = try seventh.start(accept: Pull.xml)
        XCTAssertEqual(refused.status, 429)
        XCTAssertEqual(refused.problemType, "urn:rtpstream:problem:slots-exhausted")
        XCTAssertEqual(refused.response.header("PI-Slots"), "6/6")
        let retryAfter = try XCTUnwrap(refused.response.header("Retry-After").flatMap { Int($0) })
        XCTAssertTrue((1...idleSeconds).contains(retryAfter), "Retry-After \(retryAfter) is not within the idle time")

        // DELETE with the current pointer acknowledges and frees the slot.
        let first = streams.removeFirst()
        XCTAssertEqual(try first.client.delete(XCTUnwrap(first.batch.next)).status, 200)
        // At once: the release went to Redis before the answer, and the next acquire is
        // pipelined behind it on the same connection.
        let again = try seventh.start(accept: Pull.xml)
        XCTAssertEqual(again.status, 200)
        XCTAssertEqual(again.ids.count, 1)
        XCTAssertFalse(streams.flatMap(\.batch.ids).contains(again.ids[0]))
        XCTAssertEqual(try seventh.start(accept: Pull.xml).status, 429, "full again")

        let m = try hub.metrics()
        XCTAssertEqual(m["rtpstream_pull_refused_total{reason=\"slots\"}"], 2)
        XCTAssertEqual(m["rtpstream_pull_slots_in_use{ispb=\"\(Pull.b)\"}"], 6)
        XCTAssertEqual(m["rtpstream_pull_streams_open"], 6)
        for s in streams { XCTAssertEqual(try s.client.delete(XCTUnwrap(s.batch.next)).status, 200) }
        XCTAssertEqual(try seventh.delete(XCTUnwrap(again.next)).status, 200)
        try hub.eventually("every lease is released in Redis") { try hub.redisSlots(Pull.b).isEmpty }
    }

    /// An abandoned stream expires after `--stream-idle-seconds`: its slot frees and its
    /// unacknowledged message goes back to the front of the queue, redelivered to another
    /// stream with the same `PI-ResourceId` before fresher messages. Its pointer then answers
    /// 410.
    func testAbandonedStreamExpiresAndItsBatchIsRedeliveredFirst() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1", "--stream-idle-seconds", "2"])
        let outbox = Outbox()
        let sender = try hub.client(Pull.a)
        let ids = try outbox.send(2, from: sender, to: Pull.b)

        let abandoned = try hub.client(Pull.b)
        let lost = try abandoned.start(accept: Pull.xml)
        XCTAssertEqual(lost.ids, [ids[0]])
        let abandonedStream = try XCTUnwrap(lost.next.flatMap(streamID(ofPointer:)))

        let live = try hub.client(Pull.b)
        var batch = try live.start(accept: Pull.xml)
        XCTAssertEqual(batch.ids, [ids[1]])
        let fresh = try outbox.send(2, from: sender, to: Pull.b)
        XCTAssertEqual(try hub.redisSlots(Pull.b).count, 2)

        // The live stream holds fresh[0] and stays alive by retrying its previous pointer (each
        // retry slides its lease) while the abandoned one expires.
        let p1 = try XCTUnwrap(batch.next)
        batch = try live.pull(p1, accept: Pull.xml)             // acknowledges ids[1]
        XCTAssertEqual(batch.ids, [fresh[0]])
        let p2 = try XCTUnwrap(batch.next)
        let t0 = Pull.nowMs()
        while Pull.nowMs() - t0 < 3500 {                         // retries of p1 keep the stream alive
            XCTAssertEqual(try live.pull(p1, accept: Pull.xml).ids, [fresh[0]])
            usleep(300_000)
        }
        XCTAssertFalse(try hub.redisSlots(Pull.b).contains(String(abandonedStream)), "the abandoned lease was released")
        XCTAssertEqual(try hub.redisSlots(Pull.b).count, 1)

        // The abandoned message comes back first (before fresh[1]), with the same id and body.
        batch = try live.pull(p2, accept: Pull.xml)
        XCTAssertEqual(batch.ids, [ids[0]], "returned to the front of the queue")
        XCTAssertEqual(batch.bodies, [outbox.bodies[ids[0]]!])
        batch = try live.pull(XCTUnwrap(batch.next), accept: Pull.xml)
        XCTAssertEqual(batch.ids, [fresh[1]])

        XCTAssertEqual(try abandoned.pull(XCTUnwrap(lost.next)).status, 410)
        XCTAssertEqual(try abandoned.delete(XCTUnwrap(lost.next)).status, 410)
        let m = try hub.metrics()
        XCTAssertEqual(m["rtpstream_pull_streams_expired_total"], 1)
        XCTAssertGreaterThanOrEqual(m["rtpstream_pull_messages_redelivered_total"] ?? 0, 1)
        XCTAssertEqual(try live.delete(XCTUnwrap(batch.next)).status, 200)
    }

    /// A stream whose requests are refused by the per-ISPB rate limit is alive, not abandoned:
    /// every refused request slides its lease like an answered one. Stream B of the same ISPB
    /// keeps the window full (it retries its previous pointer until refused); right after, A
    /// retries its previous pointer and is refused. Once A has been refused for 1.5 × the idle
    /// time without a single admission, its current pointer must still work (before the fix it
    /// answered 410 and A's batch went to another stream).
    func testRateLimitedRequestsKeepTheStreamAlive() throws {
        let idleMs = 2000.0
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1", "--stream-idle-seconds", "2",
                                             "--rate-limit-per-second", "2"])
        let outbox = Outbox()
        try outbox.send(5, from: hub.client(Pull.a), to: Pull.b)    // 2 for A, 2 for B, 1 left
        let a = try hub.client(Pull.b), b = try hub.client(Pull.b)

        /// A pull that waits out the rate limit (these requests are not what the test is about).
        func admitted(_ client: HubClient, _ path: String) throws -> Batch {
            for _ in 0..<50 {
                let r = try client.pull(path, accept: Pull.xml)
                if r.status != 429 { return r }
                Thread.sleep(forTimeInterval: 0.1)
            }
            throw XCTSkip("never admitted")
        }
        let a1 = try admitted(a, Pull.startPath(Pull.b))
        let a2 = try admitted(a, XCTUnwrap(a1.next))          // a1.next is now A's previous pointer
        XCTAssertEqual(a2.status, 200)
        let b1 = try admitted(b, Pull.startPath(Pull.b))
        let b2 = try admitted(b, XCTUnwrap(b1.next))
        XCTAssertEqual(b2.status, 200)

        let t0 = Pull.nowMs()
        var lastAdmittedA = t0, refusals = 0
        while Pull.nowMs() - lastAdmittedA < idleMs * 1.5 {
            XCTAssertLessThan(Pull.nowMs() - t0, 20_000, "A was admitted too often to test anything")
            if Pull.nowMs() - t0 > 20_000 { return }
            // B fills the window: the same batch again (no change) until refused...
            var rb = try b.pull(XCTUnwrap(b1.next), accept: Pull.xml)
            while rb.status == 200 {
                XCTAssertEqual(rb.ids, b2.ids)
                rb = try b.pull(XCTUnwrap(b1.next), accept: Pull.xml)
            }
            XCTAssertEqual(rb.status, 429)
            // ...and A asks at once: refused, except when the window slid in between.
            let ra = try a.pull(XCTUnwrap(a1.next), accept: Pull.xml)
            if ra.status == 429 {
                XCTAssertEqual(ra.problemType, "urn:rtpstream:problem:rate-limited")
                refusals += 1
            } else {
                XCTAssertEqual(ra.ids, a2.ids, "a retry of the previous pointer: the same batch")
                lastAdmittedA = Pull.nowMs()
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let a3 = try admitted(a, XCTUnwrap(a2.next))
        XCTAssertEqual(a3.status, 200, "A's stream expired although it kept asking")
        XCTAssertEqual(a3.ids.count, 1)
        XCTAssertFalse(a3.ids.contains(a2.ids[0]), "A's acknowledged message came back")
        let m = try hub.metrics()
        XCTAssertEqual(m["rtpstream_pull_streams_expired_total"] ?? 0, 0, "nothing was abandoned")
        XCTAssertGreaterThanOrEqual(m["rtpstream_pull_refused_total{reason=\"rate\"}"] ?? 0, Double(refusals))
    }

    /// A hub that was stalled (here: SIGSTOP for longer than the idle time) must not expire a
    /// stream whose request arrived during the stall: its sweep timer runs before the waiting
    /// request is read, and a late sweep expires nothing. Before the fix the request answered
    /// 410 and the stream's batch went back to the queue.
    func testAStalledHubDoesNotExpireAStreamWhoseRequestWaits() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1", "--stream-idle-seconds", "2"])
        let outbox = Outbox()
        let ids = try outbox.send(3, from: hub.client(Pull.a), to: Pull.b)
        let client = try hub.client(Pull.b)
        let first = try client.start(accept: Pull.xml)
        XCTAssertEqual(first.ids, [ids[0]])
        let pointer = try XCTUnwrap(first.next)

        hub.server.kill(SIGSTOP)
        let answer = Locked<Batch?>(nil)
        let handoff = Handoff(client)
        let waiter = Thread {
            let b = try? handoff.value.pull(pointer, accept: Pull.xml)
            answer.withLock { $0 = b }
        }
        waiter.start()
        Thread.sleep(forTimeInterval: 3.5)          // > idle time: the request waits in the socket
        hub.server.kill(SIGCONT)
        try hub.eventually(timeoutMs: 8000, "the waiting request is answered") { answer.withLock { $0 != nil } }
        let batch = try XCTUnwrap(answer.withLock { $0 })
        XCTAssertEqual(batch.status, 200, "the stream expired while its request waited")
        XCTAssertEqual(batch.ids, [ids[1]])
        let m = try hub.metrics()
        XCTAssertEqual(m["rtpstream_pull_streams_expired_total"] ?? 0, 0)
        XCTAssertGreaterThanOrEqual(m["rtpstream_pull_late_sweeps_total"] ?? 0, 1)
    }
}
