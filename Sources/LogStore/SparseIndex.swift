/// Sparse offset index of one segment: an entry every `indexIntervalBytes` of log, mapping a
/// record offset (relative to the segment base) to its byte position.
///
/// On disk (`<base>.idx`): entries of 8 bytes, `relativeOffset u32 | position u32`, little-endian,
/// no header. Derived data: validated on load, truncated when stale, rebuilt from the log when
/// missing or wrong.
struct SparseIndex: Sendable {
    static let entryBytes = 8

    /// `relativeOffset << 32 | position`, both strictly increasing.
    private(set) var entries: [UInt64] = []

    var count: Int { entries.count }
    var lastPosition: Int64? { entries.last.map { Int64($0 & 0xffff_ffff) } }

    mutating func append(relativeOffset: UInt32, position: UInt32) {
        let packed = UInt64(relativeOffset) << 32 | UInt64(position)
        assert(entries.last.map { $0 >> 32 < UInt64(relativeOffset) && $0 & 0xffff_ffff < UInt64(position) } ?? true,
               "index entries must increase")
        entries.append(packed)
    }

    mutating func append(contentsOf other: [UInt64]) {
        assert(zip(entries.suffix(1) + other, (entries.isEmpty ? other.dropFirst() : other[...])).allSatisfy { $0 < $1 },
               "index entries must increase")
        entries.append(contentsOf: other)
    }

    /// Keeps only entries whose position is below `position`.
    mutating func truncate(belowPosition position: Int64) {
        while let last = entries.last, Int64(last & 0xffff_ffff) >= position { entries.removeLast() }
    }

    /// The last entry at or before `relativeOffset`: (relative offset, position).
    func floor(_ relativeOffset: UInt64) -> (relativeOffset: UInt64, position: Int64)? {
        var low = 0, high = entries.count
        while low < high {
            let mid = (low + high) / 2
            if entries[mid] >> 32 <= relativeOffset { low = mid + 1 } else { high = mid }
        }
        guard low > 0 else { return nil }
        let e = entries[low - 1]
        return (e >> 32, Int64(e & 0xffff_ffff))
    }

    /// Encodes entries `range` for the index file.
    func encode(_ range: Range<Int>) -> [UInt8] {
        var w = ByteWriter(capacity: range.count * Self.entryBytes)
        for e in entries[range] {
            w.u32(UInt32(e >> 32))
            w.u32(UInt32(e & 0xffff_ffff))
        }
        return w.bytes
    }

    /// Decodes an index file, keeping the longest valid prefix: increasing entries whose
    /// position lies inside a log of `logBytes` bytes.
    static func decode(_ bytes: [UInt8], logBytes: Int64) -> SparseIndex {
        var index = SparseIndex()
        bytes.withUnsafeBytes { raw in
            var at = 0
            var previous: UInt64?
            while at + entryBytes <= raw.count {
                let rel = UInt64(raw.u32LE(at: at))
                let pos = UInt64(raw.u32LE(at: at + 4))
                let packed = rel << 32 | pos
                if let p = previous, !(p >> 32 < rel && p & 0xffff_ffff < pos) { break }
                if Int64(pos) >= logBytes { break }
                index.entries.append(packed)
                previous = packed
                at += entryBytes
            }
        }
        return index
    }
}
