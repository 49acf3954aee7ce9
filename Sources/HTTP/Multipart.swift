/// One part of a `multipart/mixed` body.
public struct MultipartPart: Sendable, Equatable {
    /// Header fields, names lower-cased.
    public var headers: [HTTPHeader]
    public var body: [UInt8]

    public init(headers: [HTTPHeader], body: [UInt8]) {
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.name == n }?.value
    }
}

public struct MultipartError: Error, Equatable, Sendable {
    /// What went wrong, for callers that map it to a response (never match on `detail`).
    public enum Kind: Sendable, Equatable {
        /// The framing is broken (boundary, CRLF, headers, an unclosed part).
        case malformed
        /// More parts than the caller allows.
        case tooManyParts
        /// Well framed, but not a single part between the boundaries.
        case noParts
    }

    public let kind: Kind
    public let detail: String
    public init(_ kind: Kind = .malformed, _ d: String) { self.kind = kind; detail = d }
    public init(_ d: String) { self.init(.malformed, d) }
}

/// RFC 2046 multipart bodies: a strict parser (CRLF only, bounded part count and header size)
/// and a builder that shares part payloads instead of copying them.
public enum Multipart {
    /// Longest header section of one part.
    public static let partHeaderBytesMax = 4096

    /// Parses `body` framed by `boundary`. The preamble and epilogue are ignored.
    public static func parse(_ body: [UInt8], boundary: String, partsMax: Int) throws -> [MultipartPart] {
        guard (1...70).contains(boundary.utf8.count) else { throw MultipartError("boundary must be 1-70 characters") }
        let dash = Array("--\(boundary)".utf8)
        let delimiter = [13, 10] + dash
        // The first boundary may start the body or follow a preamble line.
        var pos: Int
        if body.starts(with: dash) {
            pos = dash.count
        } else if let i = search(delimiter, in: body, from: 0) {
            pos = i + delimiter.count
        } else {
            throw MultipartError("no opening boundary")
        }
        var parts: [MultipartPart] = []
        while true {
            // After a boundary: "--" closes, CRLF opens a part (transport padding tolerated).
            while pos < body.count && (body[pos] == 32 || body[pos] == 9) { pos += 1 }
            if pos + 1 < body.count && body[pos] == 45 && body[pos + 1] == 45 {
                guard !parts.isEmpty else { throw MultipartError(.noParts, "no part between the boundaries") }
                return parts
            }
            guard pos + 1 < body.count, body[pos] == 13, body[pos + 1] == 10 else {
                throw MultipartError("boundary not followed by CRLF")
            }
            pos += 2
            guard parts.count < partsMax else { throw MultipartError(.tooManyParts, "more than \(partsMax) parts") }
            guard let next = search(delimiter, in: body, from: pos) else { throw MultipartError("part \(parts.count + 1) not closed") }
            parts.append(try parsePart(body[pos..<next], index: parts.count + 1))
            pos = next + delimiter.count
        }
    }

    private static func parsePart(_ bytes: ArraySlice<UInt8>, index: Int) throws -> MultipartPart {
        var headers: [HTTPHeader] = []
        var pos = bytes.startIndex
        while true {
            guard let lf = bytes[pos...].firstIndex(of: 10) else { throw MultipartError("part \(index): unterminated headers") }
            guard lf > pos - 0, lf > bytes.startIndex, bytes[lf - 1] == 13 else {
                throw MultipartError("part \(index): bare LF in headers")
            }
            guard lf - bytes.startIndex <= partHeaderBytesMax else { throw MultipartError("part \(index): headers too large") }
            let line = bytes[pos..<lf - 1]
            pos = lf + 1
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                  line[line.startIndex..<colon].allSatisfy(HTTPRequestParser.isTokenByte) else {
                throw MultipartError("part \(index): malformed header line")
            }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased()
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: " \t")
            headers.append(HTTPHeader(name, value))
        }
        return MultipartPart(headers: headers, body: Array(bytes[pos...]))
    }

    /// First index of `needle` in `hay` at or after `from`.
    public static func search(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard needle.count > 0, hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
        let first = needle[0]
        return hay.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n in
                var i = from
                let last = h.count - n.count
                while i <= last {
                    if h[i] == first {
                        var j = 1
                        while j < n.count && h[i + j] == n[j] { j += 1 }
                        if j == n.count { return i }
                    }
                    i += 1
                }
                return nil
            }
        }
    }

    /// Builds a `multipart/mixed` body as chunks: small framing arrays around the shared
    /// payloads. Returns the chunks and the `Content-Type` value.
    public static func build(parts: [(headers: [HTTPHeader], body: [UInt8])], boundary: String) -> (chunks: [[UInt8]], contentType: String) {
        var chunks: [[UInt8]] = []
        chunks.reserveCapacity(parts.count * 2 + 1)
        var prefix = "--\(boundary)\r\n"
        for part in parts {
            for h in part.headers { prefix += "\(h.name): \(h.value)\r\n" }
            prefix += "\r\n"
            chunks.append(Array(prefix.utf8))
            chunks.append(part.body)
            prefix = "\r\n--\(boundary)\r\n"
        }
        chunks.append(Array((parts.isEmpty ? "--\(boundary)--\r\n" : "\r\n--\(boundary)--\r\n").utf8))
        return (chunks, "multipart/mixed; boundary=\(boundary)")
    }
}
