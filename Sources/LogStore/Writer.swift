import Logging

/// The journal file the writer appends to.
struct JournalHandle {
    let seq: UInt64
    let fd: FileDescriptor
    var position: Int64
}

/// The dedicated writer: takes commit groups off the submission queue, writes one journal
/// entry per touched partition plus the records to each partition's active segment, does one
/// fdatasync of the journal, publishes, and hands completions to the sink. Also rolls the
/// journal and captures checkpoints between groups. Touched only by the writer thread (or the
/// test's `pump()` in manual mode).
final class Writer: @unchecked Sendable {
    let core: StoreCore
    let checkpointer: Checkpointer
    private(set) var journal: JournalHandle
    /// Journal files not yet retired by a checkpoint (oldest first; includes the current one).
    private var journalSeqs: [UInt64]
    private var buffer = ByteWriter(capacity: 1 << 20)
    /// Keys made durable since the last checkpoint capture (become the next key file).
    private var keyLog: [KeyFile.Entry] = []
    private(set) var failed = false

    init(core: StoreCore, checkpointer: Checkpointer, journal: JournalHandle, journalSeqs: [UInt64], keyLog: [KeyFile.Entry]) {
        self.core = core
        self.checkpointer = checkpointer
        self.journal = journal
        self.journalSeqs = journalSeqs
        self.keyLog = keyLog
    }

    // MARK: Thread loop

    enum Taken {
        case ops([WriteOp])
        case idle
        case closing
    }

    /// The writer thread's body: commit groups until `close()`, then a final checkpoint.
    func run() {
        while true {
            switch takeGroup(blocking: true) {
            case .ops(let ops): commit(ops)
            case .idle: break
            case .closing:
                finish()
                return
            }
            maybeCheckpoint()
        }
    }

    /// Takes the next commit group off the queue: at least one operation, then more while the
    /// group stays within `groupRecordsMax` and `groupBytesMax`.
    func takeGroup(blocking: Bool) -> Taken {
        let config = core.config
        let deadline = blocking ? Clock.monotonicNanoseconds() + 250_000_000 : 0
        let first: Bool = core.submission.wait(until: { !$0.queue.isEmpty || $0.closing || !blocking },
                                               deadlineNs: deadline) { !$0.queue.isEmpty }
        if !first {
            return core.submission.withLock { $0.closing } ? .closing : .idle
        }
        if blocking && config.groupWaitMicros > 0 {
            let until = Clock.monotonicNanoseconds() + UInt64(config.groupWaitMicros) * 1000
            core.submission.wait(until: {
                $0.queuedRecords >= config.groupRecordsMax || $0.queuedBytes >= config.groupBytesMax || $0.closing
            }, deadlineNs: until) { _ in () }
        }
        return .ops(core.submission.withLock { s in
            var ops: [WriteOp] = []
            var records = 0
            var bytes = 0
            while let op = s.queue.first,
                  ops.isEmpty || (records + op.records <= config.groupRecordsMax && bytes + op.bytes <= config.groupBytesMax) {
                _ = s.queue.removeFirst()
                ops.append(op)
                records += op.records
                bytes += op.bytes
            }
            s.queuedRecords -= records
            s.queuedBytes -= bytes
            return ops
        })
    }

    /// Drains the queue, then checkpoints so that the next open replays nothing.
    func finish() {
        while case .ops(let ops) = takeGroup(blocking: false) { commit(ops) }
        core.checkpoints.wait(until: { !$0.inFlight }, deadlineNs: nil) { _ in () }
        if !failed, let job = capture() {
            _ = checkpointer.run(job)
            core.checkpoints.withLock { $0.inFlight = false }
        }
        core.checkpoints.withLock { $0.stop = true }
        core.checkpoints.broadcast()
        core.io.close(journal.fd)
    }

    // MARK: Group commit

    private struct Touched {
        let partition: Partition
        var ops: [WriteOp] = []
    }

    /// One commit group on its way through the phases of `commit`.
    private struct Group {
        let ops: [WriteOp]
        /// Partitions in order of first appearance; each partition's ops stay in order.
        var touched: [Touched] = []
        /// Slots (indexes into `touched`) of partitions that had failed before this group.
        var skipped = Set<Int>()
        /// Slots whose segment write failed in this group.
        var failedNow = Set<Int>()
        var segmentWrites: [(slot: Int, frames: Range<Int>, layout: [(offset: UInt64, bytes: Int, timestampMs: Int64)])] = []
        var entryBytes = 0
        var recordCount = 0

