import Glibc

/// One linear pass over a document's bytes before libxml2 sees it. It refuses
///
/// - anything that is not UTF-8 (`not-well-formed`): a UTF-16 or UTF-32 byte order mark, a NUL
///   byte (UTF-16/32 text, or binary), an XML declaration whose `encoding` is not UTF-8 or
///   US-ASCII (case-insensitive), an invalid UTF-8 sequence (overlong, surrogate, beyond
///   U+10FFFF, truncated), a byte above 0x7F in a document declared US-ASCII;
/// - documents over a per-document work bound (`document-too-complex`): attributes or namespace
///   declarations on one element, namespace declarations in the document, one attribute value's
///   or one text run's bytes (`ValidationLimits`).
///
/// It is not a parser: it only tokenizes tags far enough to count, and it is lenient where the
/// input is malformed (a name without `=` still counts as an attribute; an unterminated quote runs
/// to the end), so that whatever libxml2 would go on to read has been counted. libxml2 still
/// decides well-formedness. A DOCTYPE ends the scan: the parser refuses it at once.
public enum DocumentPreScan {
    /// Why the scan refused; `limit` names the bound for metrics (nil for encoding refusals).
    public struct Refusal: Equatable, Sendable {
        public let code: RejectCode
        public let limit: Limit?
        public let detail: String
        public let line: Int?
    }

    /// The bound a `document-too-complex` refusal hit (metric label values).
    public enum Limit: String, Sendable, CaseIterable {
        case attributesPerElement = "attributes-per-element"
        case namespaceDeclarationsPerElement = "namespace-declarations-per-element"
        case namespaceDeclarationsPerDocument = "namespace-declarations-per-document"
        case attributeValueBytes = "attribute-value-bytes"
        case textBytes = "text-bytes"
        case cpuTime = "cpu-time"
    }

    /// Scans `bytes`; nil when libxml2 may parse them.
    public static func scan(_ bytes: UnsafeRawBufferPointer, limits: ValidationLimits) -> Refusal? {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else { return nil }
        let p = UnsafeBufferPointer(start: base, count: bytes.count)
        switch encoding(p) {
        case .refused(let detail, let offset):
            return Refusal(code: .notWellFormed, limit: nil, detail: "encoding: " + detail, line: line(p, offset))
        case .ok(let start, let asciiOnly):
            if let (detail, offset) = utf8Error(p, from: start, asciiOnly: asciiOnly) {
                return Refusal(code: .notWellFormed, limit: nil, detail: "encoding: " + detail, line: line(p, offset))
            }
            return structure(p, from: start, limits: limits)
        }
    }

    /// Convenience for byte arrays.
    public static func scan(_ bytes: [UInt8], limits: ValidationLimits) -> Refusal? {
        bytes.withUnsafeBytes { scan($0, limits: limits) }
    }

    // MARK: - encoding

    enum Encoding: Equatable {
        case ok(start: Int, asciiOnly: Bool)
        case refused(String, offset: Int)
    }

    static func encoding(_ p: UnsafeBufferPointer<UInt8>) -> Encoding {
        let n = p.count
        func has(_ prefix: [UInt8]) -> Bool { n >= prefix.count && zip(prefix, p).allSatisfy { $0 == $1 } }
        if has([0x00, 0x00, 0xFE, 0xFF]) || has([0xFF, 0xFE, 0x00, 0x00]) {
            return .refused("UTF-32 byte order mark; only UTF-8 is accepted", offset: 0)
        }
        if has([0xFE, 0xFF]) || has([0xFF, 0xFE]) {
            return .refused("UTF-16 byte order mark; only UTF-8 is accepted", offset: 0)
        }
        let start = has([0xEF, 0xBB, 0xBF]) ? 3 : 0
        // `<?xml` + whitespace: read the declaration's encoding pseudo-attribute (XML 1.0 §4.3.3).
        guard has(Array("<?xml".utf8)) || (start == 3 && n >= 8 && Array(p[3..<8]) == Array("<?xml".utf8)) else {
            return .ok(start: start, asciiOnly: false)
        }
        var i = start + 5
        guard i < n, isSpace(p[i]) else { return .ok(start: start, asciiOnly: false) }
        let end = min(n, i + 256)   // a declaration is short; libxml2 reports a longer one as malformed
        while i < end {
            if p[i] == UInt8(ascii: "?") { break }
            if p[i] == UInt8(ascii: "e"), i + 8 <= end, Array(p[i..<(i + 8)]) == Array("encoding".utf8) {
                var j = i + 8
                while j < end, isSpace(p[j]) { j += 1 }
                guard j < end, p[j] == UInt8(ascii: "=") else { i += 1; continue }
                j += 1
                while j < end, isSpace(p[j]) { j += 1 }
                guard j < end, p[j] == UInt8(ascii: "\"") || p[j] == UInt8(ascii: "'") else { break }
                let quote = p[j]
                var k = j + 1
                while k < end, p[k] != quote { k += 1 }
                let name = String(decoding: p[(j + 1)..<k].prefix(40), as: UTF8.self).lowercased()
                switch name {
                case "utf-8": return .ok(start: start, asciiOnly: false)
                case "us-ascii", "ascii": return .ok(start: start, asciiOnly: true)
                default:
                    let shown = String(decoding: p[(j + 1)..<k].prefix(40).map { (0x21...0x7E).contains($0) ? $0 : UInt8(ascii: "?") },
                                       as: UTF8.self)
                    return .refused("declared encoding '\(shown)'; only UTF-8 (or US-ASCII) is accepted", offset: j)
                }
            }
            i += 1
        }
        return .ok(start: start, asciiOnly: false)
    }

