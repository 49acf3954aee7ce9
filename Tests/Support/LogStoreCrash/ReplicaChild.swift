// `logstore-crash replica <source dir> <replica dir> <seed>`: runs a seeded workload on a fresh
// source store (appends with resends, acks, leases, releases, quarantine; fixed timestamps and
// seeded ids, so the same seed gives the same events), collects its durable events, closes
// it, then applies the events to the replica store one group at a time, printing
// "R <group number>" after each group is durable there, and "DONE" at the end. The test
// kill -9s it mid-apply and runs it again on the same replica (with a new source directory):
// groups the replica already has are skipped, the rest applied.
#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Logging
import LogStore
import Synchronization

enum ReplicaChild {
    static func config(observer: (@Sendable (CommittedGroup) -> Void)?) -> LogStoreConfig {
        var c = LogStoreConfig()
        c.segmentBytesMax = 32 << 10
        c.journalBytesMax = 128 << 10
        c.payloadBytesMax = 8 << 10
        c.quarantinePayloadBytesMax = 1 << 10
        c.eventObserver = observer
        return c
    }

    static func run(source: String, replica: String, seed: UInt64) -> Never {
        var logger = Logger(label: "logstore-crash")
        logger.logLevel = .warning
        let groups = Mutex<[CommittedGroup]>([])
        do {
            let store = try LogStore.open(directory: source, config: config { g in groups.withLock { $0.append(g) } },
                                          completions: InlineCompletionSink(), logger: logger)
            try workload(store, seed: seed)
            store.close()
            let target = try LogStore.open(directory: replica, config: config(observer: nil),
                                           completions: InlineCompletionSink(), logger: logger)
            for (i, group) in groups.withLock({ $0 }).enumerated() {
                let done = DispatchSemaphore(value: 0)
                let failure = Mutex<LogStoreError?>(nil)
                target.apply(group) { result in
                    if case .failure(let e) = result { failure.withLock { $0 = e } }
                    done.signal()
                }
                done.wait()
                if let e = failure.withLock({ $0 }) {
                    emit("apply of group \(i) failed: \(e)", to: 2)
                    exit(4)
                }
                emit("R \(i)")
            }
            target.close()
            emit("DONE")
            exit(0)
        } catch {
            emit("replica child: \(error)", to: 2)
            exit(1)
        }
    }

    static func wait<T: Sendable>(_ start: (@escaping @Sendable (T) -> Void) -> Void) -> T {
        let box = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        start { v in
            box.withLock { $0 = v }
            done.signal()
        }
        done.wait()
        return box.withLock { $0! }
    }

    struct Failed: Error { let reason: String }

    static func workload(_ store: LogStore, seed: UInt64) throws {
        var random = seed | 1
        func rand(_ n: UInt64) -> UInt64 {
            random ^= random << 13
            random ^= random >> 7
            random ^= random << 17
            return random % n
        }
        let partitions = ["00000001", "00000002", "00000003", "00000004"].map { PartitionKey(region: "replica", ispb: $0) }
        var ends = [UInt64](repeating: 0, count: partitions.count)
        let now: Int64 = 1_900_000_000_000
        var keys: [String] = []
        for step in 0..<600 {
            let i = Int(rand(UInt64(partitions.count)))
            let p = partitions[i]
            switch rand(10) {
            case 0...5:
                var records: [AppendRecord] = (0..<(1 + rand(4))).map { k in
                    let key = "\(p.ispb)/S\(step)-\(k)"
                    keys.append(key)
                    return AppendRecord(key: Array(key.utf8), id: ResourceID(high: UInt64(step), low: k),
                                        payload: crashRecordPayload(ispb: p.ispb, offset: UInt64(step) * 8 + k), timestampMs: now + Int64(step))
                }
                if rand(4) == 0, let old = keys.first {   // a resend
                    records.append(AppendRecord(key: Array(old.utf8), id: ResourceID(high: 0, low: 0), payload: [1], timestampMs: now))
                }
                let result: Result<[AppendOutcome], LogStoreError> = wait { done in store.append(p, records, completion: done) }
                guard case .success(let outcomes) = result else { throw Failed(reason: "append: \(result)") }
                for case .appended(let offset) in outcomes { ends[i] = max(ends[i], offset + 1) }
            case 6, 7:
                guard ends[i] > 0 else { continue }
                let offsets = Array(Set((0..<3).map { _ in rand(ends[i]) })).sorted()
                let result: Result<Void, LogStoreError> = wait { done in store.acknowledge(p, offsets: offsets, completion: done) }
                guard case .success = result else { throw Failed(reason: "ack: \(result)") }
            case 8:
                guard ends[i] > 0 else { continue }
                store.recordLease(p, stream: rand(4), sequence: UInt64(step), offsets: [rand(ends[i])])
                if rand(2) == 0 { store.releaseLease(p, stream: rand(4)) }
            default:
                let entry = QuarantineEntry(timeMs: now + Int64(step), sender: p.ispb, messageId: "Q\(step)",
                                            reasonCode: "schema-invalid", detail: "step \(step)", payload: [UInt8](repeating: 7, count: 200))
                let result: Result<UInt64, LogStoreError> = wait { done in store.quarantine(entry, completion: done) }
                guard case .success = result else { throw Failed(reason: "quarantine: \(result)") }
            }
        }
        // A final acknowledgement: every lease before it is in a durable group.
        let result: Result<Void, LogStoreError> = wait { done in store.acknowledge(partitions[0], offsets: [0], completion: done) }
        guard case .success = result else { throw Failed(reason: "final ack: \(result)") }
    }
}
