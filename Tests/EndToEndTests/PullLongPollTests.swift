import Foundation
import TestSupport
import XCTest

/// Long polls: woken by the append itself, 204 with the same pointer when nothing arrives.
final class PullLongPollTests: XCTestCase {
    func testLongPollWakesOnAppendAndTimesOutWith204() throws {
        let longPollMs = 2000.0
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "2"])
        let outbox = Outbox()
        let sender = try hub.client(Pull.a)
        let receiver = Handoff(try hub.client(Pull.b))

        // Nothing stored: the start waits; the send wakes it.
        let answered = Locked<(batch: Batch?, atMs: Double)>((nil, 0))
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let b = try? receiver.value.start(accept: Pull.xml)
            answered.withLock { $0 = (b, Pull.nowMs()) }
            done.signal()
        }
        try hub.eventually("the start is held") { try hub.metrics()["rtpstream_pull_long_polls_waiting"] == 1 }
        usleep(200_000)
        let ids = try outbox.send(1, from: sender, to: Pull.b)
        let sentMs = Pull.nowMs()
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        let (batch, atMs) = answered.withLock { $0 }
        let first = try XCTUnwrap(batch)
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.ids, ids)
        XCTAssertGreaterThan(first.elapsedMs, 200, "it did wait")
        XCTAssertLessThan(atMs - sentMs, 200, "woken by the append, not by a timer or a poll loop")
        XCTAssertLessThan(first.elapsedMs, longPollMs)
        XCTAssertEqual(try hub.metrics()["rtpstream_pull_long_polls_waiting"], 0)

        // Nothing more: 204 after the long-poll time, with the same pointer again.
        let pointer = try XCTUnwrap(first.next)
        let empty = try receiver.value.pull(pointer, accept: Pull.xml)   // acknowledges ids[0]
        XCTAssertEqual(empty.status, 204)
        XCTAssertGreaterThanOrEqual(empty.elapsedMs, longPollMs - 50)
        XCTAssertLessThan(empty.elapsedMs, longPollMs + 1500)
        let same = try XCTUnwrap(empty.next)
        let again = try receiver.value.pull(same, accept: Pull.xml)
        XCTAssertEqual(again.status, 204)
        XCTAssertEqual(again.next, same, "empty answers do not advance the pointer")

        // A message sent during the next long poll is answered at once, after which the
        // pointer moves on; the acknowledged message never came back.
        let done2 = DispatchSemaphore(value: 0)
        let answered2 = Locked<Batch?>(nil)
        Thread.detachNewThread {
            let b = try? receiver.value.pull(same, accept: Pull.xml)
            answered2.withLock { $0 = b }
            done2.signal()
        }
        try hub.eventually("the pull is held") { try hub.metrics()["rtpstream_pull_long_polls_waiting"] == 1 }
        let more = try outbox.send(1, from: sender, to: Pull.b)
        XCTAssertEqual(done2.wait(timeout: .now() + 5), .success)
        let second = try XCTUnwrap(answered2.withLock { $0 })
        XCTAssertEqual(second.ids, more)
        XCTAssertLessThan(second.elapsedMs, longPollMs)
        XCTAssertEqual(try receiver.value.delete(XCTUnwrap(second.next)).status, 200)
    }
}
