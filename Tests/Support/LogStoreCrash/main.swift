// Child process for LogStoreTests.CrashProcessTests: appends to a store in a loop (16 appends
// in flight over 3 partitions, 1–5 records each, acknowledging some) and prints what the store
// reported durable, one line per completion, flushed at once:
//     D <ispb> <firstOffset> <count>      records [first, first+count) are durable
//     A <ispb> <offset> <offset>...       these acknowledgements are durable
// Record content is a pure function of (partition, offset), so the test can check every byte
// after kill -9. Usage: logstore-crash <directory> <seed>
// (or `logstore-crash replica <source> <replica> <seed>`: see ReplicaChild.swift)
// (main.swift with an explicit entry point: everything lives in `CrashChild.run()`.)
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import LogStore

/// Deterministic content of the record at `offset` of partition `ispb` (shared with the test).
func crashRecordPayload(ispb: String, offset: UInt64) -> [UInt8] {
    var state = ispb.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 } ^ (offset &* 0x9E37_79B9_7F4A_7C15)
    func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    let count = 100 + Int(next() % 1900)
    var words = [UInt64](repeating: 0, count: count / 8 + 1)
    for i in words.indices { words[i] = next() }
    return words.withUnsafeBytes { Array($0.prefix(count)) }
}

/// One line to a file descriptor with a single write(2) (atomic on a pipe below PIPE_BUF).
@Sendable func emit(_ line: String, to fd: Int32 = 1) {
    var bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
}

enum CrashChild {
    static func run() -> Never {
        let arguments = CommandLine.arguments
        if arguments.count == 5, arguments[1] == "replica", let seed = UInt64(arguments[4]) {
            ReplicaChild.run(source: arguments[2], replica: arguments[3], seed: seed)
        }
        guard arguments.count == 3, let seed = UInt64(arguments[2]) else {
            emit("usage: logstore-crash <directory> <seed>", to: 2)
            exit(2)
        }
        var config = LogStoreConfig()
        config.segmentBytesMax = 256 << 10
        config.journalBytesMax = 1 << 20
        config.payloadBytesMax = 64 << 10
        config.quarantinePayloadBytesMax = 16 << 10
        var logger = Logger(label: "logstore-crash")
        logger.logLevel = .warning
        let store: LogStore
        do {
            store = try LogStore.open(directory: arguments[1], config: config, completions: InlineCompletionSink(), logger: logger)
        } catch {
            emit("open failed: \(error)", to: 2)
            exit(1)
        }

        let partitions = ["00000001", "00000002", "00000003"].map { PartitionKey(region: "crash", ispb: $0) }
        var next = partitions.map { store.durableEndOffset($0) }
        let inFlight = DispatchSemaphore(value: 16)
        var random = seed | 1
        func rand(_ n: UInt64) -> UInt64 {
            random ^= random << 13
            random ^= random >> 7
            random ^= random << 17
            return random % n
        }

        emit("S \(next.map(String.init).joined(separator: " "))")
        while true {
            inFlight.wait()
            let i = Int(rand(UInt64(partitions.count)))
            let p = partitions[i]
            let first = next[i]
            let count = 1 + Int(rand(5))
            next[i] += UInt64(count)
            let records = (0..<UInt64(count)).map { k in
                AppendRecord(key: Array("crash/\(p.ispb)/\(first + k)".utf8), id: ResourceID(high: first + k, low: UInt64(i)),
                             payload: crashRecordPayload(ispb: p.ispb, offset: first + k), timestampMs: 1_700_000_000_000)
            }
            let ackNow = rand(4) == 0
            store.append(p, records) { result in
                defer { inFlight.signal() }
                guard case .success(let outcomes) = result else { return }
                guard outcomes == (0..<UInt64(count)).map({ .appended(offset: first + $0) }) else {
                    emit("unexpected outcomes \(outcomes)", to: 2)
                    exit(3)
                }
                emit("D \(p.ispb) \(first) \(count)")
                if ackNow {
                    let offsets = Array(first..<(first + UInt64(count)))
                    store.acknowledge(p, offsets: offsets) { ack in
                        if case .success = ack { emit("A \(p.ispb) " + offsets.map(String.init).joined(separator: " ")) }
                    }
                }
            }
        }
    }
}

CrashChild.run()
