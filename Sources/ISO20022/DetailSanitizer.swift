/// Turns libxml2 error text (which may quote attacker-controlled input) into a detail that is
/// safe for responses and logs: printable ASCII only (anything else becomes '?', whitespace runs
/// become one space), each single-quoted run capped, the whole capped, trailing space trimmed.
enum DetailSanitizer {
    static let ellipsis: [UInt8] = Array("...".utf8)

    static func sanitize<Bytes: Sequence<UInt8>>(_ input: Bytes, bytesMax: Int, quotedBytesMax: Int) -> String {
        precondition(bytesMax >= 8 && quotedBytesMax >= 4, "limits too small")
        var out: [UInt8] = []
        out.reserveCapacity(min(bytesMax, 256))
        var inQuote = false
        var quotedBytes = 0
        var quoteCut = false
        var lastWasSpace = true  // trims leading whitespace
        var truncated = false

        for raw in input {
            var byte = raw
            if byte == 0x09 || byte == 0x0A || byte == 0x0D || byte == 0x20 {
                if lastWasSpace { continue }
                byte = 0x20
            } else if byte < 0x20 || byte > 0x7E {
                byte = UInt8(ascii: "?")
            }
            if byte == UInt8(ascii: "'") {
                inQuote.toggle()
                quotedBytes = 0
                quoteCut = false
            } else if inQuote {
                quotedBytes += 1
                if quotedBytes > quotedBytesMax {
                    if !quoteCut {
                        quoteCut = true
                        if !append(ellipsis, to: &out, bytesMax: bytesMax) { truncated = true; break }
                    }
                    continue
                }
            }
            lastWasSpace = byte == 0x20
            if out.count >= bytesMax { truncated = true; break }
            out.append(byte)
        }
        while out.last == 0x20 { out.removeLast() }
        if truncated {
            // Leave room for the marker so the result never exceeds bytesMax.
            if out.count > bytesMax - ellipsis.count { out.removeLast(out.count - (bytesMax - ellipsis.count)) }
            out.append(contentsOf: ellipsis)
        }
        assert(out.count <= bytesMax)
        return String(decoding: out, as: UTF8.self)
    }

    private static func append(_ bytes: [UInt8], to out: inout [UInt8], bytesMax: Int) -> Bool {
        if out.count + bytes.count > bytesMax { return false }
        out.append(contentsOf: bytes)
        return true
    }

    /// Sanitizes a short value taken from the document (an identifier) for use inside a detail.
    static func excerpt(_ value: String, bytesMax: Int = 40) -> String {
        sanitize(value.utf8, bytesMax: bytesMax, quotedBytesMax: bytesMax)
    }
}
