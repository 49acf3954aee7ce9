import Logging
import Synchronization

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
    /// Records verified in segments past the checkpoint (with a checkpoint, only those a
    /// journal entry also holds are kept; the others appear in `cuts`).
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

/// Open-time recovery (docs/storage.md, "Recovery"): load the checkpoint's view, verify every
/// partition's tail (cutting and reporting what is torn, corrupt or was never made durable),
/// replay the journals, and hand the still-loading idempotency index to the store.
struct Recovery {
    let core: StoreCore
    let checkpoint: CheckpointFile?
    var report = RecoveryReport()
    /// Keys found past the checkpoint: written by the next checkpoint's key file...
    var keyLog: [KeyFile.Entry] = []
    /// ...and inserted into the index after the key files' keys.
    var recoveredKeys: [(KeyHash, IdempotencyIndex.Location)] = []
    /// With a checkpoint, the journals since it are the truth: a record past the checkpoint is
    /// kept only if a durable journal entry holds it. Without one (first open, or CHECKPOINT
    /// lost) every verified record in the segments is kept.
    var journalIsTruth: Bool { checkpoint != nil }
    /// One past the last offset each partition's journal entries hold (by partition number).
    var journaled: [UInt32: UInt64] = [:]
    /// Records found in segments past the checkpoint, by partition number: the first offset and
    /// each record's (checksum, id), to check them against the journal's copy.
    var scannedFrames: [UInt32: (first: UInt64, frames: [(crc: UInt32, id: ResourceID)])] = [:]
    /// Segment ranges verified past the checkpoint, rewritten once the end is settled.
    var scannedRanges: [UInt32: [(segment: Segment, from: Int64)]] = [:]
    let cutoffMs: Int64

    init(core: StoreCore, checkpoint: CheckpointFile?) {
        self.core = core
        self.checkpoint = checkpoint
        self.cutoffMs = core.config.nowMs() - core.config.dedupWindowMs
    }

    struct Outcome {
        let journal: JournalHandle
        let journalSeqs: [UInt64]
        /// The idempotency index, still loading.
        let keys: PendingKeys
        /// Keys recovered past the checkpoint that no key file holds yet (the writer's next
        /// checkpoint writes them).
        let keyLog: [KeyFile.Entry]
    }

    func ioError(_ e: any Error) -> LogStoreError { .io("recovery: \(e)") }

    mutating func run(checkpointer makeCheckpointer: () -> Checkpointer) throws(LogStoreError) -> (Outcome, Checkpointer) {
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
        // Key files load on their own thread (CPU and memory bound) while partitions and
        // journals recover (mostly I/O).
        let keySeqs = try keyFileSeqs()
        let keyResult = KeyLoadBox()
        let (keyCore, cutoff) = (core, cutoffMs)
        let keyThread = OSThread(name: "logstore-keys") {
            let load = Recovery.loadKeyFiles(core: keyCore, seqs: keySeqs, cutoffMs: cutoff)
            keyResult.value.withLock { $0 = load }
        }
        var keysHandedOver = false
        defer { if !keysHandedOver { keyThread.join() } }

        let entries = Dictionary((checkpoint?.partitions ?? []).map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for p in core.allPartitions {
            try recoverPartition(p, entry: entries[p.name])
        }
        core.consumers.withLock { c in
            for e in checkpoint?.partitions ?? [] { c[e.name] = AckTracker(e.consumer) }
        }
        report.partitionsMs = lap()

        let replayed: Result<Replay, LogStoreError>
        do {
            let r = try replayJournals()
            if journalIsTruth { try settle(entries: entries) }
            replayed = .success(r)
        } catch { replayed = .failure(error) }
        report.journalsMs = lap()
        let replay = try replayed.get()
        let keys = PendingKeys(thread: keyThread, result: keyResult, recovered: recoveredKeys)
        if !report.failedPartitions.isEmpty {
            let reason = "unrecoverable partitions at open: \(report.failedPartitions.keys.sorted())"
            core.checkpoints.withLock { $0.suspended = reason }
            core.logger.critical("checkpoints suspended: journals are kept until the store is repaired and reopened",
                                 metadata: ["reason": "\(reason)"])
        }

        if let checkpoint {
            // The journals stay until the first checkpoint after open, which also fsyncs the
            // segments recovery rewrote and writes the recovered keys: writing continues in the
            // last journal, after its intact entries (a torn tail is overwritten with the end
            // marker first).
            let journal: JournalHandle
            do {
                if let last = replay.seqs.last, let end = replay.endOfLast {
                    let fd = try core.io.open(core.paths.journal(last), create: false)
                    if replay.lastTorn {
                        try core.io.writeAll(fd, [UInt8](repeating: 0, count: JournalFormat.headerBytes), at: end)
                        try core.io.sync(fd)
                    }
                    journal = JournalHandle(seq: last, fd: fd, position: end)
                } else {
                    journal = try Writer.openJournal(core: core, seq: checkpoint.journalSeq)
                }
            } catch { throw ioError(error) }
            let seqs = replay.seqs.isEmpty ? [journal.seq] : replay.seqs
            keysHandedOver = true
            return (Outcome(journal: journal, journalSeqs: seqs, keys: keys, keyLog: keyLog), makeCheckpointer())
        }

        // No checkpoint (a new store, or CHECKPOINT lost): checkpoint now, which also records
        // the idempotency hash seed.
        let newSeq = replay.seqs.last.map { $0 + 1 } ?? 1
        let journal: JournalHandle
        do { journal = try Writer.openJournal(core: core, seq: newSeq) } catch { throw ioError(error) }
        let checkpointer = makeCheckpointer()
        guard report.failedPartitions.isEmpty else {
            keysHandedOver = true
            return (Outcome(journal: journal, journalSeqs: replay.seqs + [newSeq], keys: keys, keyLog: keyLog), checkpointer)
        }
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
                                retireJournals: replay.seqs, recovery: true)
        guard checkpointer.run(job) else { throw LogStoreError.io("recovery checkpoint failed (see log)") }
        report.checkpointMs = lap()
        keysHandedOver = true
        return (Outcome(journal: journal, journalSeqs: [newSeq], keys: keys, keyLog: []), checkpointer)
    }

