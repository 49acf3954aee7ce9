/// Reading a partition: sparse index lookup, one positional read of the durable bytes,
/// every frame verified (checksum and offset sequence) before it is served.
extension Partition {
    /// Records from `offset` (clamped up to the start offset) below the durable end; at least one
    /// record when any is available, then up to `maxRecords` and `maxBytes` of keys + payloads.
    func read(from offset: UInt64, maxRecords: Int, maxBytes: Int, indexIntervalBytes: Int) throws(LogStoreError) -> [Record] {
        precondition(maxRecords >= 1 && maxBytes >= 0)
        let (from, durableEnd) = state.withLock { s in (max(offset, s.startOffset), s.durableEnd) }
        if let cached = tail.withLock({ $0.read(from: from, end: durableEnd, maxRecords: maxRecords, maxBytes: maxBytes) }) {
            return cached
        }
        let (captured, start, end): ([SegmentInfo], UInt64, UInt64) = state.withLock { s in
            let from = max(offset, s.startOffset)
            guard from < s.durableEnd, let i = s.segmentIndex(for: from) else { return ([], from, s.durableEnd) }
            return (Array(s.segments[i...]), from, s.durableEnd)
        }
        var out = ReadBudget(maxRecords: maxRecords, maxBytes: maxBytes)
        var next = start
        for info in captured where next < min(info.endOffset, end) {
            try readSegment(info, from: next, limit: min(info.endOffset, end), budget: &out, indexIntervalBytes: indexIntervalBytes)
            guard let last = out.records.last, !out.full else { break }
            next = last.offset + 1
        }
        return out.records
    }

    struct ReadBudget {
        let maxRecords: Int
        let maxBytes: Int
        var records: [Record] = []
        var bytes = 0
        var full = false

        /// Takes `record` unless it would break the budget (the first record always fits).
        mutating func take(_ record: Record) -> Bool {
            let size = record.key.count + record.payload.count
            if !records.isEmpty && bytes + size > maxBytes {
                full = true
                return false
            }
            records.append(record)
            bytes += size
            if records.count >= maxRecords || bytes >= maxBytes { full = true }
            return true
        }
    }

    /// Reads records `[from, limit)` of one segment into `budget`.
    private func readSegment(_ info: SegmentInfo, from target: UInt64, limit: UInt64, budget: inout ReadBudget,
                             indexIntervalBytes: Int) throws(LogStoreError) {
        var rebuilt = false
        while true {
            let index = try loadedIndex(info, indexIntervalBytes: indexIntervalBytes, rebuild: rebuilt)
            let entry = index.floor(target - info.base) ?? (0, 0)
            let outcome = try scanSegment(info, position: entry.position, expected: info.base + entry.relativeOffset,
                                          target: target, limit: limit, budget: &budget)
            switch outcome {
            case .done:
                return
            case .bad(let offset, let detail, let atIndexEntry):
                // A wrong first frame at an index position may be a stale index: rebuild once.
                if atIndexEntry && entry.position != 0 && !rebuilt {
                    rebuilt = true
                    continue
                }
                throw LogStoreError.corruption(partition: name, offset: offset, detail: "\(Segment.logName(info.base)): \(detail)")
            }
        }
    }

    private enum ScanOutcome {
        case done
        case bad(offset: UInt64, detail: String, atIndexEntry: Bool)
    }

