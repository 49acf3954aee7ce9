import Foundation

/// What a soak or burst run produced, in the shapes the JSON summary and the HTML report use.
struct RunSummary {
    let kind: String
    let command: String
    let run: Run
    let ledger: Ledger.Report
    /// Command-specific results (verdict, burst analysis), already JSON-shaped.
    var results: [String: Any] = [:]
    var environment: [String: Any] = [:]

    /// Pull requests answered (start, next incl. 204, retries) in `phase`, per second.
    static func pullRate(_ phase: Recorder.Phase) -> Double {
        guard phase.seconds > 0 else { return 0 }
        let n = [Route.start, .next, .nextEmpty, .retry].reduce(UInt64(0)) { $0 + phase.routes[$1]!.count }
        return Double(n) / phase.seconds
    }

    /// Per-second pull counts of the samples of `phase`, without its first and last second
    /// (partial seconds at the boundaries).
    static func pullSeconds(_ samples: [Recorder.Sample], phase: String) -> [UInt64] {
        let xs = samples.filter { $0.phase == phase }.map { s in
            [Route.start, .next, .nextEmpty, .retry].reduce(UInt64(0)) { $0 + (s.routes[$1]?.count ?? 0) }
        }
        return xs.count > 2 ? Array(xs.dropFirst().dropLast()) : xs
    }

    func json() -> [String: Any] {
        var phases: [[String: Any]] = []
        for p in run.recorder.phases where p.seconds > 0 || p.routes.values.contains(where: { $0.count > 0 }) {
            var routes: [String: Any] = [:]
            for (route, stats) in p.routes where stats.count > 0 || stats.failureCount > 0 {
                routes[route.rawValue] = stats.summary(seconds: p.seconds)
            }
            phases.append(["name": p.name, "seconds": p.seconds, "pullRequestsPerSecond": RunSummary.pullRate(p), "routes": routes])
        }
        var timeline: [[String: Any]] = []
        for s in run.recorder.samples {
            var routes: [String: Any] = [:]
            for (route, r) in s.routes where r.count > 0 || r.failures > 0 {
                routes[route.rawValue] = ["count": r.count, "failures": r.failures, "status429": r.tooMany,
                                          "p50Ms": r.p50Ms, "p99Ms": r.p99Ms, "maxMs": r.maxMs]
            }
            timeline.append(["second": s.second, "phase": s.phase, "routes": routes, "gauges": s.gauges])
        }
        var violationCounts: [String: Int] = [:]
        for (k, v) in ledger.violationCounts { violationCounts[k.rawValue] = v }
        let c = run.counters
        let slotRefusals = run.psps.reduce(0) { $0 + $1.slotRefusals }
        let unexpectedSlotRefusals = run.psps.reduce(0) { $0 + $1.unexpectedSlotRefusals }
        var refused: [String: Int] = [:]
        for (k, v) in run.messagesRefused { refused[String(k)] = v }
        return [
            "kind": kind,
            "command": command,
            "stopReason": run.stopReason,
            "drained": run.drained,
            "environment": environment,
            "scenario": scenarioJSON(),
            "results": results,
            "preload": ["messages": run.preloadStored, "seconds": run.preloadSeconds,
                        "messagesPerSecond": run.preloadSeconds > 0 ? Double(run.preloadStored) / run.preloadSeconds : 0],
            "phases": phases,
            "correctness": [
                "violations": ledger.violationTotal,
                "violationCounts": violationCounts,
                "violationSamples": ledger.violations.map(\.description),
                "messagesSent": ledger.sent,
                "idempotentResends": ledger.sentAgain,
                "messagesDelivered": ledger.delivered,
                "deliveries": ledger.deliveries,
                "redeliveredByPointerRetry": ledger.redeliveredByRetry,
                "redeliveredAfterAbandonment": ledger.redeliveredAfterAbandon,
                "redeliveredAfterStreamGone": ledger.redeliveredAfterGone,
                "acknowledged": ledger.acknowledged,
                "unacknowledgedAtEnd": ledger.unacknowledgedAtEnd,
                "unknownIdsDelivered": ledger.unknownDelivered,
                "pointerRetriesChecked": run.retriesChecked,
            ],
            "streams": [
                "opened": ledger.streams, "closedWithDelete": run.streamsClosed, "abandoned": run.streamsAbandoned,
                "slotRefusals429": slotRefusals, "slotRefusalsBelowLimit": unexpectedSlotRefusals,
                "slotRefusalsBelowLimitSamples": run.psps.flatMap(\.refusalSamples).prefix(20).map { $0 },
            ],
            "connections": ["opened": c.connects, "fullHandshakes": c.fullHandshakes, "resumedHandshakes": c.resumedHandshakes,
                            "failures": c.failures],
            "send": ["messagesRefusedByPartStatus": refused, "problems": run.sendProblems],
            "unexpectedStatuses": run.unexpectedStatuses,
            "timeline": timeline,
        ]
    }

    private func scenarioJSON() -> [String: Any] {
        let s = run.scenario
        return [
            "psps": s.ispbs.count, "streams": run.streamCount, "producers": run.producerCount,
            "streamsPerPSP": [s.streamsMin, s.streamsMax],
            "batchesPerStream": s.batchesPerStream.map { [$0.lowerBound, $0.upperBound] } ?? [],
            "abandonFraction": s.abandonFraction, "retryFraction": s.retryFraction,
            "accept": s.multipart ? "multipart/mixed" : "application/xml",
            "messagesPerPost": s.messagesPerPost, "preloadMessages": s.preloadMessages,
            "streamIdleSeconds": s.idleSeconds, "longPollSeconds": s.longPollSeconds, "seed": s.seed,
            "tls": run.target.tls,
            "segments": s.segments.map { ["name": $0.name, "seconds": $0.seconds,
                                          "pullRate": [$0.pullRateFrom, $0.pullRateTo],
                                          "sendRate": [$0.sendRateFrom, $0.sendRateTo]] },
        ]
    }
}
