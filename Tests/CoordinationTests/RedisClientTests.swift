@testable import Coordination
import EventLoop
import Glibc
import TestSupport
import XCTest

/// RedisClient against one real redis-server for the class (killed, paused and restarted by
/// some tests; every test starts with a running, empty server).
final class RedisClientTests: XCTestCase {
    nonisolated(unsafe) static var server: RedisServer?

    override class func setUp() {
        super.setUp()
        server = try? RedisServer()
    }

    override class func tearDown() {
        server = nil
        super.tearDown()
    }

    var server: RedisServer!
    var h: LoopHarness!

    override func setUpWithError() throws {
        server = try XCTUnwrap(RedisClientTests.server, "redis-server could not be started")
        server.resume()
        if !server.isRunning { try server.start() }
        try server.command(["SCRIPT", "FLUSH"])
        try server.flushAll()
        h = try LoopHarness()
    }

    override func tearDown() {
        server.resume()
        h.close()
        h = nil
        server = nil
    }

    func send(_ client: RedisClient, _ args: [String]) throws -> Result<RedisReply, RedisFailure> {
        try h.wait { client.send(RedisCommand(args), completion: $0) }
    }

    func testRepliesOfEveryTypeAreCopiedAndBinarySafe() throws {
        let client = try connectedClient(h, clientConfig(server.port))
        defer { client.close() }
        let key: [UInt8] = [0x6b, 0, 0x0d, 0x0a, 0xff]
        let value = (0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 7) } + [0, 0, 13, 10]
        var set = RedisCommand("SET")
        set.append(bytes: key)
        set.append(bytes: value)
        XCTAssertEqual(try h.wait { client.send(set, completion: $0) }, .success(.status("OK")))
        var get = RedisCommand("GET")
        get.append(bytes: key)
        XCTAssertEqual(try h.wait { client.send(get, completion: $0) }, .success(.bulk(value)))
        XCTAssertEqual(try RESPConnection(port: server.port).command([Array("GET".utf8), key]), .bulk(value),
                       "stored under the exact binary key")

