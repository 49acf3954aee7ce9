import XCTest
@testable import TLS

/// Client and server engines over memory with real certificates.
final class MutualTLSTests: XCTestCase {
    func testTLS13MutualHandshakeCarriesDataBothWays() throws {
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbA)),
                            serverConfig: fixture.serverConfig())
        link.handshake()
        XCTAssertTrue(link.server.handshakeComplete)
        XCTAssertTrue(link.client.handshakeComplete)
        XCTAssertEqual(link.server.protocolVersion, "TLSv1.3")
        XCTAssertEqual(link.server.peerIdentity?.ispb, Fixture.ispbA)
        XCTAssertEqual(link.server.peerIdentity?.subject.hasPrefix("CN=\(Fixture.ispbA)"), true)
        XCTAssertFalse(link.server.peerIdentity?.serialNumberHex.isEmpty ?? true)
        XCTAssertGreaterThan(link.server.peerIdentity?.notAfterEpochSeconds ?? 0, X509Text.nowEpochSeconds())
        XCTAssertEqual(link.client.peerIdentity?.subject.hasPrefix("CN=localhost"), true)
        XCTAssertNil(link.client.peerIdentity?.ispb)

        XCTAssertEqual(link.clientSends(Array("GET /api/v1/out/12345678/stream/start".utf8)), .ok)
        XCTAssertEqual(link.serverReceived, Array("GET /api/v1/out/12345678/stream/start".utf8))
        XCTAssertEqual(link.serverSends(Array("HTTP/1.1 204 No Content".utf8)), .ok)
        XCTAssertEqual(link.clientReceived, Array("HTTP/1.1 204 No Content".utf8))
        XCTAssertEqual(link.serverResult, .wantRead)
        XCTAssertEqual(link.clientResult, .wantRead)
    }

    func testTLS12MutualHandshakeNegotiatesICOMCipherByDefault() throws {
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbB), maxVersion: .tls12),
                            serverConfig: fixture.serverConfig())
        link.handshake()
        XCTAssertTrue(link.server.handshakeComplete)
        XCTAssertEqual(link.server.protocolVersion, "TLSv1.2")
        XCTAssertEqual(link.server.cipher, "ECDHE-RSA-AES128-GCM-SHA256")
        XCTAssertEqual(link.server.peerIdentity?.ispb, Fixture.ispbB)
        XCTAssertEqual(link.clientSends(Array("ping".utf8)), .ok)
        XCTAssertEqual(link.serverReceived, Array("ping".utf8))
    }

    func testPinnedICOMCipherOnBothSides() throws {
        var server = fixture.serverConfig()
        server.cipherList = "ECDHE-RSA-AES128-GCM-SHA256"
        server.maxVersion = .tls12
        var client = fixture.clientConfig(fixture.client(Fixture.ispbA), maxVersion: .tls12)
        client.cipherList = "ECDHE-RSA-AES128-GCM-SHA256"
        let link = try Link(clientConfig: client, serverConfig: server)
        link.handshake()
        XCTAssertTrue(link.server.handshakeComplete)
        XCTAssertEqual(link.client.cipher, "ECDHE-RSA-AES128-GCM-SHA256")
        XCTAssertEqual(link.serverSends(Array("pong".utf8)), .ok)
        XCTAssertEqual(link.clientReceived, Array("pong".utf8))
    }

    func testVersionMismatchFailsAsProtocolViolation() throws {
        var server = fixture.serverConfig()
        server.minVersion = .tls13
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbA), maxVersion: .tls12),
                            serverConfig: server)
        link.handshake()
        XCTAssertEqual(failureKind(link.serverResult), .protocolViolation, failureReason(link.serverResult))
        XCTAssertEqual(failureKind(link.clientResult), .alertReceived, failureReason(link.clientResult))
        XCTAssertFalse(link.server.handshakeComplete)
    }

    func testPlaintextHTTPOnTheTLSPortFails() throws {
        let server = TLSEngine(context: try TLSContext.server(fixture.serverConfig()))
        Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8).withUnsafeBytes { server.feed($0) }
        var plaintext: [UInt8] = []
        let result = server.readPlaintext(into: &plaintext)
        XCTAssertEqual(failureKind(result), .protocolViolation, failureReason(result))
        XCTAssertTrue(plaintext.isEmpty)
        XCTAssertTrue(OpenSSLErrorQueue.drain().isEmpty, "the error queue must be left empty")
        // Sticky: later calls report the same failure without touching OpenSSL.
        XCTAssertEqual(server.readPlaintext(into: &plaintext), result)
        XCTAssertEqual([UInt8(1)].withUnsafeBytes { server.writePlaintext($0) }, result)
    }

    func testRecordsDeliveredOneByteAtATime() throws {
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbA)),
                            serverConfig: fixture.serverConfig(), chunkBytes: 1)
        link.handshake()
        XCTAssertTrue(link.server.handshakeComplete)
        XCTAssertEqual(link.server.peerIdentity?.ispb, Fixture.ispbA)
        let request = pattern(3_000)
        XCTAssertEqual(link.clientSends(request), .ok)
        XCTAssertEqual(link.serverReceived, request)
        let response = pattern(40_000, seed: 3)
        XCTAssertEqual(link.serverSends(response), .ok)
        XCTAssertEqual(link.clientReceived, response)
    }

    func testRecordsDeliveredOneByteAtATimeOverTLS12() throws {
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbA), maxVersion: .tls12),
                            serverConfig: fixture.serverConfig(), chunkBytes: 1)
        link.handshake()
        XCTAssertTrue(link.server.handshakeComplete)
        XCTAssertEqual(link.serverSends(pattern(20_000)), .ok)
        XCTAssertEqual(link.clientReceived, pattern(20_000))
    }

    func testOneMegabyteEachWay() throws {
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbA)),
                            serverConfig: fixture.serverConfig())
        link.handshake()
        let upload = pattern(1 << 20, seed: 1)
        let download = pattern(1 << 20, seed: 2)
        XCTAssertEqual(link.clientSends(upload), .ok)
        XCTAssertEqual(link.serverSends(download), .ok)
        XCTAssertEqual(link.serverReceived.count, upload.count)
        XCTAssertTrue(link.serverReceived == upload)
        XCTAssertEqual(link.clientReceived.count, download.count)
        XCTAssertTrue(link.clientReceived == download)
    }

    func testReadIntoFixedBufferReportsMoreWhenFull() throws {
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbA)),
                            serverConfig: fixture.serverConfig())
        link.handshake()
        let message = pattern(10_000)
        XCTAssertEqual(message.withUnsafeBytes { link.client.writePlaintext($0) }, .ok)
        var ciphertext: [UInt8] = []
        link.client.takeCiphertext(into: &ciphertext)
        ciphertext.withUnsafeBytes { link.server.feed($0) }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var results: [TLSResult] = []
        while true {
            let (count, result) = buffer.withUnsafeMutableBytes { link.server.readPlaintext(into: $0) }
            received += buffer[0..<count]
            results.append(result)
            if result != .ok { break }
        }
        XCTAssertEqual(received, message)
        XCTAssertEqual(results.first, .ok, "a full buffer means: call again")
        XCTAssertEqual(results.last, .wantRead)
    }

    func testPartlyConsumedInputIsCompactedWithoutLosingBytes() throws {
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbA)),
                            serverConfig: fixture.serverConfig())
        link.handshake()
        let first = pattern(200_000, seed: 5)
        let second = pattern(200_000, seed: 9)
        var wire: [UInt8] = []
        XCTAssertEqual(first.withUnsafeBytes { link.client.writePlaintext($0) }, .ok)
        link.client.takeCiphertext(into: &wire)
        wire.withUnsafeBytes { link.server.feed($0) }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<30 {  // read part of it: the fed bytes are partly consumed
            let (count, result) = chunk.withUnsafeMutableBytes { link.server.readPlaintext(into: $0) }
            XCTAssertEqual(result, .ok)
            received += chunk[0..<count]
        }
        XCTAssertGreaterThan(link.server.inboundReadIndex, TLSDefaults.inboundCompactBytesMin)
        wire.removeAll()
        XCTAssertEqual(second.withUnsafeBytes { link.client.writePlaintext($0) }, .ok)
        link.client.takeCiphertext(into: &wire)
        let unread = link.server.inboundCount
        wire.withUnsafeBytes { link.server.feed($0) }
        XCTAssertEqual(link.server.inboundReadIndex, 0, "consumed bytes were compacted away")
        XCTAssertEqual(link.server.inboundCount, unread + wire.count)
        XCTAssertEqual(link.server.readPlaintext(into: &received), .wantRead)
        XCTAssertTrue(received == first + second)
    }

    func testTakeCiphertextSwapsWithAnEmptyBufferAndAppendsToAFullOne() throws {
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbA)),
                            serverConfig: fixture.serverConfig())
        link.handshake()
        XCTAssertEqual([UInt8](repeating: 1, count: 100).withUnsafeBytes { link.server.writePlaintext($0) }, .ok)
        let pending = link.server.pendingCiphertextCount
        XCTAssertGreaterThan(pending, 100)
        var spare: [UInt8] = []
        spare.reserveCapacity(65_536)
        link.server.takeCiphertext(into: &spare)
        XCTAssertEqual(spare.count, pending)
        XCTAssertEqual(link.server.pendingCiphertextCount, 0)
        XCTAssertGreaterThanOrEqual(link.server.outbound.capacity, 65_536, "the engine keeps the caller's capacity")
        XCTAssertEqual([UInt8](repeating: 2, count: 100).withUnsafeBytes { link.server.writePlaintext($0) }, .ok)
        let second = link.server.pendingCiphertextCount
        link.server.takeCiphertext(into: &spare)
        XCTAssertEqual(spare.count, pending + second)
        spare.withUnsafeBytes { link.client.feed($0) }
        var plaintext: [UInt8] = []
        XCTAssertEqual(link.client.readPlaintext(into: &plaintext), .wantRead)
        XCTAssertEqual(plaintext, [UInt8](repeating: 1, count: 100) + [UInt8](repeating: 2, count: 100))
    }

    func testWriteBeforeHandshakeWantsReadThenSucceeds() throws {
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbA)),
                            serverConfig: fixture.serverConfig())
        let early = Array("early".utf8)
        XCTAssertEqual(early.withUnsafeBytes { link.client.writePlaintext($0) }, .wantRead)
        link.pump()
        XCTAssertTrue(link.client.handshakeComplete)
        XCTAssertEqual(link.clientSends(early), .ok)
        XCTAssertEqual(link.serverReceived, early)
    }

    func testCloseNotifyBothWays() throws {
        let link = try Link(clientConfig: fixture.clientConfig(fixture.client(Fixture.ispbA)),
                            serverConfig: fixture.serverConfig())
        link.handshake()
        XCTAssertEqual(link.clientSends(Array("last request".utf8)), .ok)
        link.client.shutdown()
        link.pump()
        XCTAssertEqual(link.serverResult, .closed, "server sees the client's close_notify")
        XCTAssertEqual(link.serverReceived, Array("last request".utf8), "data before close_notify is delivered")
        XCTAssertEqual(Array("more".utf8).withUnsafeBytes { link.client.writePlaintext($0) }, .closed)
        var plaintext: [UInt8] = []
        XCTAssertEqual(link.server.readPlaintext(into: &plaintext), .closed, "closed is sticky")

        link.server.shutdown()
        link.pump()
        XCTAssertEqual(link.clientResult, .closed, "client sees the server's close_notify")
        XCTAssertEqual(Array("late".utf8).withUnsafeBytes { link.server.writePlaintext($0) }, .closed)
    }

    func testShutdownBeforeHandshakeSendsNothing() throws {
        let server = TLSEngine(context: try TLSContext.server(fixture.serverConfig()))
        server.shutdown()
        XCTAssertEqual(server.pendingCiphertextCount, 0)
    }
}
