/// A `PI-ResourceId` (32 hex digits) as two words: hashed and compared without strings.
struct ResourceKey: Hashable, Comparable, CustomStringConvertible, Sendable {
    let high: UInt64
    let low: UInt64

    /// Parses exactly 32 hex digits (either case); nil otherwise.
    init?(hex: UnsafeRawBufferPointer) {
        guard hex.count == 32 else { return nil }
        var h: UInt64 = 0
        var l: UInt64 = 0
        for i in 0..<16 {
            guard let d = ResourceKey.nibble(hex[i]) else { return nil }
            h = h << 4 | d
        }
        for i in 16..<32 {
            guard let d = ResourceKey.nibble(hex[i]) else { return nil }
            l = l << 4 | d
        }
        high = h
        low = l
    }

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    init?(_ text: String) {
        var bytes = Array(text.utf8)
        guard let key = bytes.withUnsafeMutableBytes({ ResourceKey(hex: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = key
    }

    @inline(__always)
    static func nibble(_ c: UInt8) -> UInt64? {
        switch c {
        case 48...57: return UInt64(c - 48)
        case 97...102: return UInt64(c - 87)
        case 65...70: return UInt64(c - 55)
        default: return nil
        }
    }

    static func < (a: ResourceKey, b: ResourceKey) -> Bool { (a.high, a.low) < (b.high, b.low) }

    var description: String {
        func hex(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        return hex(high) + hex(low)
    }
}