    /// With a checkpoint: each partition keeps exactly what the checkpoint and the journals
    /// hold. Records past that were written to a segment but never made durable (their commit
    /// group's fdatasync did not complete): they are cut and reported. What is kept past the
    /// checkpoint is rewritten in place (see `rewrite`) and left dirty for the next checkpoint.
    mutating func settle(entries: [String: CheckpointFile.PartitionEntry]) throws(LogStoreError) {
        for p in core.allPartitions where p.failure == nil {
            let end = p.writer.value.nextOffset
            let start = p.state.withLock { $0.segments.first?.base } ?? end
            let covered = max(journaled[p.number] ?? 0, entries[p.name]?.endOffset ?? start)
            if end > covered { try truncate(p, to: covered) }
            let current = p.state.withLock { $0.segments }
            for range in scannedRanges[p.number] ?? [] {
                guard let info = current.first(where: { $0.segment === range.segment }), info.bytes > range.from else { continue }
                let fd: FileDescriptor
                do { fd = try info.segment.pin() } catch { throw ioError(error) }
                defer { info.segment.unpin() }
                try rewrite(fd, from: range.from, to: info.bytes)
                var w = p.writer.value
                if !w.dirtySegments.contains(where: { $0 === info.segment }) { w.dirtySegments.append(info.segment) }
                p.writer.value = w
            }
        }
    }

    /// Cuts partition `p` so that `offset` is its end (records from `offset` on are removed).
    mutating func truncate(_ p: Partition, to offset: UInt64,
                                   reason: String = "written but never made durable: not in the journal") throws(LogStoreError) {
        let io = core.io
        let segments = p.state.withLock { $0.segments }
        guard let i = p.state.withLock({ $0.segmentIndex(for: offset) }) ?? (segments.isEmpty ? nil : 0) else { return }
        let info = segments[i]
        // Byte position of `offset` in segment i: from the index entry at or before it, walk frames.
        let index = info.index ?? SparseIndex()
        let entry = index.floor(offset >= info.base ? offset - info.base : 0) ?? (0, 0)
        var expected = info.base + entry.relativeOffset
        var position = entry.position
        let fd: FileDescriptor
        do { fd = try info.segment.pin() } catch { throw ioError(error) }
        defer { info.segment.unpin() }
        var scanner = FileScanner(io: io, file: fd, from: entry.position, limit: info.bytes)
        do {
            _ = try scanner.scan { buffer, at, filePosition in
                position = filePosition
                guard expected < offset, case .frame(let v) = RecordFrame.decode(buffer, at: at, bodyBytesMax: RecordFrame.bodyBytesLimit),
                      v.offset == expected else { return .invalid("stop") }
                expected += 1
                position = filePosition + Int64(v.totalBytes)
                return .frame(totalBytes: v.totalBytes)
            }
        } catch { throw ioError(error) }
        guard expected == offset else {
            failPartition(p, "cannot locate offset \(offset) in \(info.segment.logPath) to cut unjournaled records", end: offset)
            return
        }
        cut(p, file: info.segment.logPath, position: position, bytes: info.bytes - position, firstOffset: offset, reason: reason)
        do { try io.truncate(fd, to: position) } catch { throw ioError(error) }
        for later in segments[(i + 1)...] {
            cut(p, file: later.segment.logPath, position: 0, bytes: later.bytes, firstOffset: later.base, reason: reason)
            try? io.remove(later.segment.logPath)
            try? io.remove(later.segment.indexPath)
        }
        var truncated = info
        truncated.bytes = position
        truncated.endOffset = offset
        truncated.index?.truncate(belowPosition: position)
        truncated.sealed = false
        truncated.checkpointed = false
        let kept = Array(segments[..<i]) + [truncated]
        p.state.withLock { s in
            s.segments = kept
            s.durableEnd = offset
        }
        var w = p.writer.value
        w.active = truncated.segment
        w.activeBytes = position
        w.nextOffset = offset
        w.lastIndexedPosition = truncated.index?.lastPosition
        if !w.dirtySegments.contains(where: { $0 === truncated.segment }) { w.dirtySegments.append(truncated.segment) }
        w.dirtySegments.removeAll { dead in segments[(i + 1)...].contains { $0.segment === dead } }
        w.directoryDirty = w.directoryDirty || i + 1 < segments.count
        p.writer.value = w
    }
}