        func ok(_ slot: Int) -> Bool { !skipped.contains(slot) && !failedNow.contains(slot) }
    }

    /// Commits one group in named phases. Nothing of the group is published or completed before
    /// every durability target (the local journal's fdatasync and, when configured, the
    /// `DurabilityTarget`) has it; a failure of either fails the store (outcome unknown).
    func commit(_ ops: [WriteOp]) {
        precondition(!ops.isEmpty)
        guard !failed else {
            deliver(ops.compactMap { $0.failureCompletion(.storeFailed("store failed earlier")) })
            return
        }
        var group = planGroup(ops)
        encodeJournalEntries(&group)
        guard writeJournal(group) else { return }
        writeSegments(&group)
        // The group's events, built once when someone consumes them (target and/or observer).
        let events = core.config.durabilityTarget != nil || core.config.eventObserver != nil ? committedGroup(group) : nil
        guard makeDurable(group, events: events) else { return }
        publish(group, events: events)
        complete(group)
    }

    /// Plan: group the ops by partition; partitions that failed earlier are skipped.
    private func planGroup(_ ops: [WriteOp]) -> Group {
        var group = Group(ops: ops)
        var slots: [UInt32: Int] = [:]
        for op in ops {
            let p = op.partition
            if let i = slots[p.number] {
                group.touched[i].ops.append(op)
            } else {
                slots[p.number] = group.touched.count
                group.touched.append(Touched(partition: p, ops: [op]))
            }
        }
        for (i, t) in group.touched.enumerated() where t.partition.failure != nil { group.skipped.insert(i) }
        return group
    }

    /// Journal: one entry per partition for its appends, then acks, leases, releases, into
    /// `buffer`; records where each partition's frames lie for the segment writes.
    private func encodeJournalEntries(_ group: inout Group) {
        buffer.bytes.removeAll(keepingCapacity: true)
        for (i, t) in group.touched.enumerated() where !group.skipped.contains(i) {
            let p = t.partition
            let appends = t.ops.compactMap { op -> AppendOp? in
                if case .append(let a) = op, !a.records.isEmpty { return a }
                return nil
            }
            if !appends.isEmpty {
                let start = JournalFormat.begin(&buffer, seq: journal.seq, kind: .append, partition: p.name)
                let countAt = buffer.count
                buffer.u32(0)
                let framesStart = buffer.count
                var layout: [(offset: UInt64, bytes: Int, timestampMs: Int64)] = []
                for a in appends {
                    for (k, r) in a.records.enumerated() {
                        let before = buffer.count
                        let offset = a.firstOffset + UInt64(k)
                        RecordFrame.append(to: &buffer.bytes, offset: offset, timestampMs: r.timestampMs, id: r.id,
                                           key: r.key, payload: r.payload)
                        layout.append((offset, buffer.count - before, r.timestampMs))
                    }
                }
                buffer.patchU32(at: countAt, UInt32(layout.count))
                let framesEnd = buffer.count
                JournalFormat.finish(&buffer, start: start)
                group.segmentWrites.append((i, framesStart..<framesEnd, layout))
                group.recordCount += layout.count
            }
            var acked: [UInt64] = []
            for case .ack(_, let offsets, _) in t.ops { acked += offsets }
            if !acked.isEmpty {
                let start = JournalFormat.begin(&buffer, seq: journal.seq, kind: .ack, partition: p.name)
                buffer.u32(UInt32(acked.count))
                for o in acked { buffer.u64(o) }
                JournalFormat.finish(&buffer, start: start)
            }
            for op in t.ops {
                switch op {
                case .lease(_, let lease):
                    let start = JournalFormat.begin(&buffer, seq: journal.seq, kind: .lease, partition: p.name)
                    buffer.u64(lease.stream)
                    buffer.u64(lease.sequence)
                    buffer.u32(UInt32(lease.offsets.count))
                    for o in lease.offsets { buffer.u64(o) }
                    JournalFormat.finish(&buffer, start: start)
                case .release(_, let stream):
                    let start = JournalFormat.begin(&buffer, seq: journal.seq, kind: .release, partition: p.name)
                    buffer.u64(stream)
                    JournalFormat.finish(&buffer, start: start)
                case .append, .ack:
                    break
                }
            }
        }
        group.entryBytes = buffer.count
    }