    private func scanSegment(_ info: SegmentInfo, position: Int64, expected first: UInt64, target: UInt64, limit: UInt64,
                             budget: inout ReadBudget) throws(LogStoreError) -> ScanOutcome {
        let fd: FileDescriptor
        do { fd = try info.segment.pin() } catch { throw LogStoreError.io("\(error)") }
        defer { info.segment.unpin() }
        // Start small (a pull reads ten messages of a few KiB) and grow as frames need.
        let chunk = Int(min(info.bytes - position, Int64(min(max(16 << 10, budget.maxBytes &+ (4 << 10)), 128 << 10))))
        var scanner = FileScanner(io: io, file: fd, from: position, limit: info.bytes, chunkBytes: max(chunk, 1))
        var expected = first
        var done = false
        var mismatch: String?
        let stop: FileScanner.Stop
        do {
            stop = try scanner.scan { buffer, at, _ in
                switch RecordFrame.decode(buffer, at: at, bodyBytesMax: RecordFrame.bodyBytesLimit) {
                case .frame(let view):
                    guard view.offset == expected else {
                        mismatch = "frame offset \(view.offset), expected \(expected)"
                        return .invalid(mismatch!)
                    }
                    if view.offset >= target && !budget.take(view.record(in: buffer)) { done = true }
                    expected += 1
                    if expected >= limit || budget.full { done = true }
                    return done ? .invalid("done") : .frame(totalBytes: view.totalBytes)
                case .incomplete(let total):
                    return .incomplete(totalBytes: total)
                case .invalid(let why):
                    return .invalid(why)
                }
            }
        } catch {
            throw LogStoreError.io("\(error)")
        }
        if done { return .done }
        let detail: String
        switch stop.reason {
        case .end: detail = "log ends at byte \(stop.position) before offset \(limit)"
        case .tornFrame: detail = "incomplete frame at byte \(stop.position)"
        case .invalid(let why): detail = "\(why) at byte \(stop.position)"
        }
        _ = mismatch
        return .bad(offset: expected, detail: detail, atIndexEntry: expected == first)
    }

    /// The segment's sparse index, loading or rebuilding it when needed: entries from the index
    /// file (validated), extended by scanning from the last entry to the end of the segment.
    func loadedIndex(_ info: SegmentInfo, indexIntervalBytes: Int, rebuild: Bool) throws(LogStoreError) -> SparseIndex {
        if let index = info.index, !rebuild { return index }
        if !rebuild, let index = state.withLock({ s in s.segments.first { $0.segment === info.segment }?.index }) {
            return index
        }
        var index = SparseIndex()
        if !rebuild, let bytes = try? io.readWholeFile(info.segment.indexPath) {
            index = SparseIndex.decode(bytes, logBytes: info.bytes)
        }
        let persisted = index.count
        try extendIndex(&index, info: info, indexIntervalBytes: indexIntervalBytes)
        if index.count != persisted || rebuild {
            writeIndexFileBestEffort(index, segment: info.segment)
        }
        let loaded = index
        state.withLock { s in
            if let j = s.segments.firstIndex(where: { $0.segment === info.segment }) {
                s.segments[j].index = loaded
                s.segments[j].indexPersisted = loaded.count
            }
        }
        return loaded
    }

    /// Adds index entries by scanning from the last entry (or the start) to the end of the
    /// segment's durable bytes; stops quietly at an invalid frame (reads report it).
    private func extendIndex(_ index: inout SparseIndex, info: SegmentInfo, indexIntervalBytes: Int) throws(LogStoreError) {
        let fd: FileDescriptor
        do { fd = try info.segment.pin() } catch { throw LogStoreError.io("\(error)") }
        defer { info.segment.unpin() }
        let startEntry = index.floor(UInt64.max >> 1) ?? (0, 0)
        var expected = info.base + startEntry.relativeOffset
        var lastIndexed: Int64? = index.lastPosition
        var scanner = FileScanner(io: io, file: fd, from: startEntry.position, limit: info.bytes)
        do {
            _ = try scanner.scan { buffer, at, position in
                guard case .frame(let view) = RecordFrame.decode(buffer, at: at, bodyBytesMax: RecordFrame.bodyBytesLimit),
                      view.offset == expected else { return .invalid("stop") }
                if lastIndexed.map({ position - $0 >= Int64(indexIntervalBytes) }) ?? true {
                    index.append(relativeOffset: UInt32(view.offset - info.base), position: UInt32(position))
                    lastIndexed = position
                }
                expected += 1
                return .frame(totalBytes: view.totalBytes)
            }
        } catch {
            throw LogStoreError.io("\(error)")
        }
    }

    private func writeIndexFileBestEffort(_ index: SparseIndex, segment: Segment) {
        guard let fd = try? io.open(segment.indexPath, create: true) else { return }
        defer { io.close(fd) }
        let bytes = index.encode(0..<index.count)
        do {
            try io.truncate(fd, to: 0)
            if !bytes.isEmpty { try io.writeAll(fd, bytes, at: 0) }
        } catch {
            _ = try? io.truncate(fd, to: 0)
        }
    }
}