        XCTAssertEqual(try send(client, ["GET", "missing"]), .success(.bulk(nil)))
        XCTAssertEqual(try send(client, ["SET", "empty", ""]), .success(.status("OK")))
        XCTAssertEqual(try send(client, ["GET", "empty"]), .success(.bulk([])))
        XCTAssertEqual(try send(client, ["INCRBY", "n", "-5"]), .success(.integer(-5)))
        XCTAssertEqual(try send(client, ["RPUSH", "l", "a", "b"]), .success(.integer(2)))
        XCTAssertEqual(try send(client, ["LRANGE", "l", "0", "-1"]),
                       .success(.array([.bulk(Array("a".utf8)), .bulk(Array("b".utf8))])))
        XCTAssertEqual(try send(client, ["MGET", "l", "missing"]), .success(.array([.bulk(nil), .bulk(nil)])))
        guard case .success(.error(let message)) = try send(client, ["INCR", "l"]) else {
            return XCTFail("INCR of a list must be an error reply")
        }
        XCTAssertTrue(message.hasPrefix("WRONGTYPE"), message)
        XCTAssertEqual(client.state, .closed, "an application error reply is an answer, not a failure")
    }

    func testPipelinedCommandsCompleteInOrder() throws {
        let client = try connectedClient(h, clientConfig(server.port))
        defer { client.close() }
        let count = 2_000
        var seen: [Int64] = []
        var echoes: [[UInt8]] = []
        for i in 0..<count {
            client.send(RedisCommand(["INCR", "counter"])) { result in
                if case .success(.integer(let n)) = result { seen.append(n) }
            }
            client.send(RedisCommand(["ECHO", "payload-\(i)"])) { result in
                if case .success(.bulk(let b?)) = result { echoes.append(b) }
            }
        }
        XCTAssertGreaterThan(client.pendingCount, 0, "sent without waiting")
        XCTAssertTrue(h.run(until: { seen.count == count && echoes.count == count }))
        XCTAssertEqual(seen, (1...Int64(count)).map { $0 })
        XCTAssertEqual(echoes, (0..<count).map { Array("payload-\($0)".utf8) })
        XCTAssertEqual(client.pendingCount, 0)
    }

    func testScriptIsReloadedAfterScriptFlush() throws {
        let client = try connectedClient(h, clientConfig(server.port))
        defer { client.close() }
        let script = RedisScript("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")
        XCTAssertEqual(try server.command(["SCRIPT", "LOAD", script.source]).text, script.sha1,
                       "our SHA-1 names the script as Redis does")
        try server.command(["SCRIPT", "FLUSH"])
        func call() throws -> Result<RedisReply, RedisFailure> {
            var inv = RedisScript.Invocation(keyCount: 1)
            inv.append("k")
            inv.append(bytes: [0, 1, 2])
            return try h.wait { client.run(script, inv, completion: $0) }
        }
        XCTAssertEqual(try call(), .success(.array([.bulk(Array("k".utf8)), .bulk([0, 1, 2]), .integer(1)])),
                       "NOSCRIPT is answered by one EVAL")
        XCTAssertEqual(try server.command(["SCRIPT", "EXISTS", script.sha1]), .array([.integer(1)]),
                       "EVAL cached the script again")
        XCTAssertEqual(try call(), .success(.array([.bulk(Array("k".utf8)), .bulk([0, 1, 2]), .integer(2)])))
        try server.command(["SCRIPT", "FLUSH"])
        XCTAssertEqual(try call(), .success(.array([.bulk(Array("k".utf8)), .bulk([0, 1, 2]), .integer(3)])),
                       "each flush is recovered from, and the script ran exactly once per call")
    }

    func testKilledRedisFailsFastOpensTheBreakerAndRecoversOnRestart() throws {
        let timeoutMs: UInt64 = 200
        let client = try connectedClient(h, clientConfig(server.port, timeoutMs: timeoutMs))
        defer { client.close() }
        var recoveries = 0
        client.onRecovered = { recoveries += 1 }

        // Commands in flight when the server dies, and commands sent right after.
        var results: [(Result<RedisReply, RedisFailure>, UInt64)] = []
        server.stop(SIGKILL)
        for _ in 0..<50 {
            let start = Loop.hrtimeNs
            client.send(RedisCommand(["INCR", "x"])) { results.append(($0, Loop.hrtimeNs - start)) }
        }
        XCTAssertTrue(h.run(until: { results.count == 50 }, timeoutMs: 2_000), "every command completes")
        for (result, ns) in results {
            guard case .failure(let f) = result else { return XCTFail("a dead server answered: \(result)") }
            XCTAssertTrue([.connectionLost, .unavailable, .timeout].contains(f), "\(f)")
            XCTAssertLessThanOrEqual(ns, (timeoutMs + 300) * 1_000_000, "completed within the deadline")
        }
        XCTAssertTrue(h.run(until: { client.state != .closed }, timeoutMs: 2_000))

        // While open: refused at once, without touching the network.
        var immediate: Result<RedisReply, RedisFailure>?
        h.run(until: { client.state == .open })
        client.send(RedisCommand(["PING"])) { immediate = $0 }
        XCTAssertEqual(immediate, .failure(.unavailable), "completed before send returned")

        // Probes keep failing (connection refused) while the server is down.
        h.sleep(ms: 150)
        XCTAssertNotEqual(client.state, .closed)
        XCTAssertEqual(recoveries, 0)

        try server.start()
        XCTAssertTrue(h.run(until: { recoveries == 1 }, timeoutMs: 3_000), "onRecovered after the restart")
        XCTAssertEqual(client.state, .closed)
        XCTAssertEqual(try send(client, ["INCR", "x"]), .success(.integer(1)), "a fresh server, reachable again")
    }

    func testStoppedRedisTimesOutWithinTheDeadlineAndRecoversAfterSIGCONT() throws {
        let timeoutMs: UInt64 = 150
        let client = try connectedClient(h, clientConfig(server.port, timeoutMs: timeoutMs))
        defer { client.close() }
        var recoveries = 0
        client.onRecovered = { recoveries += 1 }
        XCTAssertEqual(try send(client, ["SET", "k", "v"]), .success(.status("OK")))

        server.pause()
        var outcomes: [RedisFailure] = []
        for _ in 0..<10 where client.state == .closed {
            let start = Loop.hrtimeNs
            let result = try send(client, ["GET", "k"])
            let elapsedMs = (Loop.hrtimeNs - start) / 1_000_000
            guard case .failure(let f) = result else { return XCTFail("a stopped server answered: \(result)") }
            outcomes.append(f)
            XCTAssertEqual(f, .timeout)
            XCTAssertGreaterThanOrEqual(elapsedMs, timeoutMs - 1, "not failed before the deadline")
            XCTAssertLessThan(elapsedMs, timeoutMs + 300, "failed at the deadline, not later")
        }
        XCTAssertEqual(outcomes.count, client.config.failuresToOpen, "consecutive timeouts open the breaker")
        XCTAssertNotEqual(client.state, .closed)
        XCTAssertEqual(try send(client, ["GET", "k"]), .failure(.unavailable))

        h.sleep(ms: 300)   // probes connect (the kernel accepts) and time out
        XCTAssertEqual(recoveries, 0)
        server.resume()
        XCTAssertTrue(h.run(until: { recoveries == 1 }, timeoutMs: 3_000), "onRecovered after SIGCONT")
        XCTAssertEqual(try send(client, ["GET", "k"]), .success(.bulk(Array("v".utf8))))
    }

    /// A loop that is late (the test thread sleeps between issuing commands and the next turn,
    /// as a long turn of a busy hub would) does not time out a Redis that answers: the deadline
    /// timer runs first in the turn, flushes and reads, and extends once for the lag.
    func testALaggingLoopDoesNotTimeOutARedisThatAnswers() throws {
        let timeoutMs: UInt64 = 50
        let client = try connectedClient(h, clientConfig(server.port, timeoutMs: timeoutMs))
        defer { client.close() }
        for round in 0..<3 {
            var results: [Result<RedisReply, RedisFailure>] = []
            for i in 0..<5 { client.send(RedisCommand(["SET", "k\(i)", "\(round)"])) { results.append($0) } }
            usleep(UInt32(timeoutMs) * 4 * 1000)                  // the loop does not turn
            // A completion that blocks the loop again, with a command issued inside it.
            client.send(RedisCommand(["GET", "k0"])) { r in
                results.append(r)
                client.send(RedisCommand(["GET", "k4"])) { results.append($0) }
                usleep(UInt32(timeoutMs) * 3 * 1000)
            }
            XCTAssertTrue(h.run(until: { results.count == 7 }, timeoutMs: 5_000))
            XCTAssertEqual(results.filter { $0 == .success(.status("OK")) }.count, 5, "round \(round): \(results)")
            XCTAssertEqual(results.last, .success(.bulk(Array("\(round)".utf8))), "round \(round)")
        }
        XCTAssertEqual(client.state, .closed, "the breaker stayed closed")
        // A stopped Redis still fails at the deadline when the loop is on time.
        server.pause()
        let start = Loop.hrtimeNs
        XCTAssertEqual(try send(client, ["GET", "k"]), .failure(.timeout))
        XCTAssertLessThan((Loop.hrtimeNs - start) / 1_000_000, timeoutMs + 40)
        server.resume()
    }

    func testFailuresAreCountedAndTheBreakerStateIsExposed() throws {
        let client = try connectedClient(h, clientConfig(server.port, timeoutMs: 100))
        defer { client.close() }
        XCTAssertEqual(client.breaker.consecutiveFailures, 0)
        server.pause()
        _ = try send(client, ["PING"])
        XCTAssertEqual(client.breaker.consecutiveFailures, 1, "one timeout, one failure")
        XCTAssertEqual(client.state, .closed, "below the threshold the connection is replaced, the breaker stays closed")
        server.resume()
        XCTAssertEqual(try send(client, ["PING"]), .success(.status("PONG")), "the replacement connection works")
        XCTAssertEqual(client.breaker.consecutiveFailures, 0)
    }

    func testCloseFailsPendingCommandsAndLaterCallsAreUnavailable() throws {
        let client = try connectedClient(h, clientConfig(server.port))
        var results: [Result<RedisReply, RedisFailure>] = []
        for _ in 0..<5 { client.send(RedisCommand(["PING"])) { results.append($0) } }
        client.close()
        XCTAssertEqual(results, Array(repeating: .failure(.unavailable), count: 5), "failed synchronously by close")
        client.send(RedisCommand(["PING"])) { results.append($0) }
        XCTAssertEqual(results.last, .failure(.unavailable))
        h.sleep(ms: 20)
        XCTAssertEqual(results.count, 6, "nothing completes twice")
    }
}

