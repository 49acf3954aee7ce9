import Logging

/// Recovery: verifying each partition's segments from the checkpoint position on.
extension Recovery {
    mutating func cut(_ p: Partition, file: String, position: Int64, bytes: Int64, firstOffset: UInt64?, reason: String) {
        let c = RecoveryCut(log: p.name, file: file, position: position, bytes: bytes, firstOffset: firstOffset, reason: reason)
        report.cuts.append(c)
        core.metrics.recoveryTruncations.increment()
        core.metrics.recoveryTruncatedBytes.increment(by: Int(bytes))
        core.logger.error("recovery cut the tail of a partition", metadata: [
            "partition": "\(p.name)", "file": "\(file)", "position": "\(position)", "bytes": "\(bytes)",
            "firstOffset": "\(firstOffset.map(String.init) ?? "-")", "reason": "\(reason)",
        ])
    }

    mutating func failPartition(_ p: Partition, _ reason: String, end: UInt64, readable: [SegmentInfo] = []) {
        report.failedPartitions[p.name] = reason
        core.metrics.failures.increment()
        core.logger.critical("partition cannot be recovered: appends refused, journals kept",
                             metadata: ["partition": "\(p.name)", "reason": "\(reason)"])
        p.state.withLock { s in
            s.failure = reason
            if !readable.isEmpty { s.segments = readable }
            s.durableEnd = max(s.durableEnd, end)
        }
        p.writer.value.nextOffset = max(p.writer.value.nextOffset, end)
    }