    /// Journal write (page cache): the entries, then a zero header marking the end of written
    /// data (overwritten by the next group). False when the store failed.
    private func writeJournal(_ group: Group) -> Bool {
        guard group.entryBytes > 0 else { return true }
        buffer.u64(0)
        do {
            try core.io.writeAll(journal.fd, buffer.bytes, at: journal.position)
        } catch {
            failStore("journal write failed: \(error)", touched: group.touched.map(\.partition), ops: group.ops)
            return false
        }
        journal.position += Int64(group.entryBytes)
        return true
    }

    /// Segment writes (page cache only; the journal makes them durable). A failed write fails
    /// its partition alone.
    private func writeSegments(_ group: inout Group) {
        for w in group.segmentWrites {
            let p = group.touched[w.slot].partition
            do {
                try withBytes(buffer.bytes) { (raw) throws(FileIOError) in
                    try p.writeFrames(UnsafeRawBufferPointer(rebasing: raw[w.frames]), layout: w.layout,
                                      segmentBytesMax: core.config.segmentBytesMax, indexIntervalBytes: core.config.indexIntervalBytes)
                }
            } catch {
                group.failedNow.insert(w.slot)
                p.discardProgress(reason: "segment write failed: \(error)")
                core.metrics.failures.increment()
                core.logger.critical("partition failed: segment write failed; appends to it are refused until the store is reopened (the journal keeps its data)",
                                     metadata: ["partition": "\(p.name)", "error": "\(error)"])
            }
        }
    }

    /// Durability: the second target (when configured) gets the group's events first, so that
    /// its round trip overlaps the local fdatasync; then the journal's fdatasync; then the
    /// writer waits for the target. False when either failed (the store then failed).
    private func makeDurable(_ group: Group, events: CommittedGroup?) -> Bool {
        let waiter = core.config.durabilityTarget.map { target -> TargetWaiter in
            let waiter = TargetWaiter()
            target.persist(events ?? committedGroup(group)) { result in waiter.finish(result) }
            return waiter
        }
        if group.entryBytes > 0 {
            let t0 = Clock.monotonicNanoseconds()
            do {
                try core.io.sync(journal.fd)
            } catch {
                _ = waiter?.wait()
                failStore("journal fdatasync failed: \(error)", touched: group.touched.map(\.partition), ops: group.ops)
                return false
            }
            core.metrics.journalFsync.recordNanoseconds(Int64(Clock.monotonicNanoseconds() - t0))
        }
        if let waiter, case .failure(let error) = waiter.wait() {
            failStore("durability target failed: \(error)", touched: group.touched.map(\.partition), ops: group.ops)
            return false
        }
        return true
    }

    /// The group as events in commit order (what a second durability target and observers get):
    /// per partition, its appended records, then its acknowledgements, leases and releases.
    /// Skipped partitions (failed earlier) and those whose segment write failed are left out.
    private func committedGroup(_ group: Group) -> CommittedGroup {
        var events: [StoreEvent] = []
        for (i, t) in group.touched.enumerated() where group.ok(i) {
            let name = t.partition.name
            var records: [Record] = []
            for case .append(let a) in t.ops {
                for (k, r) in a.records.enumerated() {
                    records.append(Record(offset: a.firstOffset + UInt64(k), timestampMs: r.timestampMs, id: r.id,
                                          key: r.key, payload: r.payload))
                }
            }
            if !records.isEmpty { events.append(.appended(partition: name, records: records)) }
            var acked: [UInt64] = []
            for case .ack(_, let offsets, _) in t.ops { acked += offsets }
            if !acked.isEmpty { events.append(.acknowledged(partition: name, offsets: acked)) }
            for op in t.ops {
                switch op {
                case .lease(_, let lease): events.append(.leased(partition: name, lease))
                case .release(_, let stream): events.append(.released(partition: name, stream: stream))
                case .append, .ack: break
                }
            }
        }
        return CommittedGroup(events: events)
    }

