import Coordination
import EventLoop
import Logging
import XCTest

/// Drives a loop on the test thread: `run(until:)` turns it until a condition holds or a
/// deadline passes; a 5 ms ticker keeps `runOnce` from blocking longer than that.
final class LoopHarness {
    let loop: Loop
    private let ticker: LoopTimer

    init() throws {
        loop = try Loop()
        ticker = LoopTimer(loop: loop)
        ticker.start(afterMs: 5, repeatMs: 5) {}
    }

    /// Closes the loop; objects made from it must be closed first.
    func close() {
        ticker.stop()
        loop.close()
    }

    @discardableResult
    func run(until done: () -> Bool, timeoutMs: UInt64 = 5_000) -> Bool {
        let deadline = Loop.hrtimeNs + timeoutMs * 1_000_000
        while !done() {
            if Loop.hrtimeNs > deadline { return false }
            loop.runOnce()
        }
        return true
    }

    /// Turns the loop for `ms` milliseconds.
    func sleep(ms: UInt64) {
        let until = Loop.hrtimeNs + ms * 1_000_000
        run(until: { Loop.hrtimeNs >= until }, timeoutMs: ms + 1_000)
    }

    /// Starts an operation and turns the loop until its completion ran.
    func wait<T>(timeoutMs: UInt64 = 5_000, file: StaticString = #filePath, line: UInt = #line,
                 _ start: (@escaping (T) -> Void) -> Void) throws -> T {
        var result: T?
        start { result = $0 }
        run(until: { result != nil }, timeoutMs: timeoutMs)
        return try XCTUnwrap(result, "no completion within \(timeoutMs) ms", file: file, line: line)
    }
}

func testLogger() -> Logger {
    var logger = Logger(label: "coordination-test")
    logger.logLevel = ProcessInfo.processInfo.environment["RTPSTREAM_TEST_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
    return logger
}

func clientConfig(_ port: Int, timeoutMs: UInt64 = 1_000) -> RedisClientConfig {
    var c = RedisClientConfig(host: "127.0.0.1", port: port)
    c.commandTimeoutMs = timeoutMs
    c.coolDownMsMin = 20
    c.coolDownMsMax = 200
    return c
}

/// A started client whose first probe succeeded.
func connectedClient(_ h: LoopHarness, _ config: RedisClientConfig) throws -> RedisClient {
    let client = RedisClient(loop: h.loop, config: config, logger: testLogger())
    client.start()
    guard h.run(until: { client.state == .closed }) else {
        client.close()
        throw XCTSkip("client did not connect to 127.0.0.1:\(config.port)")
    }
    return client
}
