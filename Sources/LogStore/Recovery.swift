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
    private var recoveredKeys: [(KeyHash, IdempotencyIndex.Location)] = []
    /// With a checkpoint, the journals since it are the truth: a record past the checkpoint is
    /// kept only if a durable journal entry holds it. Without one (first open, or CHECKPOINT
    /// lost) every verified record in the segments is kept.
    private var journalIsTruth: Bool { checkpoint != nil }
    /// One past the last offset each partition's journal entries hold (by partition number).
    private var journaled: [UInt32: UInt64] = [:]
    /// Records found in segments past the checkpoint, by partition number: the first offset and
    /// each record's (checksum, id), to check them against the journal's copy.
    private var scannedFrames: [UInt32: (first: UInt64, frames: [(crc: UInt32, id: ResourceID)])] = [:]
    /// Segment ranges verified past the checkpoint, rewritten once the end is settled.
    private var scannedRanges: [UInt32: [(segment: Segment, from: Int64)]] = [:]
    private let cutoffMs: Int64

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

    private func ioError(_ e: any Error) -> LogStoreError { .io("recovery: \(e)") }

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
        keysHandedOver = true
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
            return (Outcome(journal: journal, journalSeqs: seqs, keys: keys, keyLog: keyLog), makeCheckpointer())
        }

        // No checkpoint (a new store, or CHECKPOINT lost): checkpoint now, which also records
        // the idempotency hash seed.
        let newSeq = replay.seqs.last.map { $0 + 1 } ?? 1
        let journal: JournalHandle
        do { journal = try Writer.openJournal(core: core, seq: newSeq) } catch { throw ioError(error) }
        let checkpointer = makeCheckpointer()
        guard report.failedPartitions.isEmpty else {
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
        return (Outcome(journal: journal, journalSeqs: [newSeq], keys: keys, keyLog: []), checkpointer)
    }

    /// With a checkpoint: each partition keeps exactly what the checkpoint and the journals
    /// hold. Records past that were written to a segment but never made durable (their commit
    /// group's fdatasync did not complete): they are cut and reported. What is kept past the
    /// checkpoint is rewritten in place (see `rewrite`) and left dirty for the next checkpoint.
    private mutating func settle(entries: [String: CheckpointFile.PartitionEntry]) throws(LogStoreError) {
        for p in core.allPartitions where p.failure == nil {
            let end = p.writer.value.nextOffset
            let start = p.state.withLock { $0.segments.first?.base } ?? end
            let covered = max(journaled[p.number] ?? 0, entries[p.name]?.endOffset ?? start)
            if end > covered { try truncate(p, to: covered) }
            let current = p.state.withLock { $0.segments }
            for range in scannedRanges[p.number] ?? [] {
                guard let info = current.first(where: { $0.segment === range.segment }), info.bytes > range.from else { continue }
                let fd: FileDescriptor
                do { fd = try info.segment.descriptor() } catch { throw ioError(error) }
                try rewrite(fd, from: range.from, to: info.bytes)
                var w = p.writer.value
                if !w.dirtySegments.contains(where: { $0 === info.segment }) { w.dirtySegments.append(info.segment) }
                p.writer.value = w
            }
        }
    }

    /// Cuts partition `p` so that `offset` is its end (records from `offset` on are removed).
    private mutating func truncate(_ p: Partition, to offset: UInt64,
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
        do { fd = try info.segment.descriptor() } catch { throw ioError(error) }
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

    // MARK: Idempotency keys

    /// Key files the checkpoint covers, oldest first; removes the others (left by a checkpoint
    /// that did not complete).
    private func keyFileSeqs() throws(LogStoreError) -> [UInt64] {
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
        return seqs.sorted()
    }

    /// The key-loading thread and what it will produce, plus the keys recovery found past the
    /// checkpoint (inserted after the loaded ones).
    final class KeyLoadBox: Sendable {
        let value = Mutex<KeyLoad?>(nil)
    }

    final class PendingKeys: Sendable {
        let thread: OSThread
        let result: KeyLoadBox
        let recovered: [(KeyHash, IdempotencyIndex.Location)]

        init(thread: OSThread, result: KeyLoadBox, recovered: [(KeyHash, IdempotencyIndex.Location)]) {
            self.thread = thread
            self.result = result
            self.recovered = recovered
        }

        /// Waits for the thread and takes its result (moved out: installing it does not copy).
        func take() -> KeyLoad? {
            thread.join()
            return result.value.withLock { (box: inout KeyLoad?) -> KeyLoad? in
                defer { box = nil }
                return box
            }
        }
    }

    /// What the key-loading thread produced.
    struct KeyLoad: Sendable {
        var index: IdempotencyIndex
        var files: [(seq: UInt64, newestMs: Int64)] = []
        var loaded = 0
        var error: LogStoreError?
        var milliseconds: Double = 0
    }

    /// Loads key files into a fresh index, skipping keys outside the dedup window (runs on its
    /// own thread while partitions recover; the registry is complete before it starts).
    static func loadKeyFiles(core: StoreCore, seqs: [UInt64], cutoffMs: Int64) -> KeyLoad {
        let t0 = Clock.monotonicNanoseconds()
        var load = KeyLoad(index: IdempotencyIndex(entriesMax: core.config.idempotencyEntriesMax))
        var files: [(seq: UInt64, bytes: [UInt8])] = []
        for seq in seqs {
            do { files.append((seq, try core.io.readWholeFile(core.paths.keys(seq)))) } catch {
                load.error = .io("recovery: \(error)")
                return load
            }
        }
        load.index.reserveCapacity(files.reduce(1 << 16) { $0 + KeyFile.estimatedEntries(fileBytes: $1.bytes.count) })
        for (seq, bytes) in files {
            do {
                let (newest, loaded) = try insertKeys(from: bytes, into: &load.index, core: core, cutoffMs: cutoffMs)
                load.loaded += loaded
                load.files.append((seq, newest))
            } catch {
                core.logger.error("idempotency key file unreadable: its keys are forgotten (duplicates of those messages are not detected)",
                                  metadata: ["file": "\(core.paths.keys(seq))", "error": "\(error)"])
            }
        }
        load.milliseconds = Double(Clock.monotonicNanoseconds() - t0) / 1e6
        return load
    }

    /// Inserts one key file's entries inside the window; returns its newest timestamp and how
    /// many were inserted. The file's checksum is verified before any entry is inserted.
    private static func insertKeys(from bytes: [UInt8], into index: inout IdempotencyIndex, core: StoreCore,
                                   cutoffMs: Int64) throws(DecodeError) -> (newest: Int64, loaded: Int) {
        var newest = Int64.min
        var numbers: [UInt32?] = []
        var items: [(KeyHash, IdempotencyIndex.Location)] = []
        items.reserveCapacity(KeyFile.estimatedEntries(fileBytes: bytes.count))
        try KeyFile.forEachEntry(in: bytes, names: { names in
            numbers = names.map { core.partition(named: $0, create: false)?.number }
        }) { hash, nameIndex, offset, ts in
            if ts > newest { newest = ts }
            guard ts >= cutoffMs, let number = numbers[nameIndex] else { return }
            items.append((hash, .init(partition: number, offset: offset, timestampMs: ts)))
        }
        index.insertAll(items)
        return (newest, items.count)
    }

    /// A key found past the checkpoint (scanned or replayed): inserted into the index after the
    /// key files (keeping the index's oldest-first order), and written to the recovery
    /// checkpoint's key file.
    private mutating func rememberKey(_ key: UnsafeRawBufferPointer, partition: Partition, offset: UInt64, timestampMs: Int64) {
        guard partition.key != nil, timestampMs >= cutoffMs else { return }
        let hash = core.hasher.hash(key)
        recoveredKeys.append((hash, .init(partition: partition.number, offset: offset, timestampMs: timestampMs)))
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
        /// (checksum, id) of the frames at or after `trustedBytes`, in offset order.
        var fingerprints: [(crc: UInt32, id: ResourceID)] = []
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
    struct Replay {
        /// Journal files replayed, in order.
        var seqs: [UInt64] = []
        /// Where the last one's intact entries end, and whether a torn entry follows there.
        var endOfLast: Int64?
        var lastTorn = false
    }

    private mutating func replayJournals() throws(LogStoreError) -> Replay {
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
        var result = Replay()
        var stopped = false
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
            result.seqs.append(seq)
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
            // These entries are trusted from here on (the segments past the checkpoint are not
            // fsynced until the next checkpoint): make sure they are on disk, not only in the page
            // cache, where a failed fdatasync of the previous process may have left them "clean".
            if journalIsTruth && stop.position > 0 {
                try rewrite(fd, from: 0, to: stop.position)
                do { try io.sync(fd) } catch { throw ioError(error) }
            }
            switch stop.reason {
            case .invalid("end"), .end:
                result.endOfLast = stop.position
                result.lastTorn = false
            case .tornFrame, .invalid:
                result.endOfLast = stop.position
                result.lastTorn = true
                let why: String
                if case .invalid(let w) = stop.reason { why = w } else { why = "torn entry" }
                recordJournalCut(file: path, position: stop.position, bytes: size - stop.position,
                                 reason: "\(why): the commit group there was never acknowledged")
                stopped = true
            }
        }
        return result
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
                journaled[p.number] = max(journaled[p.number] ?? 0, v.offset + 1)
                if v.offset < next, let known = scannedFrames[p.number], v.offset >= known.first,
                   v.offset - known.first < UInt64(known.frames.count) {
                    let seen = known.frames[Int(v.offset - known.first)]
                    if seen.crc != buffer.u32LE(at: at) || seen.id != v.id {
                        // A stale record (a cut that a power loss undid) where the journal has
                        // another: the journal wins.
                        try truncate(p, to: v.offset, reason: "differs from the journal's record at this offset (stale)")
                        scannedFrames[p.number]?.frames.removeLast(Int(next - v.offset))
                        next = v.offset
                    }
                }
                if v.offset < next {
                    if journalIsTruth {
                        rememberKey(UnsafeRawBufferPointer(rebasing: buffer[v.keyRange]), partition: p, offset: v.offset,
                                    timestampMs: v.timestampMs)
                    }
                    continue
                }
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
