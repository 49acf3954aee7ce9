import Logging

/// Something recovery removed at open, reported exactly (log line + metrics).
public struct RecoveryCut: Sendable, Equatable, CustomStringConvertible {
    /// Partition name, or "journal".
    public var log: String
    public var file: String
    /// Byte position in `file` where the cut starts.
    public var position: Int64
    public var bytes: Int64
    /// First record offset removed (partitions only).
    public var firstOffset: UInt64?
    public var reason: String

    public var description: String {
        "\(log) \(file) cut at byte \(position): \(bytes) bytes" + (firstOffset.map { " from offset \($0)" } ?? "") + " (\(reason))"
    }
}

/// What open found and did.
public struct RecoveryReport: Sendable {
    public var cuts: [RecoveryCut] = []
    /// Partitions that could not be recovered (checkpointed data missing or a journal gap):
    /// they refuse appends; checkpoints are suspended so nothing more is discarded.
    public var failedPartitions: [String: String] = [:]
    public var journalEntriesReplayed = 0
    public var recordsReplayed = 0
    /// Records found in segments past the checkpoint (written before the crash, not necessarily
    /// acknowledged) and kept.
    public var recordsScanned = 0
    public var keysLoaded = 0
    /// Time spent: loading idempotency keys, verifying partition tails, replaying journals,
    /// the recovery checkpoint, and in total.
    public var keysMs: Double = 0
    public var partitionsMs: Double = 0
    public var journalsMs: Double = 0
    public var checkpointMs: Double = 0
    public var durationMs: Double = 0
}

/// Open-time recovery: load the checkpoint's view, verify every partition's tail (cutting a
/// torn or corrupt tail), replay the journals, then checkpoint so the next open starts clean.
struct Recovery {
    let core: StoreCore
    let checkpoint: CheckpointFile?
    var report = RecoveryReport()
    /// Keys found past the checkpoint (scanned or replayed): the recovery checkpoint's key file.
    private var keyLog: [KeyFile.Entry] = []
    private var keyFiles: [(seq: UInt64, newestMs: Int64)] = []
    private let cutoffMs: Int64

    init(core: StoreCore, checkpoint: CheckpointFile?) {
        self.core = core
        self.checkpoint = checkpoint
        self.cutoffMs = core.config.nowMs() - core.config.dedupWindowMs
    }

    struct Outcome {
        let journal: JournalHandle
        let journalSeqs: [UInt64]
        let keyFiles: [(seq: UInt64, newestMs: Int64)]
    }

    private func ioError(_ e: any Error) -> LogStoreError { .io("recovery: \(e)") }

