import LogStore
import TLS

/// Random 128-bit resource ids (`PI-ResourceId`, 32 hex digits). xoshiro256** seeded from the
/// OS CSPRNG: unique, not secret (the id carries no authority; pointers are MAC'd separately).
struct ResourceIDGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init() {
        let seed = Crypto.randomBytes(32)
        func word(_ i: Int) -> UInt64 { (0..<8).reduce(0) { $0 << 8 | UInt64(seed[i * 8 + $1]) } }
        s = (word(0) | 1, word(1), word(2), word(3))
    }

    private mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    mutating func make() -> ResourceID { ResourceID(high: next(), low: next()) }
}