/// AUTH and SELECT on every connection, against a password-protected server.
final class RedisClientAuthTests: XCTestCase {
    func testAuthAndSelectAreSentAndAWrongPasswordNeverCloses() throws {
        let server = try RedisServer(arguments: ["--requirepass", "s3cret"])
        let h = try LoopHarness()
        defer { h.close() }

        var config = clientConfig(server.port)
        config.password = "s3cret"
        config.database = 3
        let client = try connectedClient(h, config)
        let set = try h.wait { client.send(RedisCommand(["SET", "where", "db3"]), completion: $0) }
        client.close()
        XCTAssertEqual(set, .success(.status("OK")))
        let c = try RESPConnection(port: server.port)
        XCTAssertEqual(try c.command([Array("AUTH".utf8), Array("s3cret".utf8)]), .status("OK"))
        XCTAssertEqual(try c.command([Array("SELECT".utf8), Array("3".utf8)]), .status("OK"))
        XCTAssertEqual(try c.command([Array("GET".utf8), Array("where".utf8)]).text, "db3", "written to database 3")

        var wrong = clientConfig(server.port)
        wrong.password = "nope"
        let refused = RedisClient(loop: h.loop, config: wrong, logger: testLogger())
        refused.start()
        h.sleep(ms: 200)
        XCTAssertNotEqual(refused.state, .closed, "a refused AUTH keeps the breaker open")
        let r = try h.wait { refused.send(RedisCommand(["PING"]), completion: $0) }
        XCTAssertEqual(r, .failure(.unavailable))
        refused.close()
    }
}

