import Foundation
import Glibc
import TestSupport
import XCTest

/// The pull path's metrics on /metrics, with values that match what the test did.
final class PullMetricsTests: XCTestCase {
    func testPullMetricsHaveSaneValues() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "2"])
        let b = "{ispb=\"\(Pull.b)\"}"
        XCTAssertEqual(try hub.metrics()["rtpstream_pull_redis_fallback"], 0)
        try Outbox().send(10, from: hub.client(Pull.a), to: Pull.b)

        // Backlog and lag per partition (lag = age of the oldest unacknowledged message).
        try hub.eventually("backlog and lag of B") {
            let m = try hub.metrics()
            return m["rtpstream_pull_backlog_messages\(b)"] == 10 && (m["rtpstream_pull_lag_seconds\(b)"] ?? 0) >= 1
        }
        XCTAssertLessThan(try hub.metrics()["rtpstream_pull_lag_seconds\(b)"] ?? 99, 10)

        // Six streams (slots), a seventh refused.
        var streams: [(HubClient, String)] = []
        for _ in 0..<6 {
            let c = try hub.client(Pull.b)
            let batch = try c.start(accept: Pull.xml)
            XCTAssertEqual(batch.ids.count, 1)
            streams.append((c, try XCTUnwrap(batch.next)))
        }
        XCTAssertEqual(try hub.client(Pull.b).start().status, 429)
        // A retry of the previous pointer redelivers one message.
        let (c0, p0) = streams[0]
        let next = try c0.pull(p0, accept: Pull.xml)
        XCTAssertEqual(try c0.pull(p0, accept: Pull.xml).ids, next.ids)
        streams[0].1 = try XCTUnwrap(next.next)

        // A long poll waiting (another ISPB, nothing for it).
        let waiter = Handoff(try hub.client(Pull.c))
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? waiter.value.start()
            done.signal()
        }
        try hub.eventually("long poll counted") { try hub.metrics()["rtpstream_pull_long_polls_waiting"] == 1 }
        try hub.eventually("gauges refreshed by the sweep") { try hub.metrics()["rtpstream_pull_leased_messages\(b)"] == 6 }

        var m = try hub.metrics()
        XCTAssertEqual(m["rtpstream_pull_streams_open"], 7)
        XCTAssertEqual(m["rtpstream_pull_slots_in_use\(b)"], 6)
        XCTAssertEqual(m["rtpstream_pull_slots_in_use{ispb=\"\(Pull.c)\"}"], 1)
        XCTAssertEqual(m["rtpstream_pull_refused_total{reason=\"slots\"}"], 1)
        XCTAssertEqual(m["rtpstream_pull_refused_total{reason=\"local_slots\"}"], 0)
        XCTAssertEqual(m["rtpstream_pull_refused_total{reason=\"rate\"}"], 0)
        XCTAssertEqual(m["rtpstream_pull_messages_delivered_total"], 7)
        XCTAssertEqual(m["rtpstream_pull_messages_redelivered_total"], 1)
        XCTAssertEqual(m["rtpstream_pull_messages_acknowledged_total"], 1)
        XCTAssertEqual(m["rtpstream_pull_backlog_messages\(b)"], 9)
        XCTAssertEqual(m["rtpstream_pull_backlog_messages_total"], 9)
        XCTAssertEqual(m["rtpstream_pull_streams_opened_total"], 7)
        XCTAssertEqual(m["rtpstream_pull_redis_fallback"], 0)
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(try hub.metrics()["rtpstream_pull_long_polls_waiting"], 0)

        // Everything acknowledged: no backlog, no lag, streams closed.
        for (c, p) in streams { XCTAssertEqual(try c.delete(p).status, 200) }
        let drain = try hub.client(Pull.b)
        var batch = try drain.start()
        XCTAssertEqual(batch.ids.count, 3)
        batch = try drain.pull(XCTUnwrap(batch.next))   // acknowledges, then waits: 204
        XCTAssertEqual(batch.status, 204)
        XCTAssertEqual(try drain.delete(XCTUnwrap(batch.next)).status, 200)
        try hub.eventually("drained") {
            let m = try hub.metrics()
            return m["rtpstream_pull_backlog_messages\(b)"] == 0 && m["rtpstream_pull_lag_seconds\(b)"] == 0
                && m["rtpstream_pull_slots_in_use\(b)"] == 0
        }

        // Redis away: the fallback shows, and slot decisions are local.
        hub.redis.stop(SIGKILL)
        let local = try hub.client(Pull.a).start()
        XCTAssertEqual(local.status, 204)
        try hub.eventually("fallback") { try hub.metrics()["rtpstream_pull_redis_fallback"] == 1 }
        m = try hub.metrics()
        XCTAssertEqual(m["rtpstream_pull_local_slot_decisions_total"], 1)
        XCTAssertEqual(m["rtpstream_pull_streams_closed_total"], 7)
        XCTAssertEqual(m["rtpstream_pull_messages_acknowledged_total"], 10)
        XCTAssertNotNil(m["rtpstream_redis_breaker_state"])
    }
}
