/// The opaque `PI-Pull-Next` pointer: stream id and batch sequence, bound to one ISPB by a MAC.
///
///     token = base64url( stream id (8, big endian) | sequence (4, big endian) | mac (16) )
///     mac   = HMAC-SHA256(key, "rtp-pull-1" | ISPB (8 ASCII digits) | stream id | sequence)[0..<16]
///
/// 28 bytes, 38 characters. The MAC function is injected (the TLS module owns OpenSSL), so this
/// type stays pure and testable.
public struct PullToken: Sendable, Equatable, Hashable {
    public let stream: UInt64
    public let sequence: UInt32

    public init(stream: UInt64, sequence: UInt32) {
        self.stream = stream
        self.sequence = sequence
    }

    public static let macBytes = 16
    public static let encodedLength = 38

    /// Computes a MAC over a message; must be a keyed PRF (HMAC-SHA256 in production).
    public typealias MAC = @Sendable ([UInt8]) -> [UInt8]

    private static let macDomain = Array("rtp-pull-1".utf8)

    static func macInput(ispb: String, stream: UInt64, sequence: UInt32) -> [UInt8] {
        var m: [UInt8] = []
        m.reserveCapacity(macDomain.count + 8 + 12)
        m.append(contentsOf: macDomain)
        m.append(contentsOf: ispb.utf8)
        m.appendBigEndian(stream)
        m.appendBigEndian(sequence)
        return m
    }

    public func encode(ispb: String, mac: MAC) -> String {
        var raw: [UInt8] = []
        raw.reserveCapacity(28)
        raw.appendBigEndian(stream)
        raw.appendBigEndian(sequence)
        raw.append(contentsOf: mac(Self.macInput(ispb: ispb, stream: stream, sequence: sequence)).prefix(Self.macBytes))
        return Base64URL.encode(raw)
    }

    /// Decodes and verifies a token for the ISPB of the request path; nil when malformed or
    /// forged (or made for another ISPB). Constant-time MAC comparison.
    /// Stream and sequence of a well-formed token, NOT verified: only for finding the token the
    /// hub issued to compare with (constant time) before falling back to `decode`.
    public static func parseUnverified(_ text: Substring) -> PullToken? {
        guard text.utf8.count == encodedLength, let raw = Base64URL.decode(text), raw.count == 28 else { return nil }
        return PullToken(stream: UInt64(bigEndianBytes: raw[0..<8]), sequence: UInt32(bigEndianBytes: raw[8..<12]))
    }

    /// Constant-time equality of a presented token and one the hub issued.
    public static func sameToken(_ presented: Substring, _ issued: [UInt8]) -> Bool {
        let p = presented.utf8
        guard p.count == issued.count else { return false }
        var diff: UInt8 = 0
        for (a, b) in zip(p, issued) { diff |= a ^ b }
        return diff == 0
    }

    public static func decode(_ text: Substring, ispb: String, mac: MAC) -> PullToken? {
        guard text.utf8.count == encodedLength, let raw = Base64URL.decode(text), raw.count == 28 else { return nil }
        let stream = UInt64(bigEndianBytes: raw[0..<8])
        let sequence = UInt32(bigEndianBytes: raw[8..<12])
        let expected = mac(macInput(ispb: ispb, stream: stream, sequence: sequence)).prefix(macBytes)
        guard expected.count == macBytes else { return nil }
        var diff: UInt8 = 0
        for (a, b) in zip(expected, raw[12..<28]) { diff |= a ^ b }
        return diff == 0 ? PullToken(stream: stream, sequence: sequence) : nil
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var shift = T.bitWidth - 8
        while shift >= 0 {
            append(UInt8(truncatingIfNeeded: value >> shift))
            shift -= 8
        }
    }
}

extension FixedWidthInteger {

    init(bigEndianBytes bytes: ArraySlice<UInt8>) {
        var v: Self = 0
        for b in bytes { v = v << 8 | Self(b) }
        self = v
    }
}

/// RFC 4648 §5 base64url without padding.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let reverse: [Int16] = {
        var r = [Int16](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { r[Int(c)] = Int16(i) }
        return r
    }()

    public static func encode(_ bytes: [UInt8]) -> String {
        let count = (bytes.count * 4 + 2) / 3
        let out = [UInt8](unsafeUninitializedCapacity: count) { out, written in
            alphabet.withUnsafeBufferPointer { a in
                var i = 0
                var o = 0
                while i + 3 <= bytes.count {
                    let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                    out[o] = a[Int(n >> 18 & 63)]
                    out[o + 1] = a[Int(n >> 12 & 63)]
                    out[o + 2] = a[Int(n >> 6 & 63)]
                    out[o + 3] = a[Int(n & 63)]
                    i += 3
                    o += 4
                }
                let rest = bytes.count - i
                if rest > 0 {
                    let n = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
                    out[o] = a[Int(n >> 18 & 63)]
                    out[o + 1] = a[Int(n >> 12 & 63)]
                    if rest == 2 { out[o + 2] = a[Int(n >> 6 & 63)] }
                    o += rest + 1
                }
                precondition(o == count)
                written = o
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: Substring) -> [UInt8]? {
        let chars = text.utf8
        let count = chars.count
        guard count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        let valid = reverse.withUnsafeBufferPointer { r in
            for c in chars {
                let v = r[Int(c)]
                guard v >= 0 else { return false }
                acc = acc << 6 | UInt32(v)
                bits += 6
                if bits >= 8 {
                    bits -= 8
                    out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                }
            }
            return true
        }
        // Non-canonical trailing bits are a different token, not the same one.
        guard valid, acc & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
