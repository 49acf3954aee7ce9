import EventLoop
import XCTest

/// `TCPSocket.writeNow` over a real loopback connection, driven turn by turn on the test
/// thread: it writes only when nothing is queued or in flight, never ahead of queued bytes,
/// and within the per-turn budget.
final class SocketWriteNowTests: XCTestCase {
    private final class Pair {
        let loop: Loop
        var server: TCPSocket?
        var client: TCPSocket?
        var received: [UInt8] = []
        private var listener: TCPListener?

        init() throws {
            loop = try Loop()
            listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0) { [unowned self] s in server = s }
            TCPSocket.connect(loop: loop, host: "127.0.0.1", port: listener!.port) { [unowned self] r in
                if case .success(let s) = r { client = s }
            }
            try run { server != nil && client != nil }
            client!.onData = { [unowned self] bytes in received.append(contentsOf: bytes) }
            client!.startReading()
        }

        /// Runs loop turns until `done` (at most ~5 s, then throws).
        func run(until done: () -> Bool) throws {
            let watchdog = LoopTimer(loop: loop)
            for _ in 0..<1000 {
                if done() { return }
                watchdog.start(afterMs: 5) {}
                loop.runOnce()
            }
            watchdog.stop()
            if !done() { throw ClientFailure("condition not reached") }
        }

        func close() {
            server?.close()
            client?.close()
            listener?.close()
            for _ in 0..<10 { loop.runOnce(block: false) }
            loop.close()
        }
    }

    struct ClientFailure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    func testWritesAtOnceWhenIdleAndCountsTheBytes() throws {
        let pair = try Pair()
        defer { pair.close() }
        let server = pair.server!
        let bytes = Array("hello".utf8)
        let written = bytes.withUnsafeBytes { server.writeNow($0) }
        XCTAssertEqual(written, 5)
        XCTAssertEqual(server.bytesWritten, 5)
        XCTAssertFalse(server.hasPendingWrites)
        try pair.run { pair.received.count == 5 }
        XCTAssertEqual(pair.received, bytes)
    }

    func testNeverOvertakesQueuedBytes() throws {
        let pair = try Pair()
        defer { pair.close() }
        let server = pair.server!
        server.enqueue(Array("first-".utf8))  // queued, not flushed yet
        let taken = Array("second".utf8).withUnsafeBytes { server.writeNow($0) }
        XCTAssertEqual(taken, 0, "bytes are queued: a direct write would overtake them")
        XCTAssertEqual(server.bytesWritten, 0)
        server.enqueue(Array("second".utf8))
        server.flush()
        try pair.run { pair.received.count == 12 }
        XCTAssertEqual(String(decoding: pair.received, as: UTF8.self), "first-second")
        // The queue is empty again: direct writes resume.
        XCTAssertEqual(Array("!".utf8).withUnsafeBytes { server.writeNow($0) }, 1)
        try pair.run { pair.received.count == 13 }
    }

    func testStaysWithinThePerTurnBudget() throws {
        let pair = try Pair()
        defer { pair.close() }
        let server = pair.server!
        let saved = TCPSocket.writeBytesPerTurnMax
        TCPSocket.writeBytesPerTurnMax = 1000
        defer { TCPSocket.writeBytesPerTurnMax = saved }
        let block = [UInt8](repeating: 7, count: 800)
        XCTAssertEqual(block.withUnsafeBytes { server.writeNow($0) }, 800)
        XCTAssertEqual(block.withUnsafeBytes { server.writeNow($0) }, 200, "only the turn's remaining budget")
        XCTAssertEqual(block.withUnsafeBytes { server.writeNow($0) }, 0, "budget spent for this turn")
        pair.loop.runOnce(block: false)  // next turn, fresh budget
        XCTAssertEqual(block.withUnsafeBytes { server.writeNow($0) }, 800)
        try pair.run { pair.received.count == 1800 }
    }

    func testTakesNothingFromAClosingSocket() throws {
        let pair = try Pair()
        defer { pair.close() }
        let server = pair.server!
        server.close()
        XCTAssertEqual(Array("late".utf8).withUnsafeBytes { server.writeNow($0) }, 0)
    }
}
