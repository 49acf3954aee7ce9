import Glibc

/// What the load generator needs from one part of a `multipart/mixed` body.
struct PartInfo: Equatable {
    var resourceID: ResourceKey?
    /// `PI-Part-Status` (send responses).
    var status: Int?
    /// Bytes of the part's body.
    var bodyBytes: Int
}

/// Finds the parts of a `multipart/mixed` body without copying or parsing them: part headers
/// are read, part bodies are skipped by looking for the next delimiter.
///
/// The delimiter search jumps from one CR to the next with `memchr`: the XML payloads have LF
/// line ends, so in practice only framing CRs are visited. Bodies containing CRs are still
/// handled correctly, only more slowly.
enum PartScanner {
    enum ScanError: Error, CustomStringConvertible {
        case malformed(String)
        var description: String {
            switch self { case .malformed(let d): "malformed multipart body: \(d)" }
        }
    }

    /// Appends one `PartInfo` per part to `parts` (which the caller reuses).
    static func scan(_ body: UnsafeRawBufferPointer, boundary: [UInt8], into parts: inout [PartInfo]) throws {
        guard !boundary.isEmpty, let base = body.baseAddress else { throw ScanError.malformed("empty body or boundary") }
        let count = body.count
        // "--boundary" at the very start, or after a preamble as "\r\n--boundary".
        var pos: Int
        if hasDashBoundary(body, at: 0, boundary) {
            pos = 2 + boundary.count
        } else if let d = nextDelimiter(body, from: 0, boundary) {
            pos = d + 4 + boundary.count
        } else {
            throw ScanError.malformed("no opening boundary")
        }
        while true {
            guard pos + 1 < count else { throw ScanError.malformed("truncated after a boundary") }
            if body[pos] == 45 && body[pos + 1] == 45 { return }  // closing "--"
            guard body[pos] == 13 && body[pos + 1] == 10 else { throw ScanError.malformed("boundary not followed by CRLF") }
            pos += 2
            var part = PartInfo(resourceID: nil, status: nil, bodyBytes: 0)
            // Header lines until an empty line.
            while true {
                guard pos < count, let lfPointer = memchr(base + pos, 10, count - pos) else {
                    throw ScanError.malformed("unterminated part headers")
                }
                let lf = UnsafeRawPointer(lfPointer) - base
                guard lf > pos, body[lf - 1] == 13 else { throw ScanError.malformed("bare LF in part headers") }
                let lineEnd = lf - 1
                if lineEnd == pos {
                    pos = lf + 1
                    break
                }
                readHeader(UnsafeRawBufferPointer(rebasing: body[pos..<lineEnd]), into: &part)
                pos = lf + 1
            }
            guard let d = nextDelimiter(body, from: pos, boundary) else { throw ScanError.malformed("part not closed") }
            part.bodyBytes = d - pos
            parts.append(part)
            pos = d + 4 + boundary.count
        }
    }

    private static func readHeader(_ line: UnsafeRawBufferPointer, into part: inout PartInfo) {
        guard let colon = line.firstIndex(of: 58) else { return }
        var v = colon + 1
        while v < line.count && (line[v] == 32 || line[v] == 9) { v += 1 }
        var e = line.count
        while e > v && (line[e - 1] == 32 || line[e - 1] == 9) { e -= 1 }
        let name = UnsafeRawBufferPointer(rebasing: line[0..<colon])
        let value = UnsafeRawBufferPointer(rebasing: line[v..<e])
        if name.count == 13 && ResponseHead.equalsLowercase(name, "pi-resourceid") {
            part.resourceID = ResourceKey(hex: value)
        } else if name.count == 14 && ResponseHead.equalsLowercase(name, "pi-part-status") {
            part.status = ResponseHead.digits(value, 0, value.count)
        }
    }

    private static func hasDashBoundary(_ body: UnsafeRawBufferPointer, at i: Int, _ boundary: [UInt8]) -> Bool {
        guard i + 2 + boundary.count <= body.count, body[i] == 45, body[i + 1] == 45 else { return false }
        return boundary.withUnsafeBytes { memcmp(body.baseAddress! + i + 2, $0.baseAddress!, boundary.count) == 0 }
    }

    /// Index of the next "\r\n--boundary" at or after `from`.
    static func nextDelimiter(_ body: UnsafeRawBufferPointer, from: Int, _ boundary: [UInt8]) -> Int? {
        let base = body.baseAddress!
        var i = from
        let last = body.count - 4 - boundary.count
        while i <= last {
            guard let cr = memchr(base + i, 13, last - i + 1) else { return nil }
            let at = UnsafeRawPointer(cr) - base
            if body[at + 1] == 10 && hasDashBoundary(body, at: at + 2, boundary) { return at }
            i = at + 1
        }
        return nil
    }
}
