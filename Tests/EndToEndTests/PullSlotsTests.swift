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
}
