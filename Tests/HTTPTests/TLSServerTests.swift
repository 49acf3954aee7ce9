import EventLoop
import Foundation
import HTTP
import HTTPServer
import TestSupport
import TLS
import XCTest

/// The server core over mutual TLS in-process: ciphertext is written from OpenSSL's buffer
/// straight to the socket while nothing is queued (`TCPSocket.writeNow`) and queued otherwise;
/// these tests check that bytes never overtake each other between the two paths.
final class TLSServerTests: XCTestCase {
    private func tlsServer() throws -> LoopThread {
        let d = try TestCertificates.directory()
        let context = try TLSContext.server(TLSServerConfig(
            certPath: "\(d)/server.pem", keyPath: "\(d)/server-key.pem", clientCAPath: "\(d)/ca.pem"))
        var config = HTTPServerConfig(name: "tls-test", host: "127.0.0.1", port: 0)
        config.limits.allowedHeaders = HTTPLimits.icomAllowedHeaders
        return try LoopThread(config: config, tls: context, routes: testRoutes)
    }

    private func client(_ server: LoopThread) throws -> BlockingTLSClient {
        try BlockingTLSClient(port: server.port, context: TestCertificates.client("12345678"))
    }

    /// 2 MB to a client that is not reading yet: the kernel buffer fills part-way through a
    /// record, the rest of the ciphertext queues on the socket, and the pipelined response
    /// behind it must follow it rather than be written directly ahead of it.
    func testLargeResponseToAStalledReaderArrivesWholeAndBeforeThePipelinedOne() throws {
        let server = try tlsServer()
        defer { server.stop() }
        let c = try client(server)
        try c.send("GET /big HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        // Let the server run into the full kernel buffer before the first byte is read (the
        // outcome must not depend on it: without the pause the queue forms a little later).
        Thread.sleep(forTimeInterval: 0.2)
        let big = try c.readResponse()
        XCTAssertEqual(big.status, 200)
        let expected = (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        XCTAssertEqual(big.body.count, expected.count)
        XCTAssertTrue(big.body == expected, "the 2 MB body arrived altered or out of order")
        let hello = try c.readResponse()
        XCTAssertEqual(hello.status, 200)
        XCTAssertEqual(String(decoding: hello.body, as: UTF8.self), "hello")
        // The connection goes on: the queue drained and direct writes resume.
        XCTAssertEqual(String(decoding: try c.roundTrip("GET /hello HTTP/1.1\r\nHost: a\r\n\r\n").body, as: UTF8.self), "hello")
    }

    /// Many small pipelined responses, each written directly when the socket is idle: every
    /// echo comes back, in order.
    func testPipelinedEchoesComeBackInOrder() throws {
        let server = try tlsServer()
        defer { server.stop() }
        let c = try client(server)
        let count = 100
        var burst = ""
        for i in 0..<count {
            let body = "echo-\(i)"
            burst += "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        }
        try c.send(burst)
        for i in 0..<count {
            let r = try c.readResponse()
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(String(decoding: r.body, as: UTF8.self), "echo-\(i)")
        }
        for i in 0..<50 {
            let body = "again-\(i)"
            let r = try c.roundTrip("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            XCTAssertEqual(String(decoding: r.body, as: UTF8.self), body)
        }
    }
}