    /// Verifies a partition from the checkpoint position to the end of its files: every frame
    /// must pass its checksum and continue the offset sequence; the first one that does not
    /// ends the log (the file is truncated there and later segments removed, all reported).
    mutating func recoverPartition(_ p: Partition, entry: CheckpointFile.PartitionEntry?) throws(LogStoreError) {
        let io = core.io
        let names = (try? io.list(p.directory)) ?? []
        let bases = names.compactMap(Segment.base(fromLogName:)).sorted()
        for name in names where !name.hasSuffix(".log") {
            let stem = UInt64(name.prefix(20))
            if !(name.hasSuffix(".idx") && stem.map(bases.contains) == true) { try? io.remove("\(p.directory)/\(name)") }
        }
        guard !bases.isEmpty else {
            if let e = entry, e.endOffset > 0 {
                failPartition(p, "checkpointed data missing: no segment files (checkpoint end \(e.endOffset))", end: e.endOffset)
            }
            return
        }
        var scanFrom = 0
        var scanPosition: Int64 = 0
        if let e = entry {
            guard let i = bases.firstIndex(of: e.segmentBase) else {
                failPartition(p, "checkpointed data missing: segment \(Segment.logName(e.segmentBase)) not found", end: e.endOffset)
                return
            }
            scanFrom = i
            scanPosition = Int64(e.position)
        }

        var infos: [SegmentInfo] = []
        for i in 0..<scanFrom {
            let segment = Segment(base: bases[i], directory: p.directory, io: io, cache: p.descriptors)
            let bytes = (try? io.size(atPath: segment.logPath)) ?? 0
            infos.append(SegmentInfo(segment: segment, bytes: bytes, endOffset: bases[i + 1], index: nil,
                                     sealed: true, checkpointed: true))
        }

        var end = entry?.endOffset ?? bases[scanFrom]
        var dirty: [Segment] = []
        var stopped = false
        for i in scanFrom..<bases.count {
            let base = bases[i]
            let segment = Segment(base: base, directory: p.directory, io: io, cache: p.descriptors)
            if stopped || (i > scanFrom && base != end) {
                let bytes = (try? io.size(atPath: segment.logPath)) ?? 0
                cut(p, file: segment.logPath, position: 0, bytes: bytes, firstOffset: base,
                    reason: stopped ? "segment after a cut" : "segment does not continue the log (expected base \(end))")
                try? io.remove(segment.logPath)
                try? io.remove(segment.indexPath)
                stopped = true
                continue
            }
            let fd: FileDescriptor
            let size: Int64
            do { fd = try segment.pin() } catch { throw ioError(error) }
            defer { segment.unpin() }
            do { size = try io.size(fd) } catch { throw ioError(error) }
            let trustedBytes = i == scanFrom ? scanPosition : 0
            if trustedBytes > size {
                failPartition(p, "checkpointed data missing: \(segment.logPath) has \(size) bytes, checkpoint says \(trustedBytes)",
                              end: entry?.endOffset ?? end, readable: infos)
                return
            }
            // Index entries below the checkpoint position are kept; the rest is rebuilt. The index
            // file is derived data and not fsynced: if the scan from its last entry fails inside
            // the checkpointed range, the entry may be torn, so scan again from byte 0.
            var loaded = SparseIndex()
            if trustedBytes > 0, let bytes = try? io.readWholeFile(segment.indexPath) {
                loaded = SparseIndex.decode(bytes, logBytes: trustedBytes)
            }
            var scan = try scanTail(fd, base: base, size: size, trustedBytes: trustedBytes, index: loaded)
            if scan.stop.position < trustedBytes && loaded.count > 0 {
                core.logger.warning("index entry did not match the log; rescanning the segment from its start",
                                    metadata: ["segment": "\(segment.logPath)"])
                loaded = SparseIndex()
                scan = try scanTail(fd, base: base, size: size, trustedBytes: trustedBytes, index: loaded)
            }
            let kept = loaded.count
            if let fdIdx = try? io.open(segment.indexPath, create: false) {
                _ = try? io.truncate(fdIdx, to: Int64(kept * SparseIndex.entryBytes))
                io.close(fdIdx)
            }
            let (stop, index, expected, lastTs, trustedEndSeen, keys) = (scan.stop, scan.index, scan.expected, scan.lastTs, scan.trustedEndSeen, scan.keys)
            if let first = keys.first?.offset {
                var known = scannedFrames[p.number] ?? (first, [])
                assert(known.first + UInt64(known.frames.count) == first, "scanned records are contiguous")
                known.frames += scan.fingerprints
                scannedFrames[p.number] = known
            }
            let scanned = keys.count
            if stop.position < trustedBytes {
                failPartition(p, "checkpointed data corrupt in \(segment.logPath) at byte \(stop.position) (offset \(expected))",
                              end: entry?.endOffset ?? end, readable: infos)
                return
            }
            if i == scanFrom, let e = entry, trustedEndSeen != e.endOffset {
                failPartition(p, "checkpoint says offset \(e.endOffset) at byte \(trustedBytes) of \(segment.logPath), log has \(trustedEndSeen.map(String.init) ?? "no frame boundary") there",
                              end: e.endOffset, readable: infos)
                return
            }
            if !journalIsTruth {
                for k in keys { k.bytes.withUnsafeBytes { rememberKey($0, partition: p, offset: k.offset, timestampMs: k.ts) } }
            }
            report.recordsScanned += scanned
            if stop.position < size {
                let why: String
                switch stop.reason {
                case .end: why = "end"
                case .tornFrame: why = "torn frame"
                case .invalid(let w): why = w
                }
                cut(p, file: segment.logPath, position: stop.position, bytes: size - stop.position, firstOffset: expected, reason: why)
                do { try io.truncate(fd, to: stop.position) } catch { throw ioError(error) }
                stopped = true
                if dirty.last !== segment { dirty.append(segment) }
            }
            if stop.position > trustedBytes {
                if journalIsTruth {
                    scannedRanges[p.number, default: []].append((segment, trustedBytes))
                } else {
                    try rewrite(fd, from: trustedBytes, to: stop.position)
                    dirty.append(segment)
                }
            }
            end = expected
            infos.append(SegmentInfo(segment: segment, bytes: stop.position, endOffset: expected, index: index,
                                     indexPersisted: i == scanFrom ? kept : 0, sealed: false, checkpointed: false,
                                     lastTimestampMs: lastTs))
        }
        for i in infos.indices.dropLast() { infos[i].sealed = true }
        let last = infos[infos.count - 1]
        var w = PartitionWriterState()
        w.active = last.segment
        w.activeBytes = last.bytes
        w.nextOffset = end
        w.lastIndexedPosition = last.index?.lastPosition
        w.dirtySegments = dirty
        // Directory entries changed (segments removed after a cut), or some are not vouched for by
        // a checkpoint (segments created after it, or no checkpoint at all).
        w.directoryDirty = stopped || entry == nil || bases.count - 1 > scanFrom
        p.writer.value = w
        let finalInfos = infos
        p.state.withLock { s in
            s.segments = finalInfos
            s.durableEnd = end
        }
    }

