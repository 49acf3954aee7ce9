import Foundation

/// The self-contained HTML report of a soak or burst run: headline results, throughput,
/// latency, CPU and backlog over time (inline SVG), per-phase percentiles, correctness.
enum HTMLReport {
    static func render(_ summary: RunSummary, headline: [(String, String)]) -> String {
        let run = summary.run
        let samples = run.recorder.samples
        let markers = run.recorder.phases.dropFirst().map { (x: Double($0.startMs - run.recorder.startMs) / 1000, label: $0.name) }
        func series(_ name: String, _ color: String, dashed: Bool = false, _ value: (Recorder.Sample) -> Double) -> SVGChart.Series {
            SVGChart.Series(name: name, color: color, points: samples.map { (Double($0.second), value($0)) }, dashed: dashed)
        }
        func count(_ s: Recorder.Sample, _ routes: [Route]) -> Double {
            Double(routes.reduce(UInt64(0)) { $0 + (s.routes[$1]?.count ?? 0) })
        }
        var charts: [SVGChart] = []
        charts.append(SVGChart(title: "Requests per second", yLabel: "requests/s", series: [
            series("pull requests", "#1f77b4") { count($0, [.start, .next, .nextEmpty, .retry]) },
            series("pull target", "#1f77b4", dashed: true) { $0.gauges["pull_target"] ?? 0 },
            series("POST /msgs", "#ff7f0e") { count($0, [.send]) },
            series("DELETE", "#2ca02c") { count($0, [.delete]) },
            series("429", "#d62728") { Double($0.routes.values.reduce(UInt64(0)) { $0 + $1.tooMany }) },
        ], markers: markers))
        charts.append(SVGChart(title: "Messages per second", yLabel: "messages/s", series: [
            series("sent (201)", "#ff7f0e") { $0.gauges["messages_sent"] ?? 0 },
            series("delivered", "#1f77b4") { $0.gauges["messages_delivered"] ?? 0 },
            series("acknowledged", "#2ca02c") { $0.gauges["messages_acked"] ?? 0 },
        ], markers: markers))
        charts.append(SVGChart(title: "Latency per second (GET next with messages, POST, start)", yLabel: "ms", series: [
            series("next p50", "#9ecae1") { $0.routes[.next]?.p50Ms ?? 0 },
            series("next p99", "#1f77b4") { $0.routes[.next]?.p99Ms ?? 0 },
            series("start p99", "#9467bd") { $0.routes[.start]?.p99Ms ?? 0 },
            series("send p99", "#ff7f0e") { $0.routes[.send]?.p99Ms ?? 0 },
        ], markers: markers))
        let cpuKeys = Set(samples.flatMap { $0.gauges.keys.filter { $0.hasPrefix("cpu_") } }).sorted()
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b"]
        charts.append(SVGChart(title: "CPU (100% = one core; the machine has \(ProcessInfo.processInfo.activeProcessorCount))", yLabel: "%",
                               series: cpuKeys.enumerated().map { i, k in
                                   series(String(k.dropFirst(4)), colors[i % colors.count]) { $0.gauges[k] ?? 0 }
                               }, markers: markers))
        charts.append(SVGChart(title: "Backlog (sent, not yet acknowledged)", yLabel: "messages", series: [
            series("backlog", "#8c564b") { $0.gauges["backlog"] ?? 0 },
        ], markers: markers))

        var h = """
        <!DOCTYPE html><html><head><meta charset="utf-8"><title>rtpstream \(escape(summary.kind))</title>
        <style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}
        td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
        .bad{color:#b00;font-weight:bold}.good{color:#070;font-weight:bold}code{background:#f3f3f3;padding:1px 4px}</style></head><body>
        <h1>rtpstream \(escape(summary.kind))</h1><p><code>\(escape(summary.command))</code></p>
        """
        h += "<table>"
        for (k, v) in headline {
            let cls = v.hasPrefix("FAIL") || v.hasPrefix("NO") ? " class=\"bad\"" : (v.hasPrefix("PASS") || v.hasPrefix("YES") ? " class=\"good\"" : "")
            h += "<tr><td>\(escape(k))</td><td\(cls)>\(escape(v))</td></tr>"
        }
        h += "</table>"
        for c in charts { h += c.render() + "<br>" }
        h += "<h2>Latency by phase and route (ms)</h2><table><tr><th>phase</th><th>route</th><th>count</th><th>/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>statuses</th><th>failures</th></tr>"
        for p in run.recorder.phases {
            for route in Route.allCases {
                let r = p.routes[route]!
                guard r.count > 0 || r.failureCount > 0 else { continue }
                let statuses = r.statusCounts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
                let failures = r.failures.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
                h += "<tr><td>\(escape(p.name))</td><td>\(route.rawValue)</td><td>\(r.count)</td>"
                h += String(format: "<td>%.0f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td>",
                            p.seconds > 0 ? Double(r.count) / p.seconds : 0, r.percentileMs(50), r.percentileMs(90),
                            r.percentileMs(99), r.percentileMs(99.9), r.maxMs)
                h += "<td>\(escape(statuses))</td><td>\(escape(failures))</td></tr>"
            }
        }
        h += "</table>"
        let l = summary.ledger
        h += "<h2>Correctness</h2><table>"
        let rows: [(String, Int)] = [
            ("messages sent (201)", l.sent), ("idempotent resends", l.sentAgain), ("messages delivered", l.delivered),
            ("deliveries (incl. redeliveries)", l.deliveries), ("redelivered by pointer retry", l.redeliveredByRetry),
            ("redelivered after abandonment", l.redeliveredAfterAbandon), ("redelivered after 404/410", l.redeliveredAfterGone),
            ("acknowledged", l.acknowledged), ("unacknowledged at the end", l.unacknowledgedAtEnd),
            ("pointer retries checked", run.retriesChecked), ("streams opened", l.streams),
            ("streams abandoned", run.streamsAbandoned), ("violations", l.violationTotal),
        ]
        for (k, v) in rows {
            let cls = k == "violations" ? (v == 0 ? " class=\"good\"" : " class=\"bad\"") : ""
            h += "<tr><td>\(escape(k))</td><td\(cls)>\(v)</td></tr>"
        }
        h += "</table>"
        if !l.violations.isEmpty {
            h += "<h3>Violations (first \(l.violations.count))</h3><ul>"
            for v in l.violations { h += "<li><code>\(escape(v.description))</code></li>" }
            h += "</ul>"
        }
        if let json = try? JSONSerialization.data(withJSONObject: summary.results, options: [.prettyPrinted, .sortedKeys]) {
            h += "<h2>Results</h2><pre>\(escape(String(decoding: json, as: UTF8.self)))</pre>"
        }
        h += "</body></html>\n"
        return h
    }
}
