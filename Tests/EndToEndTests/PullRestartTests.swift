import Foundation
import Glibc
import TestSupport
import XCTest

/// `kill -9` of the hub between pulls: acknowledged messages never come back, unacknowledged
/// ones do with the same ids, and a client's pointer from before the crash keeps working
/// (leases are restored from the store's journal).
final class PullRestartTests: XCTestCase {
    func testAcknowledgedMessagesNeverReturnAfterKill9() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1", "--stream-idle-seconds", "3"])
        let outbox = Outbox()
        let ids = try outbox.send(35, from: hub.client(Pull.a), to: Pull.b)

        // S: acknowledges ids[0..<10] and holds ids[10..<20] (its pointer p2 acknowledges them).
        let s = try hub.client(Pull.b)
        let s1 = try s.start()
        XCTAssertEqual(s1.ids, Array(ids[0..<10]))
        let s2 = try s.pull(XCTUnwrap(s1.next))
        XCTAssertEqual(s2.ids, Array(ids[10..<20]))
        // T: holds ids[20]; U: acknowledges ids[21..<31] and holds ids[31..<35]. Both then
        // abandon their streams.
        let t = try hub.client(Pull.b)
        XCTAssertEqual(try t.start(accept: Pull.xml).ids, [ids[20]])
        let u = try hub.client(Pull.b)
        let u1 = try u.start()
        XCTAssertEqual(u1.ids, Array(ids[21..<31]))
        let u2 = try u.pull(XCTUnwrap(u1.next))
        XCTAssertEqual(u2.ids, Array(ids[31..<35]))
        let acknowledged = Set(ids[0..<10]).union(ids[21..<31])

        usleep(300_000)   // lease records ride the next group commit; nobody waits for them
        let log = try hub.restart(signal: SIGKILL)
        XCTAssertFalse(log.contains("stopped cleanly"), "it was a crash")

        // S continues with the pointer it got before the crash: it acknowledges ids[10..<20].
        // Everything else is leased to the restored T and U, so S waits (204, same pointer)
        // until they expire and their batches come back to the front.
        let s3client = try hub.client(Pull.b)
        var batch = try s3client.pull(XCTUnwrap(s2.next))
        var afterCrash: [String] = []
        var pointer = try XCTUnwrap(batch.next)
        let deadline = Pull.nowMs() + 10_000
        while Pull.nowMs() < deadline {
            if batch.status == 200 { afterCrash += batch.ids }
            XCTAssertTrue([200, 204].contains(batch.status), "\(batch.response)")
            pointer = try XCTUnwrap(batch.next)
            if afterCrash.count >= 5 && batch.status == 204 { break }
            batch = try s3client.pull(pointer)
        }
        XCTAssertEqual(Set(afterCrash).intersection(acknowledged), [], "acknowledged messages came back")
        XCTAssertFalse(afterCrash.contains { ids[10..<20].contains($0) }, "S's acknowledgement with its old pointer held")
        XCTAssertEqual(afterCrash, [ids[20]] + Array(ids[31..<35]), "every unacknowledged message, with its id, lowest first")
        for id in afterCrash { XCTAssertNotNil(outbox.bodies[id]) }

        let m = try hub.metrics()
        XCTAssertEqual(m["rtpstream_pull_streams_restored_total"], 3, "S, T and U came back from the journal")
        XCTAssertEqual(m["rtpstream_pull_streams_expired_total"], 2, "T and U were abandoned")
        XCTAssertEqual(m["rtpstream_pull_backlog_messages{ispb=\"\(Pull.b)\"}"], 0)
        XCTAssertEqual(try s3client.delete(pointer).status, 200)

        // A second crash right after: nothing comes back at all.
        try hub.restart(signal: SIGKILL)
        let fresh = try hub.client(Pull.b)
        let empty = try fresh.start()
        XCTAssertEqual(empty.status, 204, "everything was acknowledged: \(empty.ids)")
        XCTAssertEqual(try fresh.pull(XCTUnwrap(empty.next)).status, 204)
    }
}
