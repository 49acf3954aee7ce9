import ArgumentParser
import Foundation
import Histogram

/// `loadtest soak`: the million-RPM soak (DESIGN.md §4) with correctness checking.
struct Soak: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N PSPs × 4–6 streams over mutual TLS at a target pull rate, producers on the send path, every delivery checked.",
        discussion: """
        Phases: connect (TLS handshakes), preload (messages stored through the send path so that \
        batches are full at --pull-rate), warmup (--warmup-seconds, not measured), steady (--duration \
        seconds at --pull-rate and --send-rate), \
        drain (pull until every sent message was delivered), close (DELETE every stream). \
        Exit status 1 when any delivery guarantee was violated (the offending ids are listed).
        """)

    @OptionGroup var target: TargetOptions
    @OptionGroup var load: LoadOptions

    @Option(help: "Seconds at the target rates before the measured phase (streams open, caches warm); not measured.")
    var warmupSeconds = 5.0

    /// The soak's targets: 1,000,000 pull requests per minute with p99 < 50 ms.
    static let p99MsMax = 50.0

    func run() throws {
        let plan = Driver.Plan(
            kind: "soak",
            segments: [Segment(name: "warmup", seconds: warmupSeconds, pullRateFrom: load.pullRate, pullRateTo: load.pullRate,
                               sendRateFrom: load.sendRate, sendRateTo: load.sendRate),
                       Segment(name: "steady", seconds: load.duration, pullRateFrom: load.pullRate, pullRateTo: load.pullRate,
                               sendRateFrom: load.sendRate, sendRateTo: load.sendRate)].filter { $0.seconds > 0 },
            analyze: { Soak.analyze($0, target: load.pullRate) })
        let code = try Driver.execute(plan, target: target, load: load)
        if code != 0 { throw ExitCode(code) }
    }

    static func analyze(_ s: RunSummary, target: Double) -> (results: [String: Any], headline: [(String, String)]) {
        guard let steady = s.run.recorder.phase("steady") else {
            return (["error": "no steady phase (\(s.run.stopReason))"], [("result", "FAIL: no steady phase (\(s.run.stopReason))")])
        }
        let rate = RunSummary.pullRate(steady)
        let seconds = RunSummary.pullSeconds(s.run.recorder.samples, phase: "steady")
        let minSecond = seconds.min() ?? 0
        var pulls = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: RouteStats.latencyUsMax, numberOfSignificantValueDigits: .three)
        for r in [Route.start, .next, .retry, .delete] { pulls.add(steady.routes[r]!.histogram) }
        func ms(_ p: Double) -> Double { pulls.totalCount == 0 ? 0 : Double(pulls.valueAtPercentile(p)) / 1000 }
        let p99 = ms(99)
        let empty = steady.routes[.nextEmpty]!.count
        let tooMany = steady.routes.values.reduce(UInt64(0)) { $0 + ($1.statusCounts[429] ?? 0) }
        let violations = s.ledger.violationTotal
        let rateMet = target == 0 || rate >= target * 0.98
        let passed = rateMet && p99 < p99MsMax && violations == 0 && s.run.drained
        let slotRefusalsBelowLimit = s.run.psps.reduce(0) { $0 + $1.unexpectedSlotRefusals }
        let results: [String: Any] = [
            "steadySeconds": steady.seconds,
            "pullRequestsPerSecond": rate,
            "pullRequestsPerSecondTarget": target,
            "pullRequestsPerSecondMinSecond": minSecond,
            "pullLatencyMs": ["p50": ms(50), "p90": ms(90), "p99": ms(99), "p99_9": ms(99.9),
                              "max": pulls.totalCount == 0 ? 0 : Double(pulls.max) / 1000],
            "nextWith204": empty,
            "status429": tooMany,
            "slotRefusalsBelowLimit": slotRefusalsBelowLimit,
            "messagesPerSecondDelivered": Double(s.run.recorder.samples.filter { $0.phase == "steady" }
                .reduce(0.0) { $0 + ($1.gauges["messages_delivered"] ?? 0) }) / max(1, steady.seconds),
            "violations": violations,
            "drained": s.run.drained,
            "targetsMet": passed,
        ]
        var headline: [(String, String)] = [
            ("result", passed ? "PASS: target rate, p99 < 50 ms, no violations" :
                (violations > 0 ? "FAIL: \(violations) violations" : "NOT MET (see below)")),
            ("pull requests/s (steady)", String(format: "%.0f (target %.0f; slowest second %llu)", rate, target, minSecond)),
            ("pull latency p50/p90/p99/p99.9/max", String(format: "%.1f / %.1f / %.1f / %.1f / %.1f ms", ms(50), ms(90), ms(99), ms(99.9),
                                                          pulls.totalCount == 0 ? 0 : Double(pulls.max) / 1000)),
            ("GET next answered 204 (steady)", "\(empty)"),
            ("429 (steady)", "\(tooMany) (start refused below the slot limit: \(slotRefusalsBelowLimit))"),
            ("preload", String(format: "%d messages in %.0f s (%.0f/s)", s.run.preloadStored, s.run.preloadSeconds,
                               s.run.preloadSeconds > 0 ? Double(s.run.preloadStored) / s.run.preloadSeconds : 0)),
            ("messages sent / delivered / acked", "\(s.ledger.sent) / \(s.ledger.delivered) / \(s.ledger.acknowledged)"),
            ("redeliveries (retry / abandon / gone)", "\(s.ledger.redeliveredByRetry) / \(s.ledger.redeliveredAfterAbandon) / \(s.ledger.redeliveredAfterGone)"),
            ("drained", s.run.drained ? "yes" : "no (\(s.run.stopReason))"),
            ("violations", violations == 0 ? "PASS: 0" : "FAIL: \(violations)"),
        ]
        if !rateMet { headline.append(("rate", "NOT MET")) }
        return (results, headline)
    }
}
