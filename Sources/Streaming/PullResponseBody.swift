#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of a pull response body (DESIGN.md §1): up to ten messages as a `multipart/mixed`
/// body, each part with `Content-Type` and `PI-ResourceId`. Built straight into byte arrays:
/// the pull hot path answers tens of thousands of these per second, and string interpolation
/// per header cost more than everything else the pull service does itself (docs/pull.md,
/// "Cost per request").
public enum PullResponseBody {
    /// The media type of every message part (and of a single-message response).
    public static let partContentType = "application/xml; charset=utf-8"

    /// One message of a batch: its resource id (high word first) and its stored bytes.
    public struct Part: Sendable {
        public let idHigh: UInt64
        public let idLow: UInt64
        public let payload: [UInt8]

        public init(idHigh: UInt64, idLow: UInt64, payload: [UInt8]) {
            self.idHigh = idHigh
            self.idLow = idLow
            self.payload = payload
        }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
    private static let partHead = Array("\r\nContent-Type: \(partContentType)\r\nPI-ResourceId: ".utf8)
    private static let crlf: [UInt8] = [13, 10]
    private static let dashes: [UInt8] = [45, 45]

    /// `value` as 16 lowercase hex digits, appended to `out`.
    public static func appendHex(_ value: UInt64, to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: 16))
        out.withUnsafeMutableBufferPointer { writeHex(value, into: UnsafeMutableRawBufferPointer($0), at: start) }
    }

    private static func writeHex(_ value: UInt64, into out: UnsafeMutableRawBufferPointer, at start: Int) {
        hexDigits.withUnsafeBufferPointer { digits in
            var v = value
            for i in (0..<16).reversed() {
                out[start + i] = digits[Int(truncatingIfNeeded: v) & 15]
                v >>= 4
            }
        }
    }

    /// A 128-bit resource id as 32 lowercase hex digits (the `PI-ResourceId` form).
    public static func resourceID(high: UInt64, low: UInt64) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        appendHex(high, to: &out)
        appendHex(low, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// A multipart boundary: "rtp-" and 32 hex digits of 128 bits from a CSPRNG. Nobody can
    /// predict it, so no sender can write a message holding `--boundary` to forge a part of
    /// another PSP's response, and payloads need not be scanned for it.
    public static func boundary(random high: UInt64, _ low: UInt64) -> String {
        var out = Array("rtp-".utf8)
        appendHex(high, to: &out)
        appendHex(low, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The `multipart/mixed` body for `parts` as one contiguous buffer, and its `Content-Type`.
    /// `boundary` must be unpredictable (`boundary(random:_:)` from a CSPRNG).
    public static func multipart(_ parts: [Part], boundary: String) -> (chunks: [[UInt8]], contentType: String) {
        precondition(!parts.isEmpty)
        let b = Array(boundary.utf8)
        // One contiguous body: framing written in place around each payload (one allocation,
        // one copy per payload), so the socket writes it as a single buffer.
        // Each frame: [CRLF] "--" boundary partHead 32-hex-id CRLF CRLF.
        let fixed = dashes.count + b.count + partHead.count + 32 + 4
        let total = parts.reduce(0) { $0 + fixed + $1.payload.count } + 2 * (parts.count - 1) + 8 + b.count
        let body = [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            let out = UnsafeMutableRawBufferPointer(buffer)
            var at = 0
            func put(_ bytes: [UInt8]) {
                bytes.withUnsafeBytes { out.baseAddress!.advanced(by: at).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                at += bytes.count
            }
            for (i, part) in parts.enumerated() {
                if i > 0 { put(crlf) }
                put(dashes)
                put(b)
                put(partHead)
                writeHex(part.idHigh, into: out, at: at)
                writeHex(part.idLow, into: out, at: at + 16)
                at += 32
                put(crlf)
                put(crlf)
                if !part.payload.isEmpty { put(part.payload) }
            }
            put(crlf)
            put(dashes)
            put(b)
            put(dashes)
            put(crlf)
            precondition(at == total)
            count = at
        }
        let chunks = [body]
        return (chunks, "multipart/mixed; boundary=" + boundary)
    }

    /// Whether `needle` (which starts with "-") occurs in `haystack`: memchr to each "-", then
    /// a compare that fails at once on the dashes of dates and names. A few KiB per message.
}
