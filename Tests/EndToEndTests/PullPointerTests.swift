import Foundation
import TestSupport
import XCTest

/// Pointers (`PI-Pull-Next`): retries, stale, forged and foreign tokens, closed streams, and
/// two requests of one pointer at once. Real binary, mutual TLS, Redis.
final class PullPointerTests: XCTestCase {
    /// The previous pointer returns the same batch (same ids, same body, same next pointer) and
    /// acknowledges nothing; an older pointer is 404; DELETE with the previous pointer returns
    /// the batch to the queue; the closed stream answers 410.
    func testPreviousPointerRedeliversAndAcknowledgesNothing() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1"])
        let outbox = Outbox()
        let ids = try outbox.send(3, from: hub.client(Pull.a), to: Pull.b)
        let client = try hub.client(Pull.b)

        let b1 = try client.start(accept: Pull.xml)
        XCTAssertEqual(b1.ids, [ids[0]])
        let p1 = try XCTUnwrap(b1.next)
        XCTAssertTrue(p1.hasPrefix("/api/v1/out/\(Pull.b)/stream/"))
        let b2 = try client.pull(p1, accept: Pull.xml)          // acknowledges ids[0]
        XCTAssertEqual(b2.ids, [ids[1]])
        let p2 = try XCTUnwrap(b2.next)
        XCTAssertNotEqual(p1, p2)

        for _ in 0..<3 {
            let retry = try client.pull(p1, accept: Pull.xml)
            XCTAssertEqual(retry.status, 200)
            XCTAssertEqual(retry.ids, b2.ids)
            XCTAssertEqual(retry.bodies, b2.bodies)
            XCTAssertEqual(retry.bodies[0], outbox.bodies[ids[1]])
            XCTAssertEqual(retry.next, p2, "the same pointer again")
        }
        // Another representation of the retry: the same batch in a multipart body.
        XCTAssertEqual(try client.pull(p1, accept: Pull.multipart).ids, [ids[1]])

        let b3 = try client.pull(p2, accept: Pull.xml)          // acknowledges ids[1]
        XCTAssertEqual(b3.ids, [ids[2]])
        let p3 = try XCTUnwrap(b3.next)
        let older = try client.pull(p1, accept: Pull.xml)
        XCTAssertEqual(older.status, 404)
        XCTAssertEqual(older.problemType, "urn:rtpstream:problem:unknown-pointer")
        XCTAssertEqual(try client.delete(p1).status, 404)

        // DELETE with the previous pointer: ids[2] was never confirmed; it goes back.
        XCTAssertEqual(try client.delete(p2).status, 200)
        XCTAssertEqual(try client.pull(p3).status, 410)
        XCTAssertEqual(try client.pull(p2).status, 410)
        let gone = try client.delete(p3)
        XCTAssertEqual(gone.status, 410)
        let other = try hub.client(Pull.b)
        let again = try other.start(accept: Pull.xml)
        XCTAssertEqual(again.ids, [ids[2]], "nothing acknowledged by retries or the DELETE of the previous pointer")
        XCTAssertEqual(again.bodies[0], outbox.bodies[ids[2]])
        XCTAssertEqual(try other.delete(XCTUnwrap(again.next)).status, 200)
        XCTAssertEqual(try hub.metrics()["rtpstream_pull_messages_acknowledged_total"], 3)
    }

    /// Forged tokens are 404; a token of ISPB A on B's path is 404 for B's certificate and 403
    /// for A's (the certificate check comes first).
    func testForgedAndForeignTokens() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1"])
        let a = try hub.client(Pull.a)
        let b = try hub.client(Pull.b)
        try Outbox().send(1, from: b, to: Pull.a)
        let batch = try a.start()
        XCTAssertEqual(batch.status, 200)
        let token = try XCTUnwrap(batch.token)
        XCTAssertEqual(token.utf8.count, 38)

        var forged = Array(token.utf8)
        forged[20] = forged[20] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        for bad in [String(decoding: forged, as: UTF8.self), String(repeating: "A", count: 38), "x", String(token.dropLast())] {
            let r = try a.pull("/api/v1/out/\(Pull.a)/stream/\(bad)")
            XCTAssertEqual(r.status, 404, bad)
            XCTAssertEqual(r.problemType, "urn:rtpstream:problem:unknown-pointer")
            XCTAssertEqual(try a.delete("/api/v1/out/\(Pull.a)/stream/\(bad)").status, 404, bad)
        }
        XCTAssertEqual(try b.pull("/api/v1/out/\(Pull.b)/stream/\(token)").status, 404, "A's token on B's path")
        XCTAssertEqual(try b.delete("/api/v1/out/\(Pull.b)/stream/\(token)").status, 404)
        let crossed = try a.pull("/api/v1/out/\(Pull.b)/stream/\(token)")
        XCTAssertEqual(crossed.status, 403, "A's certificate on B's path")
        XCTAssertEqual(crossed.problemType, "urn:rtpstream:problem:forbidden-ispb")
        XCTAssertEqual(try b.pull("/api/v1/out/\(Pull.a)/stream/\(token)").status, 403)

        // The real pointer still works: nothing above touched the stream.
        XCTAssertEqual(try a.delete(XCTUnwrap(batch.next)).status, 200)
        XCTAssertGreaterThanOrEqual(try hub.metrics()["rtpstream_pull_unknown_pointers_total"] ?? 0, 10)
    }

    /// Two connections send the same current pointer at once (a client retrying while its
    /// first request is still in flight), many times: both acknowledge the same batch, one
    /// leases the next batch, and both are answered with it and the same next pointer.
    /// Nothing is lost or duplicated and the hub stays up. (Before the fix, the second
    /// request leased over an unacknowledged batch: a precondition failure killed the hub.)
    func testTheSamePointerTwiceAtOnce() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1"])
        let outbox = Outbox()
        let ids = try outbox.send(40, from: hub.client(Pull.a), to: Pull.b)
        let clients = Handoff([try hub.client(Pull.b), try hub.client(Pull.b)])
        var batch = try clients.value[0].start(accept: Pull.xml)
        var received = batch.ids
        var rounds = 0
        while batch.status == 200 {
            let pointer = try XCTUnwrap(batch.next)
            let answers = Locked<[Int: Batch]>([:])
            let failures = Locked<[String]>([])
            concurrently(2) { i in
                do {
                    let b = try clients.value[i].pull(pointer, accept: Pull.xml)
                    answers.withLock { $0[i] = b }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
            XCTAssertEqual(failures.withLock { $0 }, [])
            let (x, y) = try answers.withLock { (try XCTUnwrap($0[0]), try XCTUnwrap($0[1])) }
            XCTAssertEqual(x.status, y.status)
            XCTAssertEqual(x.ids, y.ids)
            XCTAssertEqual(x.next, y.next)
            batch = x
            received += x.ids
            rounds += 1
            if rounds > 60 { break }
        }
        XCTAssertEqual(batch.status, 204)
        XCTAssertEqual(received, ids, "every message once, in log order")
        XCTAssertEqual(try clients.value[0].delete(XCTUnwrap(batch.next)).status, 200)
        XCTAssertEqual(try hub.metrics()["rtpstream_pull_messages_acknowledged_total"], 40)
    }
}
