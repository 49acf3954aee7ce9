import ArgumentParser
import Dispatch
import Foundation
import LogStore
import Synchronization

/// Appends/s and MB/s under group commit, against a raw pwrite + fdatasync loop on the same
/// disk in the same run.
struct AppendBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "append")

    @Option(help: "Scratch directory (on the disk under test); removed afterwards.")
    var dir: String = "/tmp/logbench"
    @Option(help: "Record payload sizes in bytes.")
    var recordBytes: [Int] = [1024, 4096]
    @Option(help: "Records per append call.")
    var batch: [Int] = [1, 10]
    @Option(help: "Appends in flight (like concurrent HTTP requests).")
    var inFlight: Int = 64
    @Option(help: "Partitions the appends are spread over.")
    var partitions: Int = 50
    @Option(help: "Seconds per measurement.")
    var seconds: Double = 5
    @Option(help: "groupWaitMicros of the store.")
    var groupWaitMicros: Int = 0
    @Option(help: "Repetitions; store and raw runs alternate and the median is reported.")
    var repeats: Int = 3
    @Flag(help: "Measure the store only (for profiling).")
    var storeOnly = false

    func run() throws {
        print("record_bytes batch | store rec/s MB/s recs/group fsync/s | raw same-group prealloc rec/s (ratio) | raw same-group growing rec/s (ratio) | raw per-batch rec/s (ratio)")
        for size in recordBytes {
            for b in batch {
                var stores: [StoreResult] = []
                var preallocated: [Double] = []
                var growing: [Double] = []
                var perBatch: [Double] = []
                for _ in 0..<repeats {
                    let store = try measureStore(recordBytes: size, batch: b)
                    stores.append(store)
                    if storeOnly { continue }
                    let groupBytes = max(Int(store.journalBytesPerGroup), 1)
                    let rawPath = try freshDirectory(dir, "raw") + "/raw.log"
                    preallocated.append(rawWriteSyncLoop(path: rawPath, bytesPerSync: groupBytes, seconds: seconds, preallocated: true)
                        * store.recordsPerGroup)
                    growing.append(rawWriteSyncLoop(path: rawPath, bytesPerSync: groupBytes, seconds: seconds, preallocated: false)
                        * store.recordsPerGroup)
                    perBatch.append(rawWriteSyncLoop(path: rawPath, bytesPerSync: b * (size + 64), seconds: seconds, preallocated: false)
                        * Double(b))
                }
                let store = stores.sorted { $0.recordsPerSecond < $1.recordsPerSecond }[stores.count / 2]
                func cell(_ samples: [Double]) -> String {
                    guard !samples.isEmpty else { return "-" }
                    let m = median(samples)
                    return "\(Int(m)) (\(format(store.recordsPerSecond / m, 2)))"
                }
                print("\(size) \(b) | \(Int(store.recordsPerSecond)) \(format(store.recordsPerSecond * Double(size) / 1e6)) "
                    + "\(format(store.recordsPerGroup)) \(Int(store.fsyncsPerSecond)) | \(cell(preallocated)) | \(cell(growing)) | \(cell(perBatch))")
            }
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    struct StoreResult {
        var recordsPerSecond: Double
        var recordsPerGroup: Double
        var journalBytesPerGroup: Double
        var fsyncsPerSecond: Double
    }

    func measureStore(recordBytes: Int, batch: Int) throws -> StoreResult {
        let path = try freshDirectory(dir, "store")
        let metrics = BenchMetrics()
        var config = LogStoreConfig()
        config.metricsFactory = metrics
        config.groupWaitMicros = groupWaitMicros
        config.idempotencyEntriesMax = 50_000_000
        let store = try LogStore.open(directory: path, config: config, completions: InlineCompletionSink(), logger: benchLogger())
        defer { store.close() }
        let payload = [UInt8](repeating: 0x5A, count: recordBytes)
        let keys = (0..<partitions).map { PartitionKey(region: "bench", ispb: String(format: "%08d", $0)) }
        let slots = DispatchSemaphore(value: inFlight)
        let done = Atomic<Int>(0)
        let failed = Atomic<Int>(0)
        // Warm-up so the spare journal is preallocated and the first roll is behind us.
        Thread.sleep(forTimeInterval: 1)
        let start = nowSeconds()
        var n = 0
        while nowSeconds() - start < seconds {
            slots.wait()
            let records = (0..<batch).map { i in
                AppendRecord(key: Array("b/\(n)/\(i)".utf8), id: ResourceID(high: UInt64(n), low: UInt64(i)), payload: payload,
                             timestampMs: 1_700_000_000_000)
            }
            store.append(keys[n % keys.count], records) { result in
                if case .success = result {
                    done.add(batch, ordering: .relaxed)
                } else {
                    failed.add(1, ordering: .relaxed)
                }
                slots.signal()
            }
            n += 1
        }
        for _ in 0..<inFlight { slots.wait() }
        let elapsed = nowSeconds() - start
        for _ in 0..<inFlight { slots.signal() }  // libdispatch traps if a semaphore dies below its initial value
        precondition(failed.load(ordering: .relaxed) == 0, "appends failed")
        let groups = metrics.totals("logstore_commit_group_records")
        let groupBytes = metrics.totals("logstore_commit_group_bytes")
        let fsyncs = metrics.totals("logstore_fsync_seconds{file=journal}")
        return StoreResult(recordsPerSecond: Double(done.load(ordering: .relaxed)) / elapsed,
                           recordsPerGroup: groups.sum / Double(max(groups.count, 1)),
                           journalBytesPerGroup: groupBytes.sum / Double(max(groupBytes.count, 1)),
                           fsyncsPerSecond: Double(fsyncs.count) / elapsed)
    }
}