    /// The first invalid UTF-8 sequence (or NUL, or non-ASCII byte when `asciiOnly`), with its offset.
    static func utf8Error(_ p: UnsafeBufferPointer<UInt8>, from start: Int, asciiOnly: Bool) -> (String, Int)? {
        let n = p.count
        var i = start
        let raw = UnsafeRawBufferPointer(p)
        while i < n {
            // Fast path: eight ASCII bytes, none of them NUL (most of every message).
            while i + 8 <= n {
                let w = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                let high: UInt64 = 0x8080_8080_8080_8080
                guard w & high == 0, (w &- 0x0101_0101_0101_0101) & ~w & high == 0 else { break }
                i += 8
            }
            guard i < n else { break }
            let b = p[i]
            if b < 0x80 {
                if b == 0 { return ("NUL byte at offset \(i) (UTF-16 or UTF-32 text?); only UTF-8 is accepted", i) }
                i += 1
                continue
            }
            if asciiOnly { return ("byte 0x\(hex(b)) at offset \(i) in a document declared US-ASCII", i) }
            let length: Int, low: UInt8, high: UInt8
            switch b {
            case 0xC2...0xDF: length = 2; low = 0x80; high = 0xBF
            case 0xE0: length = 3; low = 0xA0; high = 0xBF           // no overlongs
            case 0xE1...0xEC, 0xEE...0xEF: length = 3; low = 0x80; high = 0xBF
            case 0xED: length = 3; low = 0x80; high = 0x9F           // no surrogates
            case 0xF0: length = 4; low = 0x90; high = 0xBF           // no overlongs
            case 0xF1...0xF3: length = 4; low = 0x80; high = 0xBF
            case 0xF4: length = 4; low = 0x80; high = 0x8F           // not beyond U+10FFFF
            default: return ("invalid UTF-8 byte 0x\(hex(b)) at offset \(i)", i)
            }
            guard i + length <= n else { return ("truncated UTF-8 sequence at offset \(i)", i) }
            guard (low...high).contains(p[i + 1]) else { return ("invalid UTF-8 sequence at offset \(i)", i) }
            for k in 2..<length where !(0x80...0xBF).contains(p[i + k]) {
                return ("invalid UTF-8 sequence at offset \(i)", i)
            }
            i += length
        }
        return nil
    }

    // MARK: - structure