    struct TailScan {
        var stop: FileScanner.Stop
        var index: SparseIndex
        /// Offset of the first frame not accepted.
        var expected: UInt64
        var lastTs: Int64?
        /// Offset found at byte `trustedBytes` (nil when no frame boundary is there).
        var trustedEndSeen: UInt64?
        /// Keys of the frames at or after `trustedBytes`.
        var keys: [(offset: UInt64, ts: Int64, bytes: [UInt8])]
        /// (checksum, id) of the frames at or after `trustedBytes`, in offset order.
        var fingerprints: [(crc: UInt32, id: ResourceID)] = []
    }

    /// Scans a segment from the last entry of `index` to its end, verifying every frame.
    func scanTail(_ fd: FileDescriptor, base: UInt64, size: Int64, trustedBytes: Int64,
                          index start: SparseIndex) throws(LogStoreError) -> TailScan {
        let interval = Int64(core.config.indexIntervalBytes)
        var index = start
        let resume = index.floor(UInt64.max >> 1) ?? (0, 0)
        var expected = base + resume.relativeOffset
        var lastIndexed = index.lastPosition
        var lastTs: Int64?
        var trustedEndSeen: UInt64? = trustedBytes == 0 ? expected : nil
        var keys: [(offset: UInt64, ts: Int64, bytes: [UInt8])] = []
        var fingerprints: [(crc: UInt32, id: ResourceID)] = []
        var scanner = FileScanner(io: core.io, file: fd, from: resume.position, limit: size)
        let stop: FileScanner.Stop
        do {
            stop = try scanner.scan { buffer, at, position in
                if position == trustedBytes { trustedEndSeen = expected }
                let v: RecordFrame.View
                switch RecordFrame.decode(buffer, at: at, bodyBytesMax: RecordFrame.bodyBytesLimit) {
                case .frame(let view): v = view
                case .incomplete(let total): return .incomplete(totalBytes: total)
                case .invalid(let why): return .invalid(why)
                }
                guard v.offset == expected else { return .invalid("frame offset \(v.offset), expected \(expected)") }
                if lastIndexed.map({ position - $0 >= interval }) ?? true {
                    index.append(relativeOffset: UInt32(v.offset - base), position: UInt32(position))
                    lastIndexed = position
                }
                if position >= trustedBytes {
                    keys.append((v.offset, v.timestampMs, Array(UnsafeRawBufferPointer(rebasing: buffer[v.keyRange]))))
                    fingerprints.append((buffer.u32LE(at: at), v.id))
                }
                lastTs = v.timestampMs
                expected += 1
                return .frame(totalBytes: v.totalBytes)
            }
        } catch { throw ioError(error) }
        if stop.position == trustedBytes && trustedEndSeen == nil { trustedEndSeen = expected }
        return TailScan(stop: stop, index: index, expected: expected, lastTs: lastTs, trustedEndSeen: trustedEndSeen, keys: keys,
                        fingerprints: fingerprints)
    }

    /// Writes bytes `[from, to)` of a file back in place. Their checksums passed, but they
    /// may be in the page cache only: after a failed fdatasync Linux marks dirty pages clean, so
    /// a later fdatasync would not write them. Rewriting makes them dirty again, and the
    /// recovery checkpoint's fdatasync then really persists them.
    func rewrite(_ fd: FileDescriptor, from: Int64, to: Int64) throws(LogStoreError) {
        let io = core.io
        var at = from
        while at < to {
            let n = Int(min(to - at, 1 << 20))
            do {
                let bytes = try io.readBytes(fd, count: n, at: at)
                guard bytes.count == n else { throw LogStoreError.io("segment shrank during recovery") }
                try io.writeAll(fd, bytes, at: at)
            } catch let error as LogStoreError {
                throw error
            } catch {
                throw ioError(error)
            }
            at += Int64(n)
        }
    }
}