    /// Publish: readers see the records, keys move from pending to the index, consumer state
    /// applies, observers get the group's events (in commit order, on this thread).
    private func publish(_ group: Group, events: CommittedGroup?) {
        let config = core.config
        for (i, t) in group.touched.enumerated() where group.ok(i) {
            t.partition.publish()
            if config.tailCacheBytesMax > 0, t.partition.key != nil {
                var durable: [Record] = []
                for case .append(let a) in t.ops {
                    for (k, r) in a.records.enumerated() {
                        durable.append(Record(offset: a.firstOffset + UInt64(k), timestampMs: r.timestampMs, id: r.id,
                                              key: r.key, payload: r.payload))
                    }
                }
                if !durable.isEmpty {
                    let bytesMax = config.tailCacheBytesMax
                    t.partition.tail.withLock { $0.add(durable, bytesMax: bytesMax) }
                }
            }
        }

        let nowMs = config.nowMs()
        var evicted = 0
        let keyEntries: Int = core.submission.withLock { s in
            for (i, t) in group.touched.enumerated() {
                let good = group.ok(i)
                for case .append(let a) in t.ops {
                    for (k, hash) in a.hashes.enumerated() {
                        let offset = a.firstOffset + UInt64(k)
                        if let pending = s.pending[hash], pending.partition === t.partition, pending.offset == offset {
                            s.pending[hash] = nil
                        }
                        guard good else { continue }
                        let ts = a.records[k].timestampMs
                        evicted += s.keys.insert(hash, .init(partition: t.partition.number, offset: offset, timestampMs: ts))
                        keyLog.append(KeyFile.Entry(hash: hash, partition: t.partition.name, offset: offset, timestampMs: ts))
                    }
                }
            }
            s.keys.expire(before: nowMs - config.dedupWindowMs)
            return s.keys.count
        }
        if evicted > 0 {
            core.metrics.idempotencyEvictedEarly.increment(by: evicted)
            core.logger.warning("idempotency index full: oldest keys forgotten before the dedup window ended",
                                metadata: ["evicted": "\(evicted)", "entriesMax": "\(config.idempotencyEntriesMax)"])
        }
        core.metrics.idempotencyEntries.record(keyEntries)

        core.consumers.withLock { c in
            for (i, t) in group.touched.enumerated() where group.ok(i) {
                for op in t.ops {
                    switch op {
                    case .ack(_, let offsets, _): c[t.partition.name, default: AckTracker()].acknowledge(offsets)
                    case .lease(_, let lease): c[t.partition.name, default: AckTracker()].recordLease(lease)
                    case .release(_, let stream): c[t.partition.name, default: AckTracker()].releaseLease(stream: stream)
                    case .append: break
                    }
                }
            }
        }
        if let observer = config.eventObserver, let events, !events.events.isEmpty {
            observer(events)
        }
    }

    /// Completions: each op's answer (a failed partition's ops and appends reported as
    /// duplicates of a record in a failed partition fail); metrics first, so that whoever sees
    /// a completion also sees it counted.
    private func complete(_ group: Group) {
        var completions: [@Sendable () -> Void] = []
        completions.reserveCapacity(group.ops.count)
        var appendedRecords = 0
        var appendedBytes = 0
        var ackCount = 0
        for (i, t) in group.touched.enumerated() {
            let good = group.ok(i)
            let error = LogStoreError.partitionFailed(partition: t.partition.name, reason: t.partition.failure ?? "failed")
            for op in t.ops {
                switch op {
                case .append(let a):
                    if good {
                        appendedRecords += a.records.count
                        appendedBytes += a.records.reduce(0) { $0 + $1.payload.count }
                    }
                    if good, let broken = a.dependsOn.first(where: { $0.failure != nil }) {
                        let e = LogStoreError.partitionFailed(partition: broken.name, reason: broken.failure ?? "failed")
                        completions.append { a.completion(.failure(e)) }
                    } else if good {
                        completions.append { a.completion(.success(a.outcomes)) }
                    } else {
                        completions.append { a.completion(.failure(error)) }
                    }
                case .ack(_, let offsets, let done):
                    if good {
                        ackCount += offsets.count
                        completions.append { done(.success(())) }
                    } else {
                        completions.append { done(.failure(error)) }
                    }
                case .lease, .release:
                    break
                }
            }
        }
        core.metrics.appendedRecords.increment(by: appendedRecords)
        core.metrics.appendedBytes.increment(by: appendedBytes)
        core.metrics.acknowledgedOffsets.increment(by: ackCount)
        core.metrics.groupRecords.record(group.recordCount)
        core.metrics.groupBytes.record(group.entryBytes)
        deliver(completions)
    }

    private func deliver(_ completions: [@Sendable () -> Void]) {
        guard !completions.isEmpty else { return }
        core.sink.submit { for c in completions { c() } }
    }