    mutating func run(checkpointer makeCheckpointer: ([(seq: UInt64, newestMs: Int64)]) -> Checkpointer) throws(LogStoreError) -> (Outcome, Checkpointer) {
        let io = core.io
        let paths = core.paths

        // Partitions: those the checkpoint names plus every directory found.
        var names = Set(checkpoint?.partitions.map(\.name) ?? [])
        do {
            for name in try io.list(paths.partitionsDirectory) {
                if PartitionKey(name) != nil { names.insert(name) } else {
                    core.logger.warning("ignoring unexpected entry in partitions/", metadata: ["name": "\(name)"])
                }
            }
        } catch { throw ioError(error) }
        if io.exists(paths.partitionDirectory(StorePaths.quarantineName)) { names.insert(StorePaths.quarantineName) }
        for name in names.sorted() { _ = core.partition(named: name, create: true) }

        var t = Clock.monotonicNanoseconds()
        func lap() -> Double {
            let now = Clock.monotonicNanoseconds()
            defer { t = now }
            return Double(now - t) / 1e6
        }
        try loadKeyFiles()
        report.keysMs = lap()

        let entries = Dictionary((checkpoint?.partitions ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for p in core.allPartitions {
            try recoverPartition(p, entry: entries[p.name])
        }
        core.consumers.withLock { c in
            for e in checkpoint?.partitions ?? [] { c[e.name] = AckTracker(e.consumer) }
        }
        report.partitionsMs = lap()

        let (seqs, lastSeq, cleanEnd) = try replayJournals()
        report.journalsMs = lap()

        // Nothing to recover (a clean shutdown): continue the last journal where it ends.
        if let checkpoint, let last = lastSeq, let end = cleanEnd, last >= checkpoint.journalSeq,
           report.cuts.isEmpty, report.journalEntriesReplayed == 0, report.recordsScanned == 0,
           report.failedPartitions.isEmpty, keyLog.isEmpty {
            let fd: FileDescriptor
            do { fd = try core.io.open(core.paths.journal(last), create: false) } catch { throw ioError(error) }
            return (Outcome(journal: JournalHandle(seq: last, fd: fd, position: end), journalSeqs: seqs, keyFiles: keyFiles),
                    makeCheckpointer(keyFiles))
        }

        // The new journal, then (unless a partition could not be recovered) a checkpoint that
        // makes everything recovered durable and retires the replayed journals.
        let start = checkpoint?.journalSeq ?? 1
        let newSeq = max(start, lastSeq.map { $0 + 1 } ?? start)
        let journal: JournalHandle
        do { journal = try Writer.openJournal(core: core, seq: newSeq) } catch { throw ioError(error) }
        let checkpointer = makeCheckpointer(keyFiles)
        var live = seqs.filter { $0 != newSeq } + [newSeq]
        if report.failedPartitions.isEmpty {
            var snapshots: [CheckpointJob.PartitionSnapshot] = []
            for p in core.allPartitions {
                var w = p.writer.value
                guard let active = w.active else { continue }
                snapshots.append(.init(partition: p, endOffset: w.nextOffset, segmentBase: active.base, position: w.activeBytes,
                                       dirty: w.dirtySegments, directoryDirty: w.directoryDirty, active: active))
                w.dirtySegments.removeAll()
                w.directoryDirty = false
                p.writer.value = w
            }
            let job = CheckpointJob(journalSeq: newSeq, timeMs: core.config.nowMs(), partitions: snapshots,
                                    consumers: core.consumers.withLock { $0.mapValues(\.state) }, keys: keyLog,
                                    retireJournals: seqs.filter { $0 < newSeq }, recovery: true)
            guard checkpointer.run(job) else { throw LogStoreError.io("recovery checkpoint failed (see log)") }
            live = [newSeq]
            report.checkpointMs = lap()
        } else {
            let reason = "unrecoverable partitions at open: \(report.failedPartitions.keys.sorted())"
            core.checkpoints.withLock { $0.suspended = reason }
            core.logger.critical("checkpoints suspended: journals are kept until the store is repaired and reopened",
                                 metadata: ["reason": "\(reason)"])
        }
        return (Outcome(journal: journal, journalSeqs: live, keyFiles: checkpointer.keyFiles), checkpointer)
    }

    // MARK: Idempotency keys

    /// Loads the key files the checkpoint covers (oldest first), skipping keys outside the
    /// dedup window; removes key files the checkpoint does not cover (an unfinished checkpoint).
    private mutating func loadKeyFiles() throws(LogStoreError) {
        let io = core.io
        let names: [String]
        do { names = try io.list(core.paths.keysDirectory) } catch { throw ioError(error) }
        var seqs: [UInt64] = []
        for name in names {
            let path = "\(core.paths.keysDirectory)/\(name)"
            guard name.hasSuffix(".keys"), let seq = UInt64(name.prefix(20)), name.utf8.count == 25 else {
                try? io.remove(path)
                continue
            }
            if let ckpt = checkpoint, seq <= ckpt.journalSeq { seqs.append(seq) } else { try? io.remove(path) }
        }
        var files: [(seq: UInt64, bytes: [UInt8])] = []
        for seq in seqs.sorted() {
            do { files.append((seq, try io.readWholeFile(core.paths.keys(seq)))) } catch { throw ioError(error) }
        }
        let estimate = files.reduce(0) { $0 + KeyFile.estimatedEntries(fileBytes: $1.bytes.count) }
        var loaded = 0
        let cutoff = cutoffMs
        let core = self.core
        core.submission.withLock { $0.keys.reserveCapacity(estimate + (1 << 16)) }
        for (seq, bytes) in files {
            var newest = Int64.min
            var numbers: [UInt32?] = []
            do {
                try core.submission.withLock { (s) throws(DecodeError) in
                    try KeyFile.forEachEntry(in: bytes, names: { names in
                        numbers = names.map { core.partition(named: $0, create: false)?.number }
                    }) { hash, nameIndex, offset, ts in
                        if ts > newest { newest = ts }
                        guard ts >= cutoff, let number = numbers[nameIndex] else { return }
                        s.keys.insert(hash, .init(partition: number, offset: offset, timestampMs: ts))
                        loaded += 1
                    }
                }
            } catch {
                core.logger.error("idempotency key file unreadable: its keys are forgotten (duplicates of those messages are not detected)",
                                  metadata: ["file": "\(core.paths.keys(seq))", "error": "\(error)"])
                continue
            }
            keyFiles.append((seq, newest))
        }
        report.keysLoaded = loaded
    }

    private mutating func rememberKey(_ key: UnsafeRawBufferPointer, partition: Partition, offset: UInt64, timestampMs: Int64) {
        guard partition.key != nil, timestampMs >= cutoffMs else { return }
        let hash = core.hasher.hash(key)
        core.submission.withLock { s in
            _ = s.keys.insert(hash, .init(partition: partition.number, offset: offset, timestampMs: timestampMs))
        }
        keyLog.append(KeyFile.Entry(hash: hash, partition: partition.name, offset: offset, timestampMs: timestampMs))
    }

    // MARK: Partitions

    private mutating func cut(_ p: Partition, file: String, position: Int64, bytes: Int64, firstOffset: UInt64?, reason: String) {
        let c = RecoveryCut(log: p.name, file: file, position: position, bytes: bytes, firstOffset: firstOffset, reason: reason)
        report.cuts.append(c)
        core.metrics.recoveryTruncations.increment()
        core.metrics.recoveryTruncatedBytes.increment(by: Int(bytes))
        core.logger.error("recovery cut the tail of a partition", metadata: [
            "partition": "\(p.name)", "file": "\(file)", "position": "\(position)", "bytes": "\(bytes)",
            "firstOffset": "\(firstOffset.map(String.init) ?? "-")", "reason": "\(reason)",
        ])
    }

    private mutating func failPartition(_ p: Partition, _ reason: String, end: UInt64, readable: [SegmentInfo] = []) {
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
    private mutating func recoverPartition(_ p: Partition, entry: CheckpointFile.PartitionEntry?) throws(LogStoreError) {
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
            let segment = Segment(base: bases[i], directory: p.directory, io: io)
            let bytes = (try? io.size(atPath: segment.logPath)) ?? 0
            infos.append(SegmentInfo(segment: segment, bytes: bytes, endOffset: bases[i + 1], index: nil,
                                     sealed: true, checkpointed: true))
        }

        var end = entry?.endOffset ?? bases[scanFrom]
        var dirty: [Segment] = []
        var stopped = false
        for i in scanFrom..<bases.count {
            let base = bases[i]
            let segment = Segment(base: base, directory: p.directory, io: io)
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
            do {
                fd = try segment.descriptor()
                size = try io.size(fd)
            } catch { throw ioError(error) }
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
            for k in keys { k.bytes.withUnsafeBytes { rememberKey($0, partition: p, offset: k.offset, timestampMs: k.ts) } }
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
                try rewrite(fd, from: trustedBytes, to: stop.position)
                dirty.append(segment)
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

    private struct TailScan {
        var stop: FileScanner.Stop
        var index: SparseIndex
        /// Offset of the first frame not accepted.
        var expected: UInt64
        var lastTs: Int64?
        /// Offset found at byte `trustedBytes` (nil when no frame boundary is there).
        var trustedEndSeen: UInt64?
        /// Keys of the frames at or after `trustedBytes`.
        var keys: [(offset: UInt64, ts: Int64, bytes: [UInt8])]
    }

    /// Scans a segment from the last entry of `index` to its end, verifying every frame.
    private func scanTail(_ fd: FileDescriptor, base: UInt64, size: Int64, trustedBytes: Int64,
                          index start: SparseIndex) throws(LogStoreError) -> TailScan {
        let interval = Int64(core.config.indexIntervalBytes)
        var index = start
        let resume = index.floor(UInt64.max >> 1) ?? (0, 0)
        var expected = base + resume.relativeOffset
        var lastIndexed = index.lastPosition
        var lastTs: Int64?
        var trustedEndSeen: UInt64? = trustedBytes == 0 ? expected : nil
        var keys: [(offset: UInt64, ts: Int64, bytes: [UInt8])] = []
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
                }
                lastTs = v.timestampMs
                expected += 1
                return .frame(totalBytes: v.totalBytes)
            }
        } catch { throw ioError(error) }
        if stop.position == trustedBytes && trustedEndSeen == nil { trustedEndSeen = expected }
        return TailScan(stop: stop, index: index, expected: expected, lastTs: lastTs, trustedEndSeen: trustedEndSeen, keys: keys)
    }

    /// Writes bytes `[from, to)` of a segment back in place. Their checksums passed, but they
    /// may be in the page cache only: after a failed fdatasync Linux marks dirty pages clean, so
    /// a later fdatasync would not write them. Rewriting makes them dirty again, and the
    /// recovery checkpoint's fdatasync then really persists them.
    private func rewrite(_ fd: FileDescriptor, from: Int64, to: Int64) throws(LogStoreError) {
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

    // MARK: Journals

    /// Replays journals from the checkpoint's sequence, in order, up to the first entry that is
    /// not intact; returns the journal sequences found (all of them, for retirement) and the
    /// last one replayed.
    /// Also returns where the last journal's written data ends when it ended cleanly.
    private mutating func replayJournals() throws(LogStoreError) -> ([UInt64], UInt64?, Int64?) {
        let io = core.io
        let paths = core.paths
        let names: [String]
        do { names = try io.list(paths.journalDirectory) } catch { throw ioError(error) }
        var seqs: [UInt64] = []
        var spare = false
        for name in names {
            if name == "spare.wal" { spare = true; continue }
            if let seq = JournalFormat.seq(fromFileName: name) { seqs.append(seq) } else {
                try? io.remove("\(paths.journalDirectory)/\(name)")
            }
        }
        core.spareJournal.withLock { $0 = spare }
        seqs.sort()
        let start = checkpoint?.journalSeq ?? seqs.first ?? 1
        for seq in seqs where seq < start { try? io.remove(paths.journal(seq)) }
        var expectedSeq = start
        var lastReplayed: UInt64?
        var cleanEnd: Int64?
        var stopped = false
        var found: [UInt64] = []
        for seq in seqs where seq >= start {
            let path = paths.journal(seq)
            if stopped || seq != expectedSeq {
                let bytes = (try? io.size(atPath: path)) ?? 0
                recordJournalCut(file: path, position: 0, bytes: bytes,
                                 reason: stopped ? "journal after a cut" : "journal sequence gap (expected \(expectedSeq))")
                try? io.remove(path)
                stopped = true
                continue
            }
            found.append(seq)
            lastReplayed = seq
            expectedSeq = seq + 1
            let fd: FileDescriptor
            let size: Int64
            do {
                fd = try io.open(path, create: false)
                size = try io.size(fd)
            } catch { throw ioError(error) }
            defer { io.close(fd) }
            var scanner = FileScanner(io: io, file: fd, from: 0, limit: size)
            var failure: LogStoreError?
            let stop: FileScanner.Stop
            do {
                stop = try scanner.scan { buffer, at, _ in
                    switch JournalFormat.decode(buffer, at: at, seq: seq) {
                    case .entry(let entry, let total):
                        do { try apply(entry, buffer: buffer) } catch {
                            failure = error as? LogStoreError ?? .io("\(error)")
                            return .invalid("apply failed")
                        }
                        report.journalEntriesReplayed += 1
                        return .frame(totalBytes: total)
                    case .end:
                        return .invalid("end")
                    case .incomplete(let total):
                        return .incomplete(totalBytes: total)
                    case .invalid(let why):
                        return .invalid(why)
                    }
                }
            } catch { throw ioError(error) }
            if let failure { throw failure }
            switch stop.reason {
            case .invalid("end"), .end:
                cleanEnd = stop.position
            case .tornFrame, .invalid:
                cleanEnd = nil
                let why: String
                if case .invalid(let w) = stop.reason { why = w } else { why = "torn entry" }
                recordJournalCut(file: path, position: stop.position, bytes: size - stop.position,
                                 reason: "\(why): the commit group there was never acknowledged")
                stopped = true
            }
        }
        return (found, lastReplayed, cleanEnd)
    }

    private mutating func recordJournalCut(file: String, position: Int64, bytes: Int64, reason: String) {
        report.cuts.append(RecoveryCut(log: "journal", file: file, position: position, bytes: bytes, firstOffset: nil, reason: reason))
        core.metrics.recoveryTruncations.increment()
        core.logger.error("recovery stopped the journal replay", metadata: [
            "file": "\(file)", "position": "\(position)", "bytesAfter": "\(bytes)", "reason": "\(reason)",
        ])
    }

    private mutating func apply(_ entry: JournalFormat.Entry, buffer: UnsafeRawBufferPointer) throws(LogStoreError) {
        switch entry {
        case .append(let name, let count, let frames):
            guard name == StorePaths.quarantineName || PartitionKey(name) != nil,
                  let p = core.partition(named: name, create: true) else {
                core.logger.error("journal entry for an invalid partition name skipped", metadata: ["name": "\(name)"])
                return
            }
            guard p.failure == nil else { return }
            var next = p.writer.value.nextOffset
            var layout: [(offset: UInt64, bytes: Int, timestampMs: Int64)] = []
            var first: Int?
            var at = frames.lowerBound
            for _ in 0..<count {
                guard case .frame(let v) = RecordFrame.decode(UnsafeRawBufferPointer(rebasing: buffer[..<frames.upperBound]), at: at,
                                                              bodyBytesMax: RecordFrame.bodyBytesLimit) else {
                    throw LogStoreError.io("journal entry for \(name) holds an invalid record frame despite its checksum")
                }
                defer { at += v.totalBytes }
                if v.offset < next { continue }
                if v.offset > next {
                    failPartition(p, "journal continues at offset \(v.offset) but the log ends at \(next)", end: v.offset)
                    return
                }
                first = first ?? at
                layout.append((v.offset, v.totalBytes, v.timestampMs))
                rememberKey(UnsafeRawBufferPointer(rebasing: buffer[v.keyRange]), partition: p, offset: v.offset, timestampMs: v.timestampMs)
                next += 1
            }
            guard let first, !layout.isEmpty else { return }
            do {
                try p.writeFrames(UnsafeRawBufferPointer(rebasing: buffer[first..<frames.upperBound]), layout: layout,
                                  segmentBytesMax: core.config.segmentBytesMax, indexIntervalBytes: core.config.indexIntervalBytes)
            } catch { throw ioError(error) }
            p.publish()
            report.recordsReplayed += layout.count
        case .ack(let name, let offsets):
            core.consumers.withLock { $0[name, default: AckTracker()].acknowledge(offsets) }
        case .lease(let name, let lease):
            core.consumers.withLock { $0[name, default: AckTracker()].recordLease(lease) }
        case .release(let name, let stream):
            core.consumers.withLock { $0[name, default: AckTracker()].releaseLease(stream: stream) }
        }
    }
}
