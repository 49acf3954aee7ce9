import Foundation
import Glibc
import HTTP
import HTTPClient
import ISO20022
import TestSupport
import XCTest

/// Idempotency across restarts, `kill -9` during a send burst, back-pressure: the real binary,
/// real Redis, mutual TLS, the same data directory across restarts.
final class SendDurabilityTests: XCTestCase {
    static let sender = "12345678"
    static let recipient = "87654321"

    func testSameMessageGetsTheSameIdAcrossSIGTERMAndSIGKILLRestarts() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "0"])
        let generator = Pacs008Generator(runTag: "RESTART1", addressing: .direct)
        let a = generator.make(sender: Self.sender, recipient: Self.recipient, sequence: 1)
        let first = try SendSupport.post(try SendSupport.client(hub, Self.sender), Self.sender, a)
        XCTAssertEqual(first.status, 201)
        let id = try XCTUnwrap(first.header("PI-ResourceId"))

        for signal in [SIGTERM, SIGKILL] {
            try hub.restart(signal: signal)
            let again = try SendSupport.post(try SendSupport.client(hub, Self.sender), Self.sender, a)
            XCTAssertEqual(again.status, 201, "after signal \(signal)")
            XCTAssertEqual(again.header("PI-ResourceId"), id, "after signal \(signal)")
        }
        let b = generator.make(sender: Self.sender, recipient: Self.recipient, sequence: 2)
        let other = try SendSupport.post(try SendSupport.client(hub, Self.sender), Self.sender, b)
        XCTAssertEqual(other.status, 201)
        XCTAssertNotEqual(other.header("PI-ResourceId"), id)
        XCTAssertEqual(try SendSupport.pullAll(hub, Self.recipient), [.init(id: id, body: a), .init(id: try XCTUnwrap(other.header("PI-ResourceId")), body: b)])

        // Acknowledged, then re-sent after another crash: same id, not delivered again.
        try hub.restart(signal: SIGKILL)
        XCTAssertEqual(try SendSupport.post(try SendSupport.client(hub, Self.sender), Self.sender, a).header("PI-ResourceId"), id)
        XCTAssertEqual(try SendSupport.pullAll(hub, Self.recipient), [])
    }

    /// Ids answered 201 by one sender thread.
    final class Acknowledged: @unchecked Sendable {
        private let lock = NSLock()
        private var ids: [UInt64: String] = [:]
        private var failures: [String] = []

        func record(_ sequence: UInt64, _ id: String) { lock.withLock { ids[sequence] = id } }
        func fail(_ why: String) { lock.withLock { failures.append(why) } }
        var count: Int { lock.withLock { ids.count } }
        var snapshot: [UInt64: String] { lock.withLock { ids } }
        var errors: [String] { lock.withLock { failures } }
    }

    func testKillDashNineDuringASendBurstLosesNoMessageThatGot201() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "0"])
        let generator = Pacs008Generator(runTag: "KILLBURS", addressing: .direct)
        let threads = 3
        let perThread: UInt64 = 100
        let messages = (1...(UInt64(threads) * perThread)).map {
            generator.make(sender: Self.sender, recipient: Self.recipient, sequence: $0)
        }
        let acknowledged = Acknowledged()
        let context = try TestCertificates.client(Self.sender)
        let port = hub.apiPort
        let done = DispatchGroup()
        for t in 0..<threads {
            done.enter()
            let range = (UInt64(t) * perThread + 1)...(UInt64(t + 1) * perThread)
            let mine = range.map { ($0, messages[Int($0) - 1]) }
            Thread.detachNewThread {
                defer { done.leave() }
                let client = HTTPClient(endpoint: HTTPEndpoint(tls: true, host: "127.0.0.1", port: port), tls: context, timeoutMs: 10_000)
                for (sequence, xml) in mine {
                    do {
                        let r = try client.perform(HTTPClientRequest(method: "POST", path: SendSupport.sendPath(Self.sender),
                                                                     headers: SendSupport.xml, body: xml))
                        guard r.status == 201, let id = r.header("PI-ResourceId") else {
                            acknowledged.fail("#\(sequence): \(r.status)")
                            return
                        }
                        acknowledged.record(sequence, id)
                    } catch {
                        return   // the hub is gone: stop this thread's burst
                    }
                }
            }
        }
        // Mid-burst: at least a third acknowledged, not all.
        let deadline = Date().addingTimeInterval(60)
        while acknowledged.count < messages.count / 3 && Date() < deadline { usleep(1000) }
        try hub.restart(signal: SIGKILL)
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(acknowledged.errors, [])
        let confirmed = acknowledged.snapshot
        XCTAssertGreaterThanOrEqual(confirmed.count, messages.count / 3)
        XCTAssertLessThan(confirmed.count, messages.count, "the kill came mid-burst")

        // Every 201 is delivered, by id and content; nothing twice.
        let delivered = try SendSupport.pullAll(hub, Self.recipient)
        XCTAssertEqual(Set(delivered.map(\.id)).count, delivered.count, "a message was delivered twice")
        let byId = Dictionary(delivered.map { ($0.id, $0.body) }, uniquingKeysWith: { a, _ in a })
        for (sequence, id) in confirmed {
            XCTAssertEqual(byId[id], messages[Int(sequence) - 1], "message #\(sequence) (\(id)) got 201 but was not delivered intact")
        }

        // The whole burst again: the confirmed ones keep their ids, the rest are stored now, and
        // the partition ends up holding each message exactly once.
        let client = try SendSupport.client(hub, Self.sender)
        var ids: [String] = []
        for (i, xml) in messages.enumerated() {
            let r = try SendSupport.post(client, Self.sender, xml)
            XCTAssertEqual(r.status, 201)
            let id = try XCTUnwrap(r.header("PI-ResourceId"))
            if let c = confirmed[UInt64(i + 1)] { XCTAssertEqual(id, c, "#\(i + 1) changed id after the crash") }
            ids.append(id)
        }
        let rest = try SendSupport.pullAll(hub, Self.recipient)
        XCTAssertEqual(Set(delivered.map(\.id)).intersection(rest.map(\.id)), [], "an acknowledged message was delivered again")
        XCTAssertEqual(Set(delivered.map(\.id) + rest.map(\.id)), Set(ids))
        XCTAssertEqual(delivered.count + rest.count, messages.count, "every message stored exactly once")
    }

    func testBacklogOverItsLimitGets429WithRetryAfterUntilItIsPulled() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "0", "--partition-backlog-max", "3"])
        let client = try SendSupport.client(hub, Self.sender)
        let generator = Pacs008Generator(runTag: "BACKPRES", addressing: .direct)
        func make(_ i: UInt64, to recipient: String = Self.recipient) -> [UInt8] {
            generator.make(sender: Self.sender, recipient: recipient, sequence: i)
        }
        for i in 1...3 {
            XCTAssertEqual(try SendSupport.post(client, Self.sender, make(UInt64(i))).status, 201)
        }
        let refused = try SendSupport.post(client, Self.sender, make(4))
        XCTAssertEqual(refused.status, 429)
        XCTAssertEqual(refused.problem?.slug, "recipient-backlog-full")
        XCTAssertGreaterThanOrEqual(Int(refused.header("Retry-After") ?? "") ?? 0, 1)

        let m = SendSupport.multipart([make(5), make(6, to: "20000001")])
        let mixed = try SendSupport.post(client, Self.sender, m.body, headers: m.headers)
        XCTAssertEqual(mixed.status, 207, "another recipient is not held back")
        XCTAssertEqual(try XCTUnwrap(try mixed.multipartParts()).map { $0.header("pi-part-status") }, ["429", "201"])
        XCTAssertNotNil(mixed.header("Retry-After"), "a 207 with refused parts says when to retry them")
        let allFull = SendSupport.multipart([make(7), make(8)])
        let full = try SendSupport.post(client, Self.sender, allFull.body, headers: allFull.headers)
        XCTAssertEqual(full.status, 429)
        XCTAssertNotNil(full.header("Retry-After"))

        // Back-pressure is not a rejection: nothing audited; pulling frees the backlog.
        XCTAssertEqual(try SendSupport.auditLines(hub).count, 0)
        XCTAssertEqual(try SendSupport.pullAll(hub, Self.recipient).count, 3)
        XCTAssertEqual(try SendSupport.post(client, Self.sender, make(4)).status, 201)
        XCTAssertEqual(try SendSupport.pullAll(hub, Self.recipient).count, 1)

        // The parts of one request count against the limit as they are admitted.
        let five = SendSupport.multipart((10...14).map { make($0) })
        let partly = try SendSupport.post(client, Self.sender, five.body, headers: five.headers)
        XCTAssertEqual(partly.status, 207)
        XCTAssertEqual(try XCTUnwrap(try partly.multipartParts()).map { $0.header("pi-part-status") }, ["201", "201", "201", "429", "429"])
        XCTAssertEqual(try SendSupport.pullAll(hub, Self.recipient).count, 3)
    }

    func testConcurrentSendersCannotOvershootTheBacklogLimit() throws {
        let limit = 20
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "0", "--partition-backlog-max", "\(limit)"])
        let context = try TestCertificates.client(Self.sender)
        let port = hub.apiPort
        let stored = Acknowledged()
        let done = DispatchGroup()
        for t in 0..<4 {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                let generator = Pacs008Generator(runTag: "OVERSHT\(t)", addressing: .direct)
                let client = HTTPClient(endpoint: HTTPEndpoint(tls: true, host: "127.0.0.1", port: port), tls: context, timeoutMs: 10_000)
                for batch in 0..<3 {
                    let parts = (1...10).map { generator.make(sender: Self.sender, recipient: Self.recipient, sequence: UInt64(batch * 10 + $0)) }
                    let m = SendSupport.multipart(parts)
                    guard let r = try? client.perform(HTTPClientRequest(method: "POST", path: SendSupport.sendPath(Self.sender), headers: m.headers, body: m.body)),
                          let answer = try? r.multipartParts() else { return stored.fail("request failed") }
                    for (i, part) in answer.enumerated() where part.header("pi-part-status") == "201" {
                        stored.record(UInt64(t * 1000 + batch * 10 + i), part.header("pi-resourceid") ?? "")
                    }
                }
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(stored.errors, [])
        XCTAssertEqual(stored.count, limit, "120 messages offered concurrently, exactly the limit admitted")
        XCTAssertEqual(try SendSupport.pullAll(hub, Self.recipient).count, limit)
    }
}
