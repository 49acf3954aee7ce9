import Foundation

/// A line chart as inline SVG (no scripts, no external resources): axes with round ticks,
/// one polyline per series, a legend, and labelled vertical markers (phase boundaries).
struct SVGChart {
    struct Series {
        let name: String
        let color: String
        let points: [(x: Double, y: Double)]
        var dashed = false
    }

    var title: String
    var yLabel: String
    var series: [Series]
    var markers: [(x: Double, label: String)] = []
    var width = 960.0
    var height = 280.0
    var logScale = false

    private let left = 64.0, right = 16.0, top = 28.0, bottom = 44.0

    func render() -> String {
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { return "<p><em>\(escape(title)): no data</em></p>" }
        let xMin = all.map(\.x).min()!, xMax = max(all.map(\.x).max()!, xMinPlusOne(all.map(\.x).min()!))
        let yMaxRaw = max(all.map(\.y).max()!, 1e-9)
        let yTicks = SVGChart.niceTicks(max: yMaxRaw)
        let yMax = yTicks.last!
        let plotW = width - left - right, plotH = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotW }
        func py(_ y: Double) -> Double { top + plotH - min(max(y, 0), yMax) / yMax * plotH }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" "
        s += "viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">"
        s += "<text x=\"\(left)\" y=\"16\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>"
        for t in yTicks {
            let y = py(t)
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(width - right))\" y2=\"\(f(y))\" stroke=\"#e4e4e4\"/>"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(SVGChart.label(t))</text>"
        }
        for t in SVGChart.niceTicks(max: xMax - xMin, count: 10) {
            let x = px(xMin + t)
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top + plotH))\" x2=\"\(f(x))\" y2=\"\(f(top + plotH + 4))\" stroke=\"#888\"/>"
            s += "<text x=\"\(f(x))\" y=\"\(f(top + plotH + 16))\" text-anchor=\"middle\">\(SVGChart.label(xMin + t))</text>"
        }
        s += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 6))\" text-anchor=\"middle\">seconds since start</text>"
        s += "<text x=\"12\" y=\"\(f(top + plotH / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(f(top + plotH / 2)))\">\(escape(yLabel))</text>"
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#888\"/>"
        for m in markers where m.x >= xMin && m.x <= xMax {
            let x = px(m.x)
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(top + plotH))\" stroke=\"#999\" stroke-dasharray=\"3,3\"/>"
            s += "<text x=\"\(f(x + 3))\" y=\"\(f(top + 10))\" fill=\"#666\">\(escape(m.label))</text>"
        }
        for serie in series where !serie.points.isEmpty {
            let pts = serie.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(serie.color)\" stroke-width=\"1.5\" "
            if serie.dashed { s += "stroke-dasharray=\"6,3\" " }
            s += "points=\"\(pts)\"/>"
        }
        var lx = left + 8
        for serie in series {
            s += "<rect x=\"\(f(lx))\" y=\"\(f(top + 6))\" width=\"10\" height=\"3\" fill=\"\(serie.color)\"/>"
            s += "<text x=\"\(f(lx + 14))\" y=\"\(f(top + 11))\">\(escape(serie.name))</text>"
            lx += 24 + Double(serie.name.count) * 6.2
        }
        s += "</svg>"
        return s
    }

    private func xMinPlusOne(_ x: Double) -> Double { x + 1 }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// 0 and round steps (1, 2, 5 × 10^k) up to at least `max`.
    static func niceTicks(max: Double, count: Int = 5) -> [Double] {
        guard max > 0 else { return [0, 1] }
        let rough = max / Double(count)
        let magnitude = pow(10, floor(log10(rough)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
        var ticks: [Double] = []
        var t = 0.0
        while t < max + step * 0.999 {
            ticks.append(t)
            t += step
            if ticks.count > 50 { break }
        }
        if ticks.count < 2 { ticks.append(step) }
        return ticks
    }

    static func label(_ v: Double) -> String {
        if v >= 1_000_000 { return String(format: "%gM", v / 1_000_000) }
        if v >= 10_000 { return String(format: "%gk", v / 1000) }
        if v == floor(v) { return String(Int(v)) }
        return String(format: "%g", v)
    }
}

func escape(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "&": out += "&amp;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}
