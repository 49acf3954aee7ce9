/// The newest durable records of one partition, kept in memory so that a reader following the
/// appends closely (a pull of messages just sent) reads neither the disk nor the page cache and
/// verifies no checksums: the records are the ones the writer just made durable, sharing their
/// payload storage. Bounded by bytes; the oldest fall out first. Readers asking for anything
/// older take the disk path.
struct TailCache: Sendable {
    private var records: [Record] = []
    private var first = 0
    private(set) var bytes = 0

    static func cost(_ r: Record) -> Int { r.payload.count + r.key.count + 64 }

    /// Offset of the oldest cached record, when any.
    var startOffset: UInt64? { first < records.count ? records[first].offset : nil }
    var endOffset: UInt64? { first < records.count ? records[records.count - 1].offset + 1 : nil }
    var count: Int { records.count - first }

    /// Adds records that just became durable (ascending offsets). A gap starts the cache anew.
    mutating func add(_ new: [Record], bytesMax: Int) {
        guard bytesMax > 0 else { return }
        for r in new {
            if let end = endOffset, end != r.offset { clear() }
            records.append(r)
            bytes += Self.cost(r)
        }
        while bytes > bytesMax && first < records.count {
            bytes -= Self.cost(records[first])
            first += 1
        }
        if first == records.count {
            clear()
        } else if first >= 1024 && first * 2 >= records.count {
            records.removeFirst(first)
            first = 0
        }
    }

    mutating func clear() {
        records.removeAll(keepingCapacity: true)
        first = 0
        bytes = 0
    }

    /// Records from `offset` below `end` within the budget, or nil when `offset` is not cached
    /// (the caller reads the disk).
    func read(from offset: UInt64, end: UInt64, maxRecords: Int, maxBytes: Int) -> [Record]? {
        guard let start = startOffset, let cachedEnd = endOffset, offset >= start, offset < cachedEnd else { return nil }
        var out: [Record] = []
        out.reserveCapacity(min(maxRecords, Int(cachedEnd - offset)))
        var taken = 0
        var i = first + Int(offset - start)
        while i < records.count && out.count < maxRecords && records[i].offset < end {
            let size = records[i].key.count + records[i].payload.count
            if !out.isEmpty && taken + size > maxBytes { break }
            out.append(records[i])
            taken += size
            if taken >= maxBytes { break }
            i += 1
        }
        return out
    }
}
