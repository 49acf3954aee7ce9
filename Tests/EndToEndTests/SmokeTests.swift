import Foundation
import ISO20022
import TestSupport
import XCTest

/// The send → pull → acknowledge round trip through the real binary, mutual TLS and Redis.
final class SmokeTests: XCTestCase {
    func testSendThenPullThenAcknowledge() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "1"])
        let sender = try hub.client("12345678")
        let receiver = try hub.client("87654321")
        let gen = Pacs008Generator(runTag: "SMOKE001", addressing: .direct)
        let xml = gen.make(sender: "12345678", recipient: "87654321", sequence: 1, createdAtMillis: 1_700_000_000_000)
        let sent = try sender.send(xml)
        XCTAssertEqual(sent.status, 201, String(decoding: sent.body, as: UTF8.self))
        let id = try XCTUnwrap(sent.header("PI-ResourceId"))

        // The certificate of 12345678 may not act for 87654321.
        XCTAssertEqual(try sender.get("/api/v1/out/87654321/stream/start").status, 403)

        let first = try receiver.get("/api/v1/out/87654321/stream/start")
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.header("PI-ResourceId"), id)
        XCTAssertEqual(first.body, xml)
        let next = try XCTUnwrap(first.header("PI-Pull-Next"))
        let second = try receiver.get(next)
        XCTAssertEqual(second.status, 204, "acknowledged; nothing more")
        XCTAssertEqual(try receiver.delete(XCTUnwrap(second.header("PI-Pull-Next"))).status, 200)
    }
}