    static func structure(_ p: UnsafeBufferPointer<UInt8>, from start: Int, limits: ValidationLimits) -> Refusal? {
        let n = p.count
        let lt = UInt8(ascii: "<"), gt = UInt8(ascii: ">")
        var namespacesInDocument = 0
        var textStart = start   // first byte of the current character-data run
        var textBytes = 0       // CDATA sections of the current run
        var i = start
        func tooComplex(_ limit: Limit, _ detail: String, at offset: Int) -> Refusal {
            Refusal(code: .documentTooComplex, limit: limit, detail: detail, line: line(p, offset))
        }
        func checkText(upTo end: Int) -> Refusal? {
            let run = end - textStart + textBytes
            return run > limits.textBytesMax
                ? tooComplex(.textBytes, "a text node has more than \(limits.textBytesMax) bytes", at: textStart) : nil
        }
        while i < n {
            // Character data up to the next '<'.
            guard let next = find(lt, p, from: i) else { return checkText(upTo: n) }
            if let r = checkText(upTo: next) { return r }
            i = next + 1
            guard i < n else { return nil }
            switch p[i] {
            case UInt8(ascii: "!"):
                if starts(p, at: i + 1, "--") {
                    i = find("-->", p, from: i + 3).map { $0 + 3 } ?? n
                    textStart = i; textBytes = 0
                    continue
                }
                if starts(p, at: i + 1, "[CDATA[") {
                    let end = find("]]>", p, from: i + 8) ?? n
                    textBytes += (next - textStart) + (end - (i + 8))
                    textStart = min(n, end + 3)
                    if textBytes > limits.textBytesMax {
                        return tooComplex(.textBytes, "a text node has more than \(limits.textBytesMax) bytes", at: next)
                    }
                    i = textStart
                    continue
                }
                if starts(p, at: i + 1, "DOCTYPE") { return nil }   // the parser refuses it before reading it
                i = skipTag(p, from: i, limits: limits) ?? n
            case UInt8(ascii: "?"):
                i = find("?>", p, from: i + 1).map { $0 + 2 } ?? n
            case UInt8(ascii: "/"):
                i = find(gt, p, from: i).map { $0 + 1 } ?? n
            default:
                // Start tag: the element name, then attributes until '>' outside quotes.
                let tagStart = next
                while i < n, !isSpace(p[i]), p[i] != gt, p[i] != UInt8(ascii: "/") { i += 1 }
                var attributes = 0, namespaces = 0
                while i < n, p[i] != gt {
                    let c = p[i]
                    if isSpace(c) || c == UInt8(ascii: "=") || c == UInt8(ascii: "/") { i += 1; continue }
                    if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                        let end = find(c, p, from: i + 1) ?? n
                        if end - (i + 1) > limits.attributeValueBytesMax {
                            return tooComplex(.attributeValueBytes,
                                              "an attribute value has more than \(limits.attributeValueBytesMax) bytes", at: i)
                        }
                        i = end + 1
                        continue
                    }
                    // An attribute name (lenient: a name without '=' counts too).
                    let nameStart = i
                    while i < n, !isSpace(p[i]), p[i] != UInt8(ascii: "="), p[i] != gt,
                          p[i] != UInt8(ascii: "\""), p[i] != UInt8(ascii: "'") { i += 1 }
                    attributes += 1
                    if attributes > limits.attributesPerElementMax {
                        return tooComplex(.attributesPerElement,
                                          "an element has more than \(limits.attributesPerElementMax) attributes", at: tagStart)
                    }
                    if isNamespaceDeclaration(p, nameStart, i) {
                        namespaces += 1
                        namespacesInDocument += 1
                        if namespaces > limits.namespaceDeclarationsPerElementMax {
                            return tooComplex(.namespaceDeclarationsPerElement,
                                              "an element has more than \(limits.namespaceDeclarationsPerElementMax) namespace declarations",
                                              at: tagStart)
                        }
                        if namespacesInDocument > limits.namespaceDeclarationsPerDocumentMax {
                            return tooComplex(.namespaceDeclarationsPerDocument,
                                              "the document has more than \(limits.namespaceDeclarationsPerDocumentMax) namespace declarations",
                                              at: tagStart)
                        }
                    }
                }
                i += 1
            }
            textStart = min(i, n); textBytes = 0
        }
        return nil
    }

    /// Skips a `<!…>` declaration other than a comment, CDATA or DOCTYPE, honouring quotes.
    private static func skipTag(_ p: UnsafeBufferPointer<UInt8>, from start: Int, limits: ValidationLimits) -> Int? {
        var i = start
        while i < p.count {
            let c = p[i]
            if c == UInt8(ascii: ">") { return i + 1 }
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                guard let end = find(c, p, from: i + 1) else { return nil }
                i = end + 1
                continue
            }
            i += 1
        }
        return nil
    }

    /// `xmlns` or `xmlns:…`.
    private static func isNamespaceDeclaration(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        guard end - start >= 5, starts(p, at: start, "xmlns") else { return false }
        return end - start == 5 || p[start + 5] == UInt8(ascii: ":")
    }

    // MARK: - helpers

    @inline(__always) static func isSpace(_ c: UInt8) -> Bool {
        c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09
    }

    private static func find(_ byte: UInt8, _ p: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        guard from < p.count else { return nil }
        guard let hit = memchr(p.baseAddress! + from, Int32(byte), p.count - from) else { return nil }
        return UnsafeRawPointer(hit) - UnsafeRawPointer(p.baseAddress!)
    }

    private static func find(_ needle: StaticString, _ p: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        let first = needle.utf8Start.pointee
        var i = from
        while let hit = find(first, p, from: i) {
            if starts(p, at: hit, needle) { return hit }
            i = hit + 1
        }
        return nil
    }

    private static func starts(_ p: UnsafeBufferPointer<UInt8>, at offset: Int, _ s: StaticString) -> Bool {
        let count = s.utf8CodeUnitCount
        guard offset >= 0, offset + count <= p.count else { return false }
        let u = s.utf8Start
        for k in 0..<count where p[offset + k] != u[k] { return false }
        return true
    }

    /// 1-based line of `offset` (computed only for a refusal).
    static func line(_ p: UnsafeBufferPointer<UInt8>, _ offset: Int) -> Int {
        var lines = 1
        for k in 0..<min(offset, p.count) where p[k] == 0x0A { lines += 1 }
        return lines
    }

    private static func hex(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return String(decoding: [digits[Int(b >> 4)], digits[Int(b & 15)]], as: UTF8.self)
    }
}
