import Logging
import Synchronization

/// What a checkpoint must make durable, captured by the writer at a group boundary.
struct CheckpointJob: Sendable {
    struct PartitionSnapshot: Sendable {
        let partition: Partition
        let endOffset: UInt64
        let segmentBase: UInt64
        /// Byte position of `endOffset` in the segment `segmentBase`.
        let position: Int64
        /// Segments written since the previous checkpoint.
        let dirty: [Segment]
        /// Segments were created in the partition directory (or the directory itself).
        let directoryDirty: Bool
        let active: Segment
    }

    /// Journals from this sequence on are replayed at open.
    let journalSeq: UInt64
    let timeMs: Int64
    let partitions: [PartitionSnapshot]
    let consumers: [String: ConsumerState]
    let keys: [KeyFile.Entry]
    /// Journal files the checkpoint makes obsolete (recycled or deleted after it completes).
    let retireJournals: [UInt64]
    /// The checkpoint that ends recovery at open (run synchronously).
    let recovery: Bool
}

/// Makes checkpoints durable off the writer thread: index files and fdatasync of dirty
/// segments, directory fsyncs, the key file, then CHECKPOINT (atomic replace); after that the
/// retired journals are recycled or deleted.
final class Checkpointer: Sendable {
    let core: StoreCore
    let hashSeed: (UInt64, UInt64)
    /// Key files on disk: (sequence, newest timestamp), for expiry. The files found at open are
    /// added when the idempotency index has loaded them.
    let keyFiles = Mutex<[(seq: UInt64, newestMs: Int64)]>([])

    init(core: StoreCore, hashSeed: (UInt64, UInt64)) {
        self.core = core
        self.hashSeed = hashSeed
    }

    /// The checkpointer thread's body (first preallocates a spare journal if there is none).
    func runLoop() {
        prepareSpareJournal()
        while true {
            let job: CheckpointJob? = core.checkpoints.wait(until: { $0.job != nil || $0.stop }, deadlineNs: nil) { s in
                defer { s.job = nil }
                return s.job
            }
            guard let job else { return }
            _ = run(job)
            core.checkpoints.withLock {
                $0.inFlight = false
                $0.completed += 1
            }
            core.checkpoints.broadcast()
        }
    }

    /// Runs one checkpoint; false (and checkpoints suspended) when it failed.
    @discardableResult
    func run(_ job: CheckpointJob) -> Bool {
        let t0 = Clock.monotonicNanoseconds()
        let io = core.io
        do {
            for snap in job.partitions {
                for segment in snap.dirty {
                    try persistIndex(snap.partition, segment, below: segment === snap.active ? snap.position : Int64.max)
                    let t = Clock.monotonicNanoseconds()
                    do {
                        try segment.withDescriptor { (fd) throws(FileIOError) in try io.sync(fd) }
                    } catch {
                        snap.partition.discardProgress(reason: "segment fdatasync failed: \(error)")
                        throw error
                    }
                    core.metrics.segmentFsync.recordNanoseconds(Int64(Clock.monotonicNanoseconds() - t))
                }
                if snap.directoryDirty {
                    try io.syncDirectory(snap.partition.directory)
                    try io.syncDirectory(core.paths.parentOfPartition(snap.partition.name))
                }
            }
            if !job.keys.isEmpty {
                let path = core.paths.keys(job.journalSeq)
                let fd = try io.open(path, create: true)
                do {
                    try io.truncate(fd, to: 0)
                    try io.writeAll(fd, KeyFile(entries: job.keys).encode(), at: 0)
                    try io.sync(fd)
                } catch {
                    io.close(fd)
                    throw error
                }
                io.close(fd)
                try io.syncDirectory(core.paths.keysDirectory)
                keyFiles.withLock { $0.append((job.journalSeq, job.keys.map(\.timestampMs).max() ?? job.timeMs)) }
            }
            let file = CheckpointFile(
                journalSeq: job.journalSeq, hashSeed: hashSeed, timeMs: job.timeMs,
                partitions: job.partitions.map {
                    .init(name: $0.partition.name, endOffset: $0.endOffset, segmentBase: $0.segmentBase,
                          position: UInt64($0.position), consumer: job.consumers[$0.partition.name] ?? ConsumerState())
                })
            try io.replaceFileDurably(core.paths.checkpoint, directory: core.paths.root, with: file.encode())
        } catch {
            core.checkpoints.withLock { $0.suspended = $0.suspended ?? "checkpoint failed: \(error)" }
            core.metrics.failures.increment()
            core.logger.critical("checkpoint failed: checkpoints suspended and journals kept until the store is reopened",
                                 metadata: ["error": "\(error)", "journalSeq": "\(job.journalSeq)"])
            return false
        }

        // Sealed segments below the checkpoint position are now covered: retention may delete them.
        for snap in job.partitions {
            snap.partition.state.withLock { s in
                for i in s.segments.indices where s.segments[i].base < snap.segmentBase {
                    s.segments[i].checkpointed = true
                }
            }
        }
        retire(job.retireJournals)
        let cutoff = job.timeMs - core.config.dedupWindowMs
        let expired: [UInt64] = keyFiles.withLock { files in
            defer { files.removeAll { $0.newestMs < cutoff } }
            return files.filter { $0.newestMs < cutoff }.map(\.seq)
        }
        for seq in expired { try? io.remove(core.paths.keys(seq)) }
        core.metrics.checkpoints.increment()
        core.metrics.checkpointDuration.recordNanoseconds(Int64(Clock.monotonicNanoseconds() - t0))
        core.updateGauges()
        core.logger.debug("checkpoint complete", metadata: [
            "journalSeq": "\(job.journalSeq)", "partitions": "\(job.partitions.count)", "keys": "\(job.keys.count)",
        ])
        return true
    }

