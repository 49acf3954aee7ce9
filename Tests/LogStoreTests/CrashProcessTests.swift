import TestSupport
import Foundation
import Logging
import Synchronization
import XCTest
@testable import LogStore

/// A real process appends in a loop and prints what the store reported durable; the test
/// kill -9s it at random moments (20 times on the same directory), reopens the store and checks:
/// every record reported durable is there, byte for byte; every partition holds exactly the
/// records the child generated, contiguous from 0 (nothing else); acknowledgements reported
/// durable are in the consumer state.
final class CrashProcessTests: XCTestCase {
    func testKillNineAtRandomMomentsLosesNothingAcknowledged() throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("logstore-crash").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            return XCTFail("\(executable) missing: build it with `swift build --build-tests`")
        }
        let dir = TempDirectory()
        defer { dir.cleanup() }
        var generator = SplitMix64(seed: UInt64(ProcessInfo.processInfo.environment["LOGSTORE_CRASH_SEED"].flatMap(UInt64.init) ?? 77))
        var durable: [String: UInt64] = [:]  // ispb → one past the highest durable offset printed
        var acked: [String: Set<UInt64>] = [:]
        let partitions = ["00000001", "00000002", "00000003"]
        var totalLines = 0
        var verified: [String: UInt64] = [:]  // content checked below this offset in an earlier iteration
        let started = Date()

        for iteration in 0..<20 {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: executable)
            child.arguments = [dir.path, String(generator.next() % 1_000_000)]
            let pipe = Pipe()
            let errors = Pipe()
            child.standardOutput = pipe
            child.standardError = errors
            let received = Mutex<[UInt8]>([])
            pipe.fileHandleForReading.readabilityHandler = { handle in
                let data = handle.availableData
                received.withLock { $0 += data }
            }
            try child.run()
            // Kill at a random moment between 30 and 400 ms after start.
            Thread.sleep(forTimeInterval: 0.03 + Double(generator.next() % 370) / 1000)
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            pipe.fileHandleForReading.readabilityHandler = nil
            let rest = pipe.fileHandleForReading.readDataToEndOfFile()
            let text = String(decoding: received.withLock { $0 } + rest, as: UTF8.self)
            guard child.terminationReason == .uncaughtSignal else {
                let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                return XCTFail("iteration \(iteration): the child exited (\(child.terminationStatus)) before the kill: \(message)")
            }

            // Only complete lines count (the kill may cut the last one).
            for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                let fields = line.split(separator: " ").map(String.init)
                totalLines += 1
                switch fields.first {
                case "D":
                    let end = UInt64(fields[2])! + UInt64(fields[3])!
                    durable[fields[1]] = max(durable[fields[1]] ?? 0, end)
                case "A":
                    acked[fields[1], default: []].formUnion(fields.dropFirst(2).map { UInt64($0)! })
                case "S":
                    // The child starts where the previous incarnation's durable data ends.
                    let starts = fields.dropFirst().map { UInt64($0)! }
                    for (i, p) in partitions.enumerated() {
                        XCTAssertGreaterThanOrEqual(starts[i], durable[p] ?? 0, "iteration \(iteration): \(p) restarted below a durable offset")
                    }
                default:
                    XCTFail("unexpected line \(line)")
                }
            }

            let store = try LogStore.open(directory: dir.path, completions: InlineCompletionSink(),
                                          logger: Logger(label: "crash-test") { _ in SwiftLogNoOpLogHandler() })
            for ispb in partitions {
                let p = PartitionKey(region: "crash", ispb: ispb)
                let records = try store.readAll(p)
                let end = store.durableEndOffset(p)
                XCTAssertGreaterThanOrEqual(end, durable[ispb] ?? 0, "iteration \(iteration): \(ispb) lost durable records")
                XCTAssertEqual(records.count, Int(end), "iteration \(iteration): \(ispb) is not contiguous from 0")
                // Offsets and keys of everything; full content of what is new since the previous
                // iteration plus a sample of the older records.
                let old = verified[ispb] ?? 0
                for (i, r) in records.enumerated() {
                    let checkContent = r.offset >= old || generator.next() % 50 == 0
                    guard r.offset == UInt64(i), r.key == Array("crash/\(ispb)/\(r.offset)".utf8),
                          !checkContent || r.payload == crashRecordPayload(ispb: ispb, offset: r.offset) else {
                        XCTFail("iteration \(iteration): \(ispb) offset \(r.offset) holds something the child did not write")
                        break
                    }
                }
                verified[ispb] = end
                let state = store.consumerState(p)
                for o in acked[ispb] ?? [] where !state.isAcknowledged(o) {
                    XCTFail("iteration \(iteration): \(ispb) acknowledgement of \(o) lost")
                }
            }
            store.close()
        }
        XCTAssertGreaterThan(durable.values.reduce(0, +), 100, "the child made progress")
        XCTAssertLessThan(Date().timeIntervalSince(started), 60)
        print("crash test: \(totalLines) lines, durable ends \(durable.sorted { $0.key < $1.key })")
    }
}

/// Same function as in Tests/Support/LogStoreCrash/main.swift.
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
