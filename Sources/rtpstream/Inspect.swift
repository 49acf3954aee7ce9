import ArgumentParser
import Foundation
import Glibc
import LogStore
import Logging

/// `rtpstream inspect`: reads a stopped hub's data directory and prints its partitions or its
/// quarantine. The store is opened the way the hub opens it (recovery, then a checkpoint when
/// closed), so it refuses while another process holds the store's files open.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a stopped hub's partitions (offsets, acknowledged floor, backlog) or its quarantine.",
        discussion: """
        Opens <data-dir>/log offline. The hub must be stopped: inspect refuses when another \
        process has files of the store open (checked through /proc; processes of other users are \
        not visible to it). See docs/operations.md.
        """,
        subcommands: [Partitions.self, Quarantine.self],
        defaultSubcommand: Partitions.self)

    struct StoreOptions: ParsableArguments {
        @Option(name: .customLong("data-dir"), help: "The hub's --data-dir (default: $RTPSTREAM_DATA_DIR or ./data).")
        var dataDir: String?

        var storeDirectory: String {
            let dir = dataDir ?? ProcessInfo.processInfo.environment["RTPSTREAM_DATA_DIR"] ?? "./data"
            return "\(dir)/log"
        }
    }

    struct Partitions: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One line per partition: start and end offsets, acknowledged floor, acknowledged above it, leased, backlog.")

        @OptionGroup var store: StoreOptions

        func run() throws {
            let summary = try Inspect.withStore(store.storeDirectory) { store in
                (store.partitions().map { PartitionSummary(store: store, key: $0) }, store.quarantineOffsets())
            }
            print(PartitionSummary.header)
            for p in summary.0 { print(p.line) }
            print("quarantine\t\(summary.1.start)\t\(summary.1.end)")
        }
    }

    struct Quarantine: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Quarantined messages: offset, time (UTC), sender, message id, reason, detail (tab-separated).")

        @OptionGroup var store: StoreOptions
        @Option(help: "First quarantine offset to show (default: the oldest retained).") var from: UInt64?
        @Option(help: "Entries to show at most.") var limit = 1000
        @Flag(help: "Also print each entry's stored payload (up to 64 KiB), escaped, on the next line.") var payload = false

        func run() throws {
            guard limit >= 1 else { fail("--limit must be at least 1") }
            let entries = try Inspect.withStore(store.storeDirectory) { store -> [QuarantineRecord] in
                let offsets = store.quarantineOffsets()
                var next = max(from ?? offsets.start, offsets.start)
                var out: [QuarantineRecord] = []
                while out.count < limit && next < offsets.end {
                    let page = try store.quarantineEntries(from: next, maxCount: min(256, limit - out.count))
                    guard let last = page.last else { break }
                    out += page
                    next = last.offset + 1
                }
                return out
            }
            print("offset\ttime\tsender\tmessage-id\treason\tdetail")
            for r in entries {
                let e = r.entry
                print("\(r.offset)\t\(Inspect.iso8601(e.timeMs))\t\(Inspect.field(e.sender))\t\(Inspect.field(e.messageId ?? "-"))"
                      + "\t\(Inspect.field(e.reasonCode))\t\(Inspect.field(e.detail))")
                if payload {
                    let note = e.payloadBytesOriginal > e.payload.count ? " (first \(e.payload.count) of \(e.payloadBytesOriginal) bytes)" : ""
                    print("\tpayload\(note): \(Inspect.escaped(e.payload))")
                }
            }
        }
    }

    /// One partition's numbers.
    struct PartitionSummary {
        static let header = "partition\tstart\tend\tack-floor\tacked-above-floor\tleased\tbacklog"
        let key: PartitionKey
        let start: UInt64
        let end: UInt64
        let state: ConsumerState

        init(store: LogStore, key: PartitionKey) {
            self.key = key
            start = store.startOffset(key)
            end = store.durableEndOffset(key)
            state = store.consumerState(key)
        }

        /// Stored messages not acknowledged yet (leased or not).
        var backlog: UInt64 {
            let low = max(start, state.ackFloor)
            guard end > low else { return 0 }
            return end - low - UInt64(state.ackedAboveFloor.filter { $0 >= low && $0 < end }.count)
        }

        var leased: Int {
            Set(state.leases.flatMap(\.offsets)).filter { $0 < end && !state.isAcknowledged($0) }.count
        }

        var line: String {
            "\(key)\t\(start)\t\(end)\t\(state.ackFloor)\t\(state.ackedAboveFloor.count)\t\(leased)\t\(backlog)"
        }
    }

    /// Limits of the store as inspect opens it: the largest record and the longest dedup window
    /// the hub can be configured with, so that recovery never cuts a valid record and the
    /// closing checkpoint never drops idempotency keys the hub still needs.
    static func storeConfig() -> LogStoreConfig {
        var c = LogStoreConfig()
        c.payloadBytesMax = min(64 << 20, c.segmentBytesMax) - c.keyBytesMax - 64
        c.dedupWindowMs = 90 * 86_400_000
        return c
    }

    /// Opens the store at `directory`, runs `body`, closes it. Exits with status 2 when there
    /// is no store or another process uses it.
    static func withStore<T>(_ directory: String, _ body: (LogStore) throws -> T) throws -> T {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            fail("no log store at \(directory) (give the hub's --data-dir)")
        }
        let users = processesUsing(directory)
        if !users.isEmpty {
            fail("the store \(directory) is in use by process \(users.map(String.init).joined(separator: ", ")); stop the hub first")
        }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
        let store: LogStore
        do {
            store = try LogStore.open(directory: directory, config: storeConfig(), completions: InlineCompletionSink(),
                                      logger: Logger(label: "rtpstream-inspect"))
        } catch {
            fail("cannot open the store \(directory): \(error)")
        }
        defer { store.close() }
        for cut in store.recoveryReport.cuts { FileHandleStderr.write("recovery: \(cut)\n") }
        return try body(store)
    }

    /// Other processes with a file under `directory` open, from /proc/<pid>/fd.
    static func processesUsing(_ directory: String) -> [Int32] {
        guard let resolved = realpath(directory, nil) else { return [] }
        let root = String(cString: resolved)
        free(resolved)
        let me = getpid()
        var users: [Int32] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != me else { continue }
            let fdDirectory = "/proc/\(pid)/fd"
            guard let fds = try? FileManager.default.contentsOfDirectory(atPath: fdDirectory) else { continue }
            for fd in fds {
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink("\(fdDirectory)/\(fd)", &buffer, buffer.count - 1)
                guard n > 0 else { continue }
                let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if target == root || target.hasPrefix(root + "/") {
                    users.append(pid)
                    break
                }
            }
        }
        return users.sorted()
    }

    /// A value for one tab-separated column: control characters (tabs, newlines) become spaces.
    static func field(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : $0 }))
    }

    /// Bytes as text: printable ASCII kept, everything else as \xNN.
    static func escaped(_ bytes: [UInt8]) -> String {
        var out = ""
        out.reserveCapacity(bytes.count)
        for b in bytes {
            if b >= 0x20 && b < 0x7f && b != UInt8(ascii: "\\") {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += b == UInt8(ascii: "\\") ? "\\\\" : "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16)
            }
        }
        return out
    }

    static func iso8601(_ ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, Int(ms % 1000))
    }
}
