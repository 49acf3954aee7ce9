import CLogStore

/// Hash table from key fingerprints to their locations: open addressing with linear probing
/// over one array of slots (fingerprint and value side by side: one cache miss per probe),
/// indexed directly by the fingerprint (already uniformly random), deletion by backward shift.
/// Loads millions of keys at open several times faster than `Dictionary`.
/// The all-zero fingerprint marks an empty slot; that key itself lives in `zeroValue`.
struct KeyTable: Sendable {
    typealias Value = IdempotencyIndex.Location

    private struct Slot: Sendable {
        var first: UInt64
        var second: UInt64
        var value: Value

        static let empty = Slot(first: 0, second: 0, value: Value(partition: 0, offset: 0, timestampMs: 0))
        var isEmpty: Bool { first == 0 && second == 0 }
        var hash: KeyHash { KeyHash(first: first, second: second) }
    }

    private var slots: [Slot]
    private var zeroValue: Value?
    private var mask: Int
    private var slotted = 0

    /// At most this fraction of slots is used before the table doubles.
    private static var loadFactorMax: Double { 0.75 }

    init(minimumCapacity: Int = 1024) {
        var n = 16
        while Double(n) * Self.loadFactorMax < Double(minimumCapacity) { n <<= 1 }
        slots = [Slot](repeating: .empty, count: n)
        mask = n - 1
    }

    var count: Int { slotted + (zeroValue == nil ? 0 : 1) }

    private static func isZero(_ h: KeyHash) -> Bool { h.first == 0 && h.second == 0 }

    private func find(_ h: KeyHash) -> (index: Int, found: Bool) {
        var i = Int(truncatingIfNeeded: h.first) & mask
        while true {
            let s = slots[i]
            if s.isEmpty { return (i, false) }
            if s.first == h.first && s.second == h.second { return (i, true) }
            i = (i + 1) & mask
        }
    }

    subscript(_ hash: KeyHash) -> Value? {
        if Self.isZero(hash) { return zeroValue }
        let (i, found) = find(hash)
        return found ? slots[i].value : nil
    }

    /// Inserts or replaces.
    mutating func set(_ hash: KeyHash, _ value: Value) {
        if Self.isZero(hash) {
            zeroValue = value
            return
        }
        if Double(slotted + 1) > Double(slots.count) * Self.loadFactorMax { grow(to: slots.count * 2) }
        let (i, found) = find(hash)
        if !found { slotted += 1 }
        slots[i] = Slot(first: hash.first, second: hash.second, value: value)
    }

    /// Same as `set` for each item in order, but prefetches the slot of the item 16 ahead so
    /// that the cache misses of a large table overlap (loading key files at open).
    mutating func setAll(_ items: [(KeyHash, Value)]) {
        reserveCapacity(count + items.count)
        let distance = 16
        let mask = self.mask
        var added = 0
        var zero = zeroValue
        slots.withUnsafeMutableBufferPointer { table in
            let base = table.baseAddress!
            for i in items.indices {
                if i + distance < items.count {
                    rtp_prefetch_write(base + (Int(truncatingIfNeeded: items[i + distance].0.first) & mask))
                }
                let (h, v) = items[i]
                if Self.isZero(h) {
                    zero = v
                    continue
                }
                var j = Int(truncatingIfNeeded: h.first) & mask
                while true {
                    let s = table[j]
                    if s.isEmpty {
                        added += 1
                        break
                    }
                    if s.first == h.first && s.second == h.second { break }
                    j = (j + 1) & mask
                }
                table[j] = Slot(first: h.first, second: h.second, value: v)
            }
        }
        slotted += added
        zeroValue = zero
        assert(Double(slotted) <= Double(slots.count) * Self.loadFactorMax + 1)
    }

    mutating func reserveCapacity(_ n: Int) {
        var size = slots.count
        while Double(size) * Self.loadFactorMax < Double(n) { size <<= 1 }
        if size > slots.count { grow(to: size) }
    }

    @discardableResult
    mutating func remove(_ hash: KeyHash) -> Value? {
        if Self.isZero(hash) {
            defer { zeroValue = nil }
            return zeroValue
        }
        let (at, found) = find(hash)
        guard found else { return nil }
        let removed = slots[at].value
        // Backward-shift deletion keeps every probe sequence unbroken.
        var hole = at
        var j = (hole + 1) & mask
        while !slots[j].isEmpty {
            let ideal = Int(truncatingIfNeeded: slots[j].first) & mask
            // The entry at j may move into the hole unless its ideal slot lies cyclically in (hole, j].
            let stays = hole <= j ? (ideal > hole && ideal <= j) : (ideal > hole || ideal <= j)
            if !stays {
                slots[hole] = slots[j]
                hole = j
            }
            j = (j + 1) & mask
        }
        slots[hole] = .empty
        slotted -= 1
        return removed
    }

    private mutating func grow(to size: Int) {
        precondition(size & (size - 1) == 0 && size > slots.count)
        let old = slots
        slots = [Slot](repeating: .empty, count: size)
        mask = size - 1
        for s in old where !s.isEmpty {
            slots[find(s.hash).index] = s
        }
    }

    /// Every (fingerprint, value) pair, in no order.
    var all: [(KeyHash, Value)] {
        slots.compactMap { $0.isEmpty ? nil : ($0.hash, $0.value) } + (zeroValue.map { [(KeyHash(first: 0, second: 0), $0)] } ?? [])
    }
}
