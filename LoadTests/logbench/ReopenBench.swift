#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Dispatch
import Foundation
import LogStore
import Synchronization

/// Fills a store with N records in a child process that exits without closing (like kill -9
/// after the last durable append), then times open() (journal replay), then close + open
/// (clean restart).
struct ReopenBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reopen")

    @Option var dir: String = "/tmp/logbench"
    @Option var records: Int = 5_000_000
    @Option var recordBytes: Int = 256
    @Option var partitions: Int = 200
    @Flag(help: "Keep the filled directory (to profile opens); delete it yourself.")
    var keep = false

    func run() throws {
        let path = try freshDirectory(dir, "reopen")
        defer { if !keep { try? FileManager.default.removeItem(atPath: dir) } }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["fill", "--dir", path, "--records", String(records), "--record-bytes", String(recordBytes),
                           "--partitions", String(partitions)]
        let fillStart = nowSeconds()
        try child.run()
        child.waitUntilExit()
        precondition(child.terminationStatus == 0, "fill failed")
        print("filled \(records) records of \(recordBytes) B over \(partitions) partitions in \(format(nowSeconds() - fillStart)) s (child exited without close)")
        let du = Process()
        du.executableURL = URL(fileURLWithPath: "/usr/bin/du")
        du.arguments = ["-sh", path]
        try du.run()
        du.waitUntilExit()

        var config = LogStoreConfig()
        config.idempotencyEntriesMax = records + 1
        for label in ["after crash (journal replay)", "after clean close"] {
            let t0 = nowSeconds()
            let store = try LogStore.open(directory: path, config: config, completions: InlineCompletionSink(), logger: benchLogger())
            let openSeconds = nowSeconds() - t0
            // Reads are served from here; appends once the idempotency index is ready.
            let probe = try store.read(PartitionKey(region: "bench", ispb: "00000000"), from: 0, maxRecords: 1, maxBytes: 0)
            precondition(probe.count == 1, "read after open")
            while !store.idempotencyIndexReady { usleep(1000) }
            let readySeconds = nowSeconds() - t0
            let total = store.partitions().reduce(UInt64(0)) { $0 + store.durableEndOffset($1) }
            let r = store.recoveryReport
            print("open \(label): open() returned (reads served) \(format(openSeconds * 1000, 0)) ms; idempotency index ready (appends served) \(format(readySeconds * 1000, 0)) ms; "
                + "\(total) records; keys \(r.keysLoaded) loaded in \(Int(r.keysMs)) ms; journal entries replayed \(r.journalEntriesReplayed); "
                + "records replayed \(r.recordsReplayed); tail records verified \(r.recordsScanned); cuts \(r.cuts.count); "
                + "phases ms: partitions \(Int(r.partitionsMs)), journals \(Int(r.journalsMs)), checkpoint \(Int(r.checkpointMs))")
            precondition(total == UInt64(records), "records missing after reopen")
            store.close()
        }
    }
}

/// The child of `reopen`: appends N records (batches of 10, 64 in flight), then exits without
/// closing the store.
struct FillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fill", shouldDisplay: false)

    @Option var dir: String
    @Option var records: Int
    @Option var recordBytes: Int
    @Option var partitions: Int

    func run() throws {
        var config = LogStoreConfig()
        config.idempotencyEntriesMax = records + 1
        let store = try LogStore.open(directory: dir, config: config, completions: InlineCompletionSink(), logger: benchLogger())
        let payload = [UInt8](repeating: 0x33, count: recordBytes)
        let keys = (0..<partitions).map { PartitionKey(region: "bench", ispb: String(format: "%08d", $0)) }
        let slots = DispatchSemaphore(value: 64)
        let failed = Atomic<Int>(0)
        var n = 0
        while n < records {
            slots.wait()
            let count = min(10, records - n)
            let batch = (0..<count).map { i in
                AppendRecord(key: Array("f/\(n + i)".utf8), id: ResourceID(high: UInt64(n + i), low: 1), payload: payload,
                             timestampMs: Int64(Date().timeIntervalSince1970 * 1000))
            }
            store.append(keys[(n / 10) % keys.count], batch) { result in
                if case .failure = result { failed.add(1, ordering: .relaxed) }
                slots.signal()
            }
            n += count
        }
        for _ in 0..<64 { slots.wait() }
        precondition(failed.load(ordering: .relaxed) == 0, "appends failed")
        // Like kill -9 after the last durable append: no close, no final checkpoint.
        _exit(0)
    }
}

/// Opens an existing store and reports the time (for profiling a kept `reopen` directory).
struct OpenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "open", shouldDisplay: false)

    @Option var dir: String
    @Option var idempotencyEntriesMax: Int = 10_000_000

    func run() throws {
        var config = LogStoreConfig()
        config.idempotencyEntriesMax = idempotencyEntriesMax
        let t0 = nowSeconds()
        let store = try LogStore.open(directory: dir, config: config, completions: InlineCompletionSink(), logger: benchLogger())
        let opened = nowSeconds() - t0
        while !store.idempotencyIndexReady { usleep(1000) }
        let r = store.recoveryReport
        print("open returned \(format(opened * 1000, 0)) ms, index ready \(format((nowSeconds() - t0) * 1000, 0)) ms, keys \(r.keysLoaded) in \(Int(r.keysMs)) ms (partitions \(Int(r.partitionsMs)) ms, journals \(Int(r.journalsMs)) ms, checkpoint \(Int(r.checkpointMs)) ms)")
        store.close()
    }
}