/// A port nobody listens on: connects are refused.
final class RedisClientRefusedTests: XCTestCase {
    func testRefusedConnectsFailAtOnceNotAtTheDeadline() throws {
        let h = try LoopHarness()
        defer { h.close() }
        var config = clientConfig(freePort(), timeoutMs: 5_000)
        config.coolDownMsMin = 10
        config.coolDownMsMax = 10
        let client = RedisClient(loop: h.loop, config: config, logger: testLogger())
        client.start()
        defer { client.close() }
        // Each failed probe opens the breaker once more; with a 5 s deadline, more than one
        // failed probe within the wait proves the refusal itself was noticed.
        XCTAssertTrue(h.run(until: { client.breaker.openingsSinceClose >= 3 }, timeoutMs: 2_000),
                      "probes against a closed port failed \(client.breaker.openingsSinceClose) times")
        XCTAssertNotEqual(client.state, .closed)
    }
}

extension RedisClientTests {
    func testRedisClockEstimateMatchesRedisTime() throws {
        let client = try connectedClient(h, clientConfig(server.port))
        defer { client.close() }
        let estimate = try XCTUnwrap(client.redisNowMs, "sampled by the probe")
        let reply = try server.command(["TIME"])
        guard case .array(let parts?) = reply, let s = parts.first?.text, let seconds = Int64(s),
              let us = parts.last?.text, let micros = Int64(us) else { return XCTFail("\(reply)") }
        let redisMs = seconds * 1_000 + micros / 1_000
        XCTAssertLessThan(abs(redisMs - Int64(estimate)), 100, "estimate \(estimate), Redis \(redisMs)")
    }
}
