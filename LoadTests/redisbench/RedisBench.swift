import ArgumentParser
import Coordination
import EventLoop
import Foundation
import Glibc
import Logging
import TestSupport

/// `redisbench`: pipelined Coordination operations from one loop against a local redis-server it
/// starts itself, with plain PINGs at the same concurrency as the reference, in alternating
/// rounds of one run. Reports operations/s and redis-server CPU per 10k operations (utime +
/// stime from /proc/<pid>/stat, before and after each round).
@main
struct RedisBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redisbench",
        abstract: "Coordination.touch (and checkRate) vs PING: ops/s and redis-server CPU per 10k ops.")

    @Option(help: "Operations per round and kind.") var operations = 200_000
    @Option(help: "Operations in flight (pipelined on the one connection).") var concurrency = 256
    @Option(help: "Rounds per kind (alternating; the median is reported).") var rounds = 3
    @Option(help: "Distinct ISPBs (6 streams each) the operations cycle over.") var ispbs = 200
    @Option(help: "Cursor bytes stored by each touch.") var cursorBytes = 48
    @Option(help: "Kinds to run, comma-separated: ping, touch, rate, acquire.") var kinds = "ping,touch,rate"

    func validate() throws {
        guard operations >= 1_000, concurrency >= 1, rounds >= 1, ispbs >= 1, cursorBytes >= 0 else {
            throw ValidationError("operations >= 1000, concurrency, rounds and ispbs >= 1")
        }
        for k in kinds.split(separator: ",") where Kind(rawValue: String(k)) == nil {
            throw ValidationError("unknown kind '\(k)'")
        }
    }

    enum Kind: String {
        case ping, touch, rate, acquire
    }

    struct Sample {
        let opsPerSecond: Double
        let redisCPUMsPer10k: Double
        let clientCPUMsPer10k: Double
        let failures: Int
    }

    func run() throws {
        let kindList = kinds.split(separator: ",").compactMap { Kind(rawValue: String($0)) }
        let server = try RedisServer()
        let loop = try Loop()
        var logger = Logger(label: "redisbench")
        logger.logLevel = .warning
        var clientConfig = RedisClientConfig(host: "127.0.0.1", port: server.port)
        clientConfig.commandTimeoutMs = 2_000   // measure throughput, not the deadline
        clientConfig.pendingCommandsMax = max(concurrency * 2, 1_024)
        let client = RedisClient(loop: loop, config: clientConfig, logger: logger)
        var config = CoordinationConfig()
        config.rateLimitPerWindow = 1_000_000_000   // counted, never limited
        let coordination = Coordination(client: client, config: config, logger: logger)
        client.start()
        let connectDeadline = Loop.hrtimeNs + 5_000_000_000
        while client.state != .closed && Loop.hrtimeNs < connectDeadline { loop.runOnce(block: false); usleep(1_000) }
        guard client.state == .closed else { throw ValidationError("could not connect to redis-server") }

        let ispbList = (0..<ispbs).map { String(format: "%08d", 10_000_000 + $0 * 37) }
        let cursor = [UInt8]((0..<cursorBytes).map { UInt8(truncatingIfNeeded: $0 &* 13) })
        // Warm-up: scripts cached, slots and keys present.
        _ = measure(kind: .touch, count: 20_000, loop: loop, server: server, client: client,
                    coordination: coordination, ispbList: ispbList, cursor: cursor)

        var samples: [Kind: [Sample]] = [:]
        for _ in 0..<rounds {
            for kind in kindList {
                let s = measure(kind: kind, count: operations, loop: loop, server: server, client: client,
                                coordination: coordination, ispbList: ispbList, cursor: cursor)
                samples[kind, default: []].append(s)
            }
        }
        client.close()
        loop.close()

        print("redisbench: \(operations) ops per round, \(concurrency) in flight, \(rounds) rounds, "
              + "\(ispbs) ISPBs x 6 streams, \(cursorBytes)-byte cursors, one loop, one connection")
        print("kind      ops/s (median)   redis CPU ms/10k   client CPU ms/10k   failures")
        var reference: Sample?
        for kind in kindList {
            let list = samples[kind]!
            let median = list.sorted { $0.opsPerSecond < $1.opsPerSecond }[list.count / 2]
            if kind == .ping { reference = median }
            var line = kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
            line += String(format: "%12.0f   %16.1f   %17.1f   %8d", median.opsPerSecond, median.redisCPUMsPer10k,
                           median.clientCPUMsPer10k, list.reduce(0) { $0 + $1.failures })
            if let reference, kind != .ping {
                line += String(format: "   (%.2fx PING rate, %.2fx PING redis CPU)",
                               median.opsPerSecond / reference.opsPerSecond,
                               median.redisCPUMsPer10k / reference.redisCPUMsPer10k)
            }
            print(line)
        }
    }

    /// Runs `count` operations with `concurrency` in flight; each completion issues the next.
    func measure(kind: Kind, count: Int, loop: Loop, server: RedisServer, client: RedisClient,
                 coordination: Coordination, ispbList: [String], cursor: [UInt8]) -> Sample {
        var issued = 0
        var completed = 0
        var failures = 0
        var issue: () -> Void = {}
        let done: (Bool) -> Void = { ok in
            completed += 1
            if !ok { failures += 1 }
            if issued < count { issue() }
        }
        issue = {
            let i = issued
            issued += 1
            let ispb = ispbList[i % ispbList.count]
            let stream = UInt64(i / ispbList.count % 6)
            switch kind {
            case .ping:
                client.send(RedisCommand("PING")) { if case .success(.status) = $0 { done(true) } else { done(false) } }
            case .touch:
                coordination.touch(ispb: ispb, stream: stream, cursor: cursor) { done((try? $0.get()) != nil) }
            case .rate:
                coordination.checkRate(ispb: ispb) { done($0 == .allowed) }
            case .acquire:
                coordination.acquireSlot(ispb: ispb, stream: stream) { if case .granted = $0 { done(true) } else { done(false) } }
            }
        }
        let redisBefore = (try? server.cpuTicks()) ?? 0
        let clientBefore = processCPUNs()
        let start = Loop.hrtimeNs
        for _ in 0..<min(concurrency, count) { issue() }
        while completed < count { loop.runOnce() }
        let elapsedNs = Loop.hrtimeNs - start
        let clientNs = processCPUNs() - clientBefore
        let redisTicks = ((try? server.cpuTicks()) ?? 0) - redisBefore
        let msPerTick = 1_000 / Double(sysconf(Int32(_SC_CLK_TCK)))
        let per10k = 10_000 / Double(count)
        return Sample(opsPerSecond: Double(count) / (Double(elapsedNs) / 1e9),
                      redisCPUMsPer10k: Double(redisTicks) * msPerTick * per10k,
                      clientCPUMsPer10k: Double(clientNs) / 1e6 * per10k,
                      failures: failures)
    }

    func processCPUNs() -> UInt64 {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let us = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000 + Int(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
        return UInt64(us) * 1_000
    }
}