    /// Writes the index entries of `segment` that are not in its index file yet (those below
    /// `position`), and cuts the file after them.
    private func persistIndex(_ p: Partition, _ segment: Segment, below position: Int64) throws(FileIOError) {
        let (index, persisted): (SparseIndex?, Int) = p.state.withLock { s in
            guard let info = s.segments.first(where: { $0.segment === segment }) else { return (nil, 0) }
            return (info.index, info.indexPersisted)
        }
        guard var index else { return }
        index.truncate(belowPosition: position)
        guard index.count > persisted else { return }
        let fd = try core.io.open(segment.indexPath, create: true)
        defer { core.io.close(fd) }
        try core.io.writeAll(fd, index.encode(persisted..<index.count), at: Int64(persisted * SparseIndex.entryBytes))
        try core.io.truncate(fd, to: Int64(index.count * SparseIndex.entryBytes))
        let count = index.count
        p.state.withLock { s in
            if let i = s.segments.firstIndex(where: { $0.segment === segment }) {
                s.segments[i].indexPersisted = max(s.segments[i].indexPersisted, count)
            }
        }
    }

    /// Retired journals: one becomes journal/spare.wal when there is none (reused by the next
    /// roll: overwriting allocated blocks makes fdatasync cheaper), the others are deleted.
    private func retire(_ seqs: [UInt64]) {
        for seq in seqs {
            let path = core.paths.journal(seq)
            let recycled: Bool = core.spareJournal.withLock { spare in
                guard !spare else { return false }
                guard (try? core.io.rename(path, to: core.paths.spareJournal)) != nil else { return false }
                spare = true
                return true
            }
            if !recycled { try? core.io.remove(path) }
        }
        try? core.io.syncDirectory(core.paths.journalDirectory)
    }

    /// Creates journal/spare.wal filled with zeros when there is none (background work: the
    /// next journal roll then starts on preallocated blocks).
    func prepareSpareJournal() {
        guard !core.spareJournal.withLock({ $0 }) else { return }
        let io = core.io
        let temp = core.paths.journalDirectory + "/spare.tmp"
        do {
            let fd = try io.open(temp, create: true)
            defer { io.close(fd) }
            try io.truncate(fd, to: 0)
            let chunk = [UInt8](repeating: 0, count: 1 << 20)
            var at: Int64 = 0
            while at < Int64(core.config.journalBytesMax) {
                let n = min(chunk.count, core.config.journalBytesMax - Int(at))
                try withBytes(chunk) { (raw) throws(FileIOError) in
                    try io.writeAll(fd, UnsafeRawBufferPointer(rebasing: raw[..<n]), at: at)
                }
                at += Int64(n)
            }
            try io.sync(fd)
            try core.spareJournal.withLock { (spare) throws(FileIOError) in
                guard !spare else { return }
                try io.rename(temp, to: core.paths.spareJournal)
                spare = true
            }
            try io.syncDirectory(core.paths.journalDirectory)
        } catch {
            try? io.remove(temp)
            core.logger.warning("could not preallocate a spare journal file", metadata: ["error": "\(error)"])
        }
    }
}