    /// A journal failure: the on-disk state of the last group is unknown. Fail everything in
    /// flight and refuse further writes until the store is reopened (recovery decides).
    private func failStore(_ reason: String, touched: [Partition], ops: [WriteOp]) {
        failed = true
        let error = LogStoreError.storeFailed(reason)
        core.metrics.failures.increment()
        core.logger.critical("log store failed: writes are refused until it is reopened; outcome of in-flight appends unknown",
                             metadata: ["reason": "\(reason)"])
        for p in touched { p.writer.value.progress.removeAll() }
        let drained: [WriteOp] = core.submission.withLock { s in
            s.failure = error
            var all: [WriteOp] = []
            while !s.queue.isEmpty { all.append(s.queue.removeFirst()) }
            s.queuedBytes = 0
            s.queuedRecords = 0
            s.pending.removeAll()
            return all
        }
        core.checkpoints.withLock { $0.suspended = $0.suspended ?? reason }
        deliver((ops + drained).compactMap { $0.failureCompletion(error) })
    }

    // MARK: Checkpoints

    /// Starts a checkpoint when the journal is full (and none is running).
    func maybeCheckpoint() {
        guard !failed, journal.position >= Int64(core.config.journalBytesMax) else { return }
        let free = core.checkpoints.withLock { !$0.inFlight && $0.suspended == nil }
        guard free, let job = capture() else { return }
        core.checkpoints.withLock {
            $0.job = job
            $0.inFlight = true
        }
        core.checkpoints.broadcast()
    }

    /// Rolls the journal to a new file and snapshots what the checkpoint must make durable.
    /// Runs at a group boundary, so the snapshot is consistent: everything in the retired
    /// journals is either in the snapshot's segments, consumer states and keys.
    func capture() -> CheckpointJob? {
        // After a failed checkpoint its snapshot (dirty segments, keys) is gone from the writer's
        // state: only a reopen (replaying every journal kept since the last good checkpoint)
        // may move the replay point again.
        if core.checkpoints.withLock({ $0.suspended != nil }) { return nil }
        if let broken = core.allPartitions.first(where: { $0.failure != nil }) {
            let reason = "partition \(broken.name) failed: \(broken.failure ?? "")"
            core.checkpoints.withLock { $0.suspended = $0.suspended ?? reason }
            core.logger.critical("checkpoints suspended: journals are kept until the store is reopened", metadata: ["reason": "\(reason)"])
            return nil
        }
        let newSeq = journal.seq + 1
        let next: JournalHandle
        do {
            next = try Writer.openJournal(core: core, seq: newSeq)
        } catch {
            failStore("journal roll failed: \(error)", touched: [], ops: [])
            return nil
        }
        core.io.close(journal.fd)
        journal = next
        let retire = journalSeqs.filter { $0 < newSeq }
        journalSeqs = [newSeq]

        var snapshots: [CheckpointJob.PartitionSnapshot] = []
        for p in core.allPartitions {
            var w = p.writer.value
            guard let active = w.active else { continue }
            snapshots.append(.init(partition: p, endOffset: w.nextOffset, segmentBase: active.base,
                                   position: w.activeBytes, dirty: w.dirtySegments, directoryDirty: w.directoryDirty,
                                   active: active))
            w.dirtySegments.removeAll()
            w.directoryDirty = false
            p.writer.value = w
        }
        let consumers = core.consumers.withLock { $0.mapValues(\.state) }
        let keys = keyLog
        keyLog.removeAll(keepingCapacity: true)
        let now = core.config.nowMs()
        return CheckpointJob(journalSeq: newSeq, timeMs: now, partitions: snapshots, consumers: consumers,
                             keys: keys, retireJournals: retire, recovery: false)
    }

    /// Opens journal `seq` for writing: reuses journal/spare.wal (preallocated, so fdatasync does
    /// not have to commit a size change) when there is one, else creates the file; then fsyncs
    /// the journal directory so the file survives a crash.
    static func openJournal(core: StoreCore, seq: UInt64) throws(FileIOError) -> JournalHandle {
        let path = core.paths.journal(seq)
        let reused = try core.spareJournal.withLock { (spare) throws(FileIOError) -> Bool in
            guard spare else { return false }
            try core.io.rename(core.paths.spareJournal, to: path)
            spare = false
            return true
        }
        let fd = try core.io.open(path, create: true)
        do {
            if !reused { try core.io.truncate(fd, to: 0) }
            try core.io.syncDirectory(core.paths.journalDirectory)
        } catch {
            core.io.close(fd)
            throw error
        }
        return JournalHandle(seq: seq, fd: fd, position: 0)
    }
}
