import Foundation
import Glibc

/// The live one-line progress display: rewritten once a second with a carriage return, only
/// when standard output is a terminal.
final class Progress {
    private var width = 0

    /// nil when stdout is not a terminal (or `quiet`).
    static func make(quiet: Bool) -> Progress? {
        quiet || isatty(STDOUT_FILENO) == 0 ? nil : Progress()
    }

    func update(run: Run, sample: Recorder.Sample) {
        let r = sample.routes
        let pulls = [Route.start, .next, .nextEmpty, .retry].reduce(UInt64(0)) { $0 + (r[$1]?.count ?? 0) }
        let tooMany = r.values.reduce(UInt64(0)) { $0 + $1.tooMany }
        let failures = r.values.reduce(UInt64(0)) { $0 + $1.failures }
        let g = sample.gauges
        var line = String(format: "%4ds %-8@ pulls %6llu/s p99 %6.1f ms | sends %5.0f msg/s p99 %6.1f ms | 429 %4llu | fail %3llu | backlog %8.0f | viol %d",
                          sample.second, sample.phase as NSString, pulls, r[.next]?.p99Ms ?? 0,
                          g["messages_sent"] ?? 0, r[.send]?.p99Ms ?? 0, tooMany, failures, g["backlog"] ?? 0, run.violationCount)
        let cpu = g.filter { $0.key.hasPrefix("cpu_") }.sorted { $0.key < $1.key }
            .map { String(format: "%@ %.0f%%", String($0.key.dropFirst(4)) as NSString, $0.value) }
        if !cpu.isEmpty { line += " | cpu " + cpu.joined(separator: " ") }
        let pad = max(0, width - line.count)
        width = line.count
        FileHandle.standardOutput.write(Data(("\r" + line + String(repeating: " ", count: pad)).utf8))
    }

    func finish() {
        if width > 0 { FileHandle.standardOutput.write(Data("\n".utf8)) }
        width = 0
    }
}
