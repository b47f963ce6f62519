import Foundation

/// Draws one scenario run as an SVG picture: a row per client with its critical sections
/// over time, the fault phase shaded, each injected fault marked, and every stretch where two
/// sections' validity windows overlap in red. Self-contained SVG 1.1, no scripts or fonts
/// beyond the generic sans-serif.
package enum Timeline {
    /// The picture of `records` (the run's attempts), `phases` and the moments faults were
    /// injected (`injections`, in ``monotonicNanoseconds()``).
    package static func svg(title: String, records: [AttemptRecord], phases: Phases, injections: [Int64], clients: Int) -> String {
        let width = 900.0
        let left = 90.0
        let right = 20.0
        let rowHeight = 26.0
        let top = 44.0
        let rows = max(clients, records.map(\.client).max().map { $0 + 1 } ?? 0)
        let height = top + Double(rows) * rowHeight + 56
        let start = phases.baseline
        let end = max(phases.end, records.map(\.exit).max() ?? phases.end)
        let span = Double(max(end - start, 1))
        func x(_ time: Int64) -> Double { left + (width - left - right) * Double(min(max(time, start), end) - start) / span }
        func y(_ client: Int) -> Double { top + Double(client) * rowHeight }

        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="18" font-size="14" font-weight="bold">\(escape(title))</text>

            """
        // The fault phase.
        out += rect(x(phases.fault), top - 6, x(phases.healed) - x(phases.fault), Double(rows) * rowHeight + 6, fill: "#fde9c8")
        out += text(x(phases.fault) + 3, top - 10, "fault", fill: "#8a5a00")
        for client in 0..<rows {
            out += text(8, y(client) + 16, "client \(client)")
            out += line(left, y(client) + rowHeight - 2, width - right, y(client) + rowHeight - 2, stroke: "#e0e0e0")
        }
        let sections = records.filter { $0.outcome == "ok" }
        for section in sections {
            let from = x(section.enter)
            let validEnd = x(min(section.exit, section.validUntil))
            out += rect(from, y(section.client) + 4, max(validEnd - from, 1), rowHeight - 10, fill: "#4a7fb5")
            if section.exit > section.validUntil {
                // Ran on past its validity: hatched in grey.
                out += rect(validEnd, y(section.client) + 9, max(x(section.exit) - validEnd, 1), rowHeight - 20, fill: "#9a9a9a")
            }
        }
        // Overlaps of validity windows: two holders at once.
        let windows = sections.map { (client: $0.client, start: $0.enter, end: min($0.exit, $0.validUntil)) }.sorted { $0.start < $1.start }
        var overlaps = 0
        for (index, window) in windows.enumerated() {
            for later in windows[(index + 1)...] where later.start < window.end {
                overlaps += 1
                let from = x(later.start)
                let to = x(min(window.end, later.end))
                for client in [window.client, later.client] {
                    out += rect(from, y(client) + 2, max(to - from, 2), rowHeight - 6, fill: "#d62728")
                }
            }
        }
        for moment in injections {
            out += line(x(moment), top - 6, x(moment), top + Double(rows) * rowHeight, stroke: "#8a5a00", dash: true)
        }
        let axis = top + Double(rows) * rowHeight + 14
        let seconds = Int(span / 1e9)
        for second in 0...max(seconds, 0) {
            let at = start + Int64(second) * 1_000_000_000
            out += text(x(at) - 4, axis + 4, "\(second) s", fill: "#555555")
        }
        let legend = axis + 26
        out += rect(left, legend - 10, 14, 10, fill: "#4a7fb5") + text(left + 18, legend, "holding, inside its validity")
        out += rect(left + 210, legend - 10, 14, 10, fill: "#9a9a9a") + text(left + 228, legend, "running past its validity")
        out += rect(left + 410, legend - 10, 14, 10, fill: "#d62728") + text(left + 428, legend, "two holders at once (\(overlaps))")
        out += line(left + 610, legend - 10, left + 610, legend, stroke: "#8a5a00", dash: true) + text(left + 616, legend, "fault injected")
        return out + "</svg>\n"
    }

    private static func rect(_ x: Double, _ y: Double, _ width: Double, _ height: Double, fill: String) -> String {
        "<rect x=\"\(round(x))\" y=\"\(round(y))\" width=\"\(round(width))\" height=\"\(round(height))\" fill=\"\(fill)\"/>\n"
    }

    private static func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, dash: Bool = false) -> String {
        "<line x1=\"\(round(x1))\" y1=\"\(round(y1))\" x2=\"\(round(x2))\" y2=\"\(round(y2))\" stroke=\"\(stroke)\"\(dash ? " stroke-dasharray=\"4 3\"" : "")/>\n"
    }

    private static func text(_ x: Double, _ y: Double, _ content: String, fill: String = "#222222") -> String {
        "<text x=\"\(round(x))\" y=\"\(round(y))\" fill=\"\(fill)\">\(escape(content))</text>\n"
    }

    private static func round(_ value: Double) -> String { String(Double(Int((value * 10).rounded())) / 10) }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
