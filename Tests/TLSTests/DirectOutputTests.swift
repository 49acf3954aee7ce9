import XCTest
@testable import TLS

/// `TLSEngine.directOutput` (the record of a one-record write handed straight to the socket
/// while nothing is pending; everything else kept for one socket write) and the read loop
/// that stops without a wasted SSL_read once every fed byte is consumed.
final class DirectOutputTests: XCTestCase {
    private func establishedLink() throws -> Link {
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbA)),
                            serverConfig: fixture.serverConfig())
        link.handshake()
        XCTAssertTrue(link.server.handshakeComplete)
        return link
    }

    /// Stands in for a socket's `writeNow`: counts the offers and keeps what it takes.
    private final class DirectSocket {
        var offers = 0
        var taken: [UInt8] = []
        private let take: (Int) -> Int

        /// `takes`: how many bytes of an offer of n it takes (default: all of them).
        init(on engine: TLSEngine, takes: @escaping (Int) -> Int = { $0 }) {
            take = takes
            engine.directOutput = { [self] record in
                offers += 1
                let count = take(record.count)
                taken.append(contentsOf: record[0..<count])
                return count
            }
        }
    }

    /// Feeds `wire` to the client and returns what it decrypts.
    private func clientDecrypts(_ link: Link, _ wire: [UInt8]) -> [UInt8] {
        wire.withUnsafeBytes { link.client.feed($0) }
        var plaintext: [UInt8] = []
        XCTAssertEqual(link.client.readPlaintext(into: &plaintext), .wantRead)
        return plaintext
    }

    func testRecordsGoToDirectOutputWhenNothingIsPending() throws {
        let link = try establishedLink()
        let socket = DirectSocket(on: link.server)
        let response = pattern(16_384, seed: 3)  // exactly one full record
        XCTAssertEqual(response.withUnsafeBytes { link.server.writePlaintext($0) }, .ok)
        XCTAssertEqual(link.server.pendingCiphertextCount, 0, "everything was taken directly")
        XCTAssertEqual(socket.offers, 1)
        XCTAssertEqual(clientDecrypts(link, socket.taken), response)
    }

    func testRecordsOfALargerWriteAreKeptForOneSocketWrite() throws {
        let link = try establishedLink()
        let socket = DirectSocket(on: link.server)
        let response = pattern(16_385, seed: 12)  // one byte more: two records
        XCTAssertEqual(response.withUnsafeBytes { link.server.writePlaintext($0) }, .ok)
        XCTAssertEqual(socket.offers, 0, "a record per socket write costs more than the copy it saves")
        var wire: [UInt8] = []
        link.server.takeCiphertext(into: &wire)
        XCTAssertEqual(clientDecrypts(link, wire), response)
        // The next one-record write is offered again.
        let small = pattern(700, seed: 13)
        XCTAssertEqual(small.withUnsafeBytes { link.server.writePlaintext($0) }, .ok)
        XCTAssertEqual(socket.offers, 1)
        XCTAssertEqual(link.server.pendingCiphertextCount, 0)
        // The offer ends with that write: a later alert is kept, not offered.
        link.server.shutdown()
        XCTAssertEqual(socket.offers, 1)
        XCTAssertGreaterThan(link.server.pendingCiphertextCount, 0)
    }

    func testHandshakeFlightsAndAlertsAreNotOfferedOneRecordAtATime() throws {
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbA)),
                            serverConfig: fixture.serverConfig())
        let socket = DirectSocket(on: link.server)
        link.handshake()
        XCTAssertTrue(link.server.handshakeComplete)
        link.server.shutdown()
        XCTAssertEqual(socket.offers, 0)
        var wire: [UInt8] = []
        link.server.takeCiphertext(into: &wire)
        wire.withUnsafeBytes { link.client.feed($0) }
        var plaintext: [UInt8] = []
        XCTAssertEqual(link.client.readPlaintext(into: &plaintext), .closed)
    }

    func testWhatDirectOutputLeavesIsKeptInOrderAndLaterRecordsQueueBehindIt() throws {
        let link = try establishedLink()
        // A socket whose kernel buffer takes only 100 bytes of the first offer.
        let socket = DirectSocket(on: link.server) { min(100, $0) }
        let first = pattern(12_000, seed: 4)
        let second = pattern(500, seed: 5)
        XCTAssertEqual(first.withUnsafeBytes { link.server.writePlaintext($0) }, .ok)
        XCTAssertEqual(second.withUnsafeBytes { link.server.writePlaintext($0) }, .ok)
        XCTAssertEqual(socket.offers, 1, "once ciphertext is pending, later records must not overtake it")
        XCTAssertEqual(socket.taken.count, 100)
        var rest: [UInt8] = []
        link.server.takeCiphertext(into: &rest)
        XCTAssertEqual(clientDecrypts(link, socket.taken + rest), first + second)
        // Nothing pending any more: the next record is offered directly again.
        let third = pattern(50, seed: 6)
        socket.taken.removeAll()
        XCTAssertEqual(third.withUnsafeBytes { link.server.writePlaintext($0) }, .ok)
        XCTAssertEqual(socket.offers, 2)
        XCTAssertEqual(link.server.pendingCiphertextCount, 0)
        XCTAssertEqual(clientDecrypts(link, socket.taken), third)
    }

    func testDirectOutputTakingNothingQueuesEverything() throws {
        let link = try establishedLink()
        let socket = DirectSocket(on: link.server) { _ in 0 }  // kernel buffer full
        let response = pattern(10_000, seed: 7)
        XCTAssertEqual(response.withUnsafeBytes { link.server.writePlaintext($0) }, .ok)
        XCTAssertEqual(socket.offers, 1)
        var wire: [UInt8] = []
        link.server.takeCiphertext(into: &wire)
        XCTAssertEqual(clientDecrypts(link, wire), response)
    }

    func testSeveralRecordsInOneFeedAreAllRead() throws {
        let link = try establishedLink()
        let first = pattern(300, seed: 8), second = pattern(200, seed: 9)
        XCTAssertEqual(first.withUnsafeBytes { link.client.writePlaintext($0) }, .ok)
        XCTAssertEqual(second.withUnsafeBytes { link.client.writePlaintext($0) }, .ok)
        var wire: [UInt8] = []
        link.client.takeCiphertext(into: &wire)
        // Both records plus half of a third arrive in one socket read.
        let third = pattern(400, seed: 10)
        XCTAssertEqual(third.withUnsafeBytes { link.client.writePlaintext($0) }, .ok)
        var thirdWire: [UInt8] = []
        link.client.takeCiphertext(into: &thirdWire)
        let half = thirdWire.count / 2
        (wire + thirdWire[0..<half]).withUnsafeBytes { link.server.feed($0) }
        var buffer = [UInt8](repeating: 0, count: 16_384)
        var (count, result) = buffer.withUnsafeMutableBytes { link.server.readPlaintext(into: $0) }
        XCTAssertEqual(result, .wantRead)
        XCTAssertEqual(Array(buffer[0..<count]), first + second)
        thirdWire[half...].withUnsafeBytes { link.server.feed($0) }
        (count, result) = buffer.withUnsafeMutableBytes { link.server.readPlaintext(into: $0) }
        XCTAssertEqual(result, .wantRead)
        XCTAssertEqual(Array(buffer[0..<count]), third)
        XCTAssertEqual(link.server.inboundCount, 0)
    }

    func testCloseNotifyBehindDataInTheSameFeedIsSeen() throws {
        let link = try establishedLink()
        let data = pattern(100, seed: 11)
        XCTAssertEqual(data.withUnsafeBytes { link.client.writePlaintext($0) }, .ok)
        link.client.shutdown()
        var wire: [UInt8] = []
        link.client.takeCiphertext(into: &wire)
        wire.withUnsafeBytes { link.server.feed($0) }
        var plaintext: [UInt8] = []
        XCTAssertEqual(link.server.readPlaintext(into: &plaintext), .closed)
        XCTAssertEqual(plaintext, data)
    }
}
