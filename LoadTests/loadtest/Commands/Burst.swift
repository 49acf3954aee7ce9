import ArgumentParser
import Foundation
import Histogram

/// `loadtest burst`: ramp from the soak rate to twice that and hold; measures how quickly
/// 429/Retry-After back-pressure engages, the latency of admitted requests, and that every
/// pointer followed gets a sane answer.
struct Burst: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ramp pulls and sends from --pull-rate/--send-rate to twice that; back-pressure, admitted p99, pointer gaps.",
        discussion: """
        Segments: warm (1×, --warm-seconds), ramp (1× → 2×, --ramp-seconds), peak (2×, --duration), \
        recover (1×, --recover-seconds), then drain and close like the soak. With --spawn the hub gets \
        --rate-limit-per-second (per ISPB) set to --limit-factor × the busiest PSP's share of --pull-rate, \
        so that the ramp crosses it. A pointer answered with anything but 200/204/429 is a pointer gap \
        (a violation: exit status 1).
        """)

    @OptionGroup var target: TargetOptions
    @OptionGroup var load: LoadOptions

    @Option(help: "Seconds at the soak rate before the ramp.") var warmSeconds = 10.0
    @Option(help: "Seconds of the ramp from 1× to 2×.") var rampSeconds = 10.0
    @Option(help: "Seconds back at 1× after the peak.") var recoverSeconds = 10.0
    @Option(help: "The hub's per-ISPB pull rate limit (requests/s); with --spawn it is set on the hub. Default with --spawn: --limit-factor × pull rate / PSPs; with --url: unknown.")
    var rateLimitPerSecond: Int?
    @Option(help: "With --spawn and no --rate-limit-per-second: the limit as a multiple of the busiest PSP's share of --pull-rate (a PSP with --streams-max streams); 1.75 puts the crossing three quarters into the ramp.")
    var limitFactor = 1.75

    func run() throws {
        let base = load.pullRate
        guard base > 0 else { throw ValidationError("burst needs a --pull-rate") }
        // The busiest PSP has --streams-max of the streams; streams get tickets in turn.
        let busiestShare = Double(load.streamsMax) / (Double(load.streamsMin + load.streamsMax) / 2 * Double(load.psps))
        let limit = rateLimitPerSecond ?? (target.spawn ? Int((base * busiestShare * limitFactor).rounded(.up)) : 0)
        let send = load.sendRate
        let segments = [
            Segment(name: "warm", seconds: warmSeconds, pullRateFrom: base, pullRateTo: base, sendRateFrom: send, sendRateTo: send),
            Segment(name: "ramp", seconds: rampSeconds, pullRateFrom: base, pullRateTo: 2 * base, sendRateFrom: send, sendRateTo: 2 * send),
            Segment(name: "peak", seconds: load.duration, pullRateFrom: 2 * base, pullRateTo: 2 * base, sendRateFrom: 2 * send, sendRateTo: 2 * send),
            Segment(name: "recover", seconds: recoverSeconds, pullRateFrom: base, pullRateTo: base, sendRateFrom: send, sendRateTo: send),
        ]
        let plan = Driver.Plan(
            kind: "burst", segments: segments,
            serverArguments: target.spawn && limit > 0 ? ["--rate-limit-per-second", String(limit)] : [],
            analyze: { Burst.analyze($0, base: base, limitPerISPB: limit, rampSeconds: rampSeconds) })
        let code = try Driver.execute(plan, target: target, load: load)
        if code != 0 { throw ExitCode(code) }
    }

    static func analyze(_ s: RunSummary, base: Double, limitPerISPB: Int, rampSeconds: Double)
        -> (results: [String: Any], headline: [(String, String)]) {
        let run = s.run
        var results: [String: Any] = ["basePullRate": base, "peakPullRate": 2 * base, "rateLimitPerISPB": limitPerISPB]
        var headline: [(String, String)] = []
        if limitPerISPB > 0 { headline.append(("rate limit per ISPB", "\(limitPerISPB)/s")) }
        // When the busiest PSP's offered rate crossed its limit: streams share the pulls evenly,
        // so a PSP's share is its streams over all streams (linear ramp from base to 2 × base).
        let busiest = Double(run.psps.map(\.streams.count).max() ?? 0) / Double(max(1, run.streamCount))
        let crossingRate = busiest > 0 ? Double(limitPerISPB) / busiest : 0
        var crossingMs: UInt64?
        if limitPerISPB > 0, let rampStart = run.phaseStartMs("ramp"), let warmStart = run.phaseStartMs("warm") {
            if crossingRate <= base {
                crossingMs = warmStart
            } else if crossingRate <= 2 * base {
                crossingMs = rampStart + UInt64((crossingRate - base) / base * rampSeconds * 1000)
            }
        }
        results["offeredRateAtCrossing"] = crossingRate
        results["busiestPSPShare"] = busiest
        if let c = crossingMs { results["limitCrossedAtSecond"] = Double(c - run.recorder.startMs) / 1000 }
        if let first = run.firstRateLimitedMs {
            results["first429AtSecond"] = Double(first - run.recorder.startMs) / 1000
            if let c = crossingMs {
                results["backPressureEngagedAfterMs"] = Int64(first) - Int64(c)
                headline.append(("429 engaged", String(format: "%.2f s after the busiest PSP's offered rate crossed %d/s (total %.0f/s)",
                                                      (Double(first) - Double(c)) / 1000, limitPerISPB, crossingRate)))
            } else {
                headline.append(("429 engaged", String(format: "at %.1f s", Double(first - run.recorder.startMs) / 1000)))
            }
        } else {
            headline.append(("429 engaged", crossingMs == nil ? "never (limit not crossed)" : "NO 429 although the limit was crossed"))
        }
        // Sustained back-pressure: the first second in which ≥ 5% of the pull requests got 429.
        let pullRoutes: [Route] = [.start, .next, .nextEmpty, .retry]
        let sustained = run.recorder.samples.first { s in
            guard ["warm", "ramp", "peak"].contains(s.phase) else { return false }
            let n = pullRoutes.reduce(UInt64(0)) { $0 + (s.routes[$1]?.count ?? 0) }
            let refused = pullRoutes.reduce(UInt64(0)) { $0 + (s.routes[$1]?.tooMany ?? 0) }
            return n > 0 && Double(refused) >= 0.05 * Double(n)
        }
        if let sustained {
            let at = Double(sustained.second)
            results["first5PercentRefusedSecond"] = at
            if let c = crossingMs {
                let crossing = Double(c - run.recorder.startMs) / 1000
                results["fivePercentRefusedAfterCrossingSeconds"] = at - crossing
                headline.append(("≥ 5% 429 in a second", String(format: "%+.0f s from the crossing (second %.0f)", at - crossing, at)))
            }
        } else {
            headline.append(("≥ 5% 429 in a second", "never"))
        }
        var byPhase: [String: Any] = [:]
        var admitted = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: RouteStats.latencyUsMax, numberOfSignificantValueDigits: .three)
        for name in ["warm", "ramp", "peak", "recover"] {
            guard let p = run.recorder.phase(name) else { continue }
            var h = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: RouteStats.latencyUsMax, numberOfSignificantValueDigits: .three)
            for r in [Route.start, .next, .retry, .delete] { h.add(p.routes[r]!.histogram) }
            if name == "ramp" || name == "peak" { admitted.add(h) }
            let requests = [Route.start, .next, .nextEmpty, .retry].reduce(UInt64(0)) { $0 + p.routes[$1]!.count }
            let refused = [Route.start, .next, .nextEmpty, .retry].reduce(UInt64(0)) { $0 + (p.routes[$1]!.statusCounts[429] ?? 0) }
            let p99 = h.totalCount == 0 ? 0 : Double(h.valueAtPercentile(99)) / 1000
            byPhase[name] = ["pullRequestsPerSecond": Double(requests) / max(0.001, p.seconds),
                             "admittedPerSecond": Double(requests - refused) / max(0.001, p.seconds),
                             "status429": refused, "admittedP99Ms": p99,
                             "sendsPerSecond": Double(p.routes[.send]!.count) / max(0.001, p.seconds),
                             "send429": p.routes[.send]!.statusCounts[429] ?? 0]
            headline.append(("\(name): pulls/s, 429, admitted p99", String(format: "%.0f/s, %llu, %.1f ms", Double(requests) / max(0.001, p.seconds), refused, p99)))
        }
        let p99 = admitted.totalCount == 0 ? 0 : Double(admitted.valueAtPercentile(99)) / 1000
        results["phases"] = byPhase
        results["admittedP99MsRampAndPeak"] = p99
        results["rateLimited429"] = run.rateLimited
        results["sendBackPressure429"] = run.sendBackPressure
        results["status429WithoutRetryAfter"] = run.tooManyWithoutRetryAfter
        let gaps = s.ledger.violationCounts[.pointerGap] ?? 0
        results["pointerGaps"] = gaps
        results["violations"] = s.ledger.violationTotal
        headline.insert(("result", s.ledger.violationTotal == 0 ? "PASS: no pointer gaps, no violations" : "FAIL: \(s.ledger.violationTotal) violations (\(gaps) pointer gaps)"), at: 0)
        headline.append(("admitted p99 (ramp + peak)", String(format: "%.1f ms", p99)))
        headline.append(("429 without Retry-After", "\(run.tooManyWithoutRetryAfter)"))
        headline.append(("messages sent / delivered / acked", "\(s.ledger.sent) / \(s.ledger.delivered) / \(s.ledger.acknowledged)"))
        headline.append(("drained", run.drained ? "yes" : "no (\(run.stopReason))"))
        return (results, headline)
    }
}
