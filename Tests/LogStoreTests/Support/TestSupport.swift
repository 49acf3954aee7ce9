import TestSupport
import Foundation
import Logging
import Synchronization
import XCTest
@testable import LogStore

/// Log lines captured for assertions.
final class LogCapture: Sendable {
    struct Line: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    let lines = Mutex<[Line]>([])

    var logger: Logger {
        Logger(label: "logstore-test") { _ in Handler(capture: self) }
    }

    func messages(atLeast level: Logger.Level) -> [Line] {
        lines.withLock { $0.filter { $0.level >= level } }
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let line = Line(level: event.level, message: "\(event.message)",
                            metadata: (event.metadata ?? [:]).mapValues { "\($0)" })
            capture.lines.withLock { $0.append(line) }
        }
    }
}

/// Waits for a completion delivered on another thread.
final class Waiter<T: Sendable>: Sendable {
    private let value = Mutex<T?>(nil)
    private let semaphore = DispatchSemaphore(value: 0)

    func fulfil(_ v: T) {
        value.withLock { $0 = v }
        semaphore.signal()
    }

    /// The value, once fulfilled; nil after `seconds` (a failure unless `expectingTimeout`,
    /// in which case a later `wait` can still collect the value).
    func wait(seconds: Double = 10, expectingTimeout: Bool = false, file: StaticString = #filePath, line: UInt = #line) -> T? {
        if semaphore.wait(timeout: .now() + seconds) == .timedOut {
            if !expectingTimeout { XCTFail("completion did not arrive within \(seconds) s", file: file, line: line) }
            return nil
        }
        if expectingTimeout { semaphore.signal() }
        return value.withLock { $0 }
    }
}

/// A fresh directory under the system temp dir, removed by `cleanup()`.
struct TempDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "logstore-test-\(UUID().uuidString)"
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

let testRegion = "test"

func partition(_ n: Int) -> PartitionKey {
    let digits = String(n)
    return PartitionKey(region: testRegion, ispb: String(repeating: "0", count: 8 - digits.count) + digits)
}

/// A record stamped now (wall clock) unless `ts` is given.
func record(_ key: String, _ payload: [UInt8], ts: Int64? = nil, id: UInt64? = nil) -> AppendRecord {
    var h = Hasher()
    h.combine(key)
    return AppendRecord(key: Array(key.utf8), id: ResourceID(high: id ?? UInt64(bitPattern: Int64(h.finalize())), low: 7),
                        payload: payload, timestampMs: ts ?? Int64(Date().timeIntervalSince1970 * 1000))
}

func payload(_ seed: Int, count: Int) -> [UInt8] {
    var g = SplitMix64(seed: UInt64(bitPattern: Int64(seed)))
    return (0..<count).map { _ in UInt8(truncatingIfNeeded: g.next()) }
}

extension LogStore {
    /// Appends and waits for the completion (threaded stores).
    func appendAndWait(_ p: PartitionKey, _ records: [AppendRecord], file: StaticString = #filePath, line: UInt = #line)
        -> Result<[AppendOutcome], LogStoreError>
    {
        let w = Waiter<Result<[AppendOutcome], LogStoreError>>()
        append(p, records) { w.fulfil($0) }
        return w.wait(file: file, line: line) ?? .failure(.closed)
    }

    func acknowledgeAndWait(_ p: PartitionKey, _ offsets: [UInt64]) -> Result<Void, LogStoreError> {
        let w = Waiter<Result<Void, LogStoreError>>()
        acknowledge(p, offsets: offsets) { w.fulfil($0) }
        return w.wait() ?? .failure(.closed)
    }

    func quarantineAndWait(_ e: QuarantineEntry) -> Result<UInt64, LogStoreError> {
        let w = Waiter<Result<UInt64, LogStoreError>>()
        quarantine(e) { w.fulfil($0) }
        return w.wait() ?? .failure(.closed)
    }

    func readAll(_ p: PartitionKey) throws -> [Record] {
        var out: [Record] = []
        var next = startOffset(p)
        while true {
            let batch = try read(p, from: next, maxRecords: 1000, maxBytes: 16 << 20)
            guard let last = batch.last else { return out }
            out += batch
            next = last.offset + 1
        }
    }
}

/// The repository root.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path
