/// 128-bit fingerprint of an idempotency key (SipHash-2-4-128 under the store's secret seed).
struct KeyHash: Hashable, Sendable {
    var first: UInt64
    var second: UInt64

    func hash(into hasher: inout Hasher) {
        // Already a keyed pseudo-random value: one word is plenty for bucket selection.
        hasher.combine(first)
    }
}

/// SipHash-2-4 with 128-bit output (Aumasson & Bernstein), keyed by a per-store random secret
/// so that senders cannot craft colliding idempotency keys.
struct SipHash128: Sendable {
    let k0: UInt64
    let k1: UInt64

    init(k0: UInt64, k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }

    func hash(_ bytes: [UInt8]) -> KeyHash {
        bytes.withUnsafeBytes { hash($0) }
    }

    func hash(_ data: UnsafeRawBufferPointer) -> KeyHash {
        var v0: UInt64 = k0 ^ 0x736f_6d65_7073_6575
        var v1: UInt64 = k1 ^ 0x646f_7261_6e64_6f6d ^ 0xee
        var v2: UInt64 = k0 ^ 0x6c79_6765_6e65_7261
        var v3: UInt64 = k1 ^ 0x7465_6462_7974_6573

        @inline(__always)
        func round() {
            v0 &+= v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
            v2 &+= v3; v3 = rotl(v3, 16); v3 ^= v2
            v0 &+= v3; v3 = rotl(v3, 21); v3 ^= v0
            v2 &+= v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
        }

        let n = data.count
        let whole = n & ~7
        var i = 0
        while i < whole {
            let m = data.u64LE(at: i)
            v3 ^= m
            round(); round()
            v0 ^= m
            i += 8
        }
        var last = UInt64(truncatingIfNeeded: n) << 56
        var shift: UInt64 = 0
        while i < n {
            last |= UInt64(data[i]) << shift
            shift += 8
            i += 1
        }
        v3 ^= last
        round(); round()
        v0 ^= last
        v2 ^= 0xee
        round(); round(); round(); round()
        let first = v0 ^ v1 ^ v2 ^ v3
        v1 ^= 0xdd
        round(); round(); round(); round()
        let second = v0 ^ v1 ^ v2 ^ v3
        return KeyHash(first: first, second: second)
    }

    @inline(__always)
    private func rotl(_ x: UInt64, _ b: UInt64) -> UInt64 { (x << b) | (x >> (64 - b)) }
}
