import CoreMetrics
import Logging
import Synchronization

/// The append-only partitioned log of the hub (docs/storage.md).
///
/// Thread safety: every method may be called from any thread; the intended use is one caller
/// thread (the event loop) plus the store's own writer and checkpointer threads. Completions
/// run only through the `CompletionSink`, and only after the fdatasync that makes what they
/// report durable.
public final class LogStore: Sendable {
    let core: StoreCore
    let writer: Writer
    let checkpointer: Checkpointer
    private let threads = Mutex<[OSThread]>([])
    private let closed = Mutex(false)
    private let lockFile = Mutex<FileDescriptor?>(nil)

    /// What recovery found and did at open (the key-loading figures are filled in once the
    /// idempotency index is ready).
    public var recoveryReport: RecoveryReport { core.recoveryReport.withLock { $0 } }

    /// False while the idempotency index is still loading after open: reads, acknowledgements
    /// and leases are served; appends are held and submitted once it is ready.
    public var idempotencyIndexReady: Bool { core.submission.withLock { $0.keysReady } }

    /// Why the store cannot take every write now, or nil when it can: the whole store failed
    /// (a journal write or fdatasync), or some partitions refuse appends until reopened. For
    /// readiness probes; cheap (one lock per partition).
    public var failure: String? {
        if let f = core.submission.withLock({ $0.failure }) { return "\(f)" }
        let failed = core.allPartitions.compactMap { p in p.failure.map { (p.name, $0) } }
        guard let first = failed.first else { return nil }
        return failed.count == 1 ? "partition \(first.0) failed: \(first.1)"
                                 : "\(failed.count) partitions failed, first \(first.0): \(first.1)"
    }

    private init(core: StoreCore, writer: Writer, checkpointer: Checkpointer) {
        self.core = core
        self.writer = writer
        self.checkpointer = checkpointer
    }

    deinit { close() }

    /// Opens (creating if needed) the store in `directory` and recovers it: verifies every
    /// partition's tail, cuts and reports torn or corrupt data, replays the journal and
    /// checkpoints. Starts the writer and checkpointer threads.
    public static func open(directory: String, config: LogStoreConfig = LogStoreConfig(), io: any FileIO = PosixFileIO(),
                            completions: any CompletionSink, logger: Logger) throws(LogStoreError) -> LogStore {
        try config.validate()
        let t0 = Clock.monotonicNanoseconds()
        let paths = StorePaths(root: directory)
        let checkpoint: CheckpointFile?
        var lock: FileDescriptor?
        do {
            // New directories are durable only once their parent is fsynced.
            if !io.exists(directory) {
                try io.makeDirectory(directory)
                try io.syncDirectory(StorePaths.parent(of: directory))
            }
            var created = false
            for d in [paths.journalDirectory, paths.keysDirectory, paths.partitionsDirectory] where !io.exists(d) {
                try io.makeDirectory(d)
                created = true
            }
            if created { try io.syncDirectory(directory) }
            do { lock = try io.lockExclusive(paths.lock) } catch {
                throw LogStoreError.io("\(directory) is in use by another process (\(paths.lock) is locked): \(error)")
            }
            if io.exists(paths.checkpoint + ".tmp") { try io.remove(paths.checkpoint + ".tmp") }
            if io.exists(paths.checkpoint) {
                do {
                    checkpoint = try CheckpointFile.decode(io.readWholeFile(paths.checkpoint))
                } catch let error as DecodeError {
                    throw LogStoreError.corruptCheckpoint("\(paths.checkpoint): \(error)")
                }
            } else {
                checkpoint = nil
                let existing = try io.list(paths.partitionsDirectory).count + io.list(paths.journalDirectory).count
                if existing > 0 {
                    logger.critical("CHECKPOINT is missing but data exists: rebuilding from segments and journals; consumer state older than the journals is lost",
                                    metadata: ["directory": "\(directory)"])
                }
            }
        } catch let error as LogStoreError {
            throw error
        } catch {
            throw LogStoreError.io("open \(directory): \(error)")
        }

        let seed = checkpoint?.hashSeed ?? (UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))
        let metrics = StoreMetrics(factory: config.metricsFactory ?? MetricsSystem.factory)
        let core = StoreCore(paths: paths, io: io, config: config, logger: logger, metrics: metrics, sink: completions,
                             hasher: SipHash128(k0: seed.0, k1: seed.1))
        var recovery = Recovery(core: core, checkpoint: checkpoint)
        let (outcome, checkpointer) = try recovery.run { Checkpointer(core: core, hashSeed: seed) }
        core.submission.withLock { s in
            for p in core.allPartitions { s.nextOffsets[p.number] = p.writer.value.nextOffset }
        }
        let writer = Writer(core: core, checkpointer: checkpointer, journal: outcome.journal, journalSeqs: outcome.journalSeqs,
                            keyLog: outcome.keyLog)
        var report = recovery.report
        report.durationMs = Double(Clock.monotonicNanoseconds() - t0) / 1e6
        core.recoveryReport.withLock { $0 = report }
        let store = LogStore(core: core, writer: writer, checkpointer: checkpointer)
        store.lockFile.withLock { $0 = lock }
        let keys = outcome.keys
        if config.manualPumping {
            core.installKeys(keys, checkpointer: checkpointer)
        } else {
            core.submission.withLock { $0.keysReady = false }
            store.threads.withLock {
                $0 = [OSThread(name: "logstore-writer") { writer.run() },
                      OSThread(name: "logstore-ckpt") { checkpointer.runLoop() },
                      OSThread(name: "logstore-keys") { core.installKeys(keys, checkpointer: checkpointer) }]
            }
        }
        core.updateGauges()
        logger.info("log store open", metadata: [
            "directory": "\(directory)", "partitions": "\(core.allPartitions.count)",
            "recoveryMs": "\(Int(report.durationMs))", "cuts": "\(report.cuts.count)",
            "journalEntriesReplayed": "\(report.journalEntriesReplayed)", "keys": "\(core.submission.withLock { $0.keys.count })",
            "crc32cHardware": "\(CRC32C.isHardwareAccelerated)",
        ])
        return store
    }

    // MARK: Append

    /// Appends records to one partition. Records whose `key` is already known — durable or
    /// still pending in a commit group — are not stored again: they get `.duplicate` with the
    /// original partition, offset and id. The completion runs via the sink only after the
    /// fdatasync of everything it reports.
    public func append(_ p: PartitionKey, _ records: [AppendRecord],
                       completion: @escaping @Sendable (Result<[AppendOutcome], LogStoreError>) -> Void) {
        let config = core.config
        guard p.isValid else { return core.reject(.invalidPartitionKey(p.description), completion) }
        if records.count > config.batchRecordsMax {
            return core.reject(.invalidRecord("\(records.count) records in one append (max \(config.batchRecordsMax))"), completion)
        }
        var bytes = 0
        for r in records {
            if r.key.isEmpty || r.key.count > config.keyBytesMax {
                return core.reject(.invalidRecord("key of \(r.key.count) bytes (1...\(config.keyBytesMax))"), completion)
            }
            if r.payload.count > config.payloadBytesMax {
                return core.reject(.invalidRecord("payload of \(r.payload.count) bytes (max \(config.payloadBytesMax))"), completion)
            }
            bytes += RecordFrame.encodedBytes(keyCount: r.key.count, payloadCount: r.payload.count)
        }
        if bytes > config.groupBytesMax {
            return core.reject(.invalidRecord("append of \(bytes) bytes exceeds groupBytesMax \(config.groupBytesMax)"), completion)
        }
        if records.isEmpty {
            core.sink.submit { completion(.success([])) }
            return
        }
        let partition = core.partition(named: p.description, create: true)!
        let hashes = records.map { core.hasher.hash($0.key) }
        core.submit(partition, records, hashes: hashes, verified: [:], completion: completion)
    }

    // MARK: Read

    /// Durable records of `p` from `offset` (clamped up to `startOffset`): at least one when
    /// any is available, then up to `maxRecords` and `maxBytes` of keys plus payloads. Never
    /// blocks the writer. A record that fails its checksum is reported (`.corruption`), never
    /// returned.
    public func read(_ p: PartitionKey, from offset: UInt64, maxRecords: Int, maxBytes: Int) throws(LogStoreError) -> [Record] {
        guard maxRecords >= 1, maxBytes >= 0 else { throw LogStoreError.invalidRecord("maxRecords >= 1 and maxBytes >= 0") }
        guard let partition = core.partition(named: p.description, create: false), partition.key != nil else { return [] }
        do {
            return try partition.read(from: offset, maxRecords: maxRecords, maxBytes: maxBytes,
                                      indexIntervalBytes: core.config.indexIntervalBytes)
        } catch {
            core.noteReadFailure(error, partition: partition.name)
            throw error
        }
    }

    /// Next offset of `p`; every record below it is durable.
    public func durableEndOffset(_ p: PartitionKey) -> UInt64 {
        core.partition(named: p.description, create: false)?.durableEnd ?? 0
    }

    /// First offset still stored in `p` (retention moves it forward).
    public func startOffset(_ p: PartitionKey) -> UInt64 {
        core.partition(named: p.description, create: false)?.state.withLock { $0.startOffset } ?? 0
    }

    /// Partitions holding durable records.
    public func partitions() -> [PartitionKey] {
        core.allPartitions.compactMap { p in
            guard let key = p.key, p.state.withLock({ $0.durableEnd > 0 || $0.failure != nil }) else { return nil }
            return key
        }.sorted { $0.description < $1.description }
    }

    /// Where a durable idempotency key was stored, if it is inside the dedup window (nil while
    /// the index is still loading after open; see `idempotencyIndexReady`).
    public func lookup(key: [UInt8]) -> IdempotencyEntry? {
        let hash = core.hasher.hash(key)
        guard let location = core.submission.withLock({ $0.keys.lookup(hash) }) else { return nil }
        return (try? core.confirm(location, key: key).get()) ?? nil
    }

    // MARK: Consumer state

    /// Records `offsets` of `p` as acknowledged; the completion runs once that is durable.
    /// Offsets must be below `durableEndOffset(p)`.
    public func acknowledge(_ p: PartitionKey, offsets: [UInt64],
                            completion: @escaping @Sendable (Result<Void, LogStoreError>) -> Void) {
        guard let partition = core.partition(named: p.description, create: false), partition.key != nil else {
            return core.reject(.invalidOffset(partition: p.description, offset: offsets.first ?? 0), completion)
        }
        let end = partition.durableEnd
        if let bad = offsets.first(where: { $0 >= end }) {
            return core.reject(.invalidOffset(partition: p.description, offset: bad), completion)
        }
        if offsets.isEmpty {
            core.sink.submit { completion(.success(())) }
            return
        }
        if let error = enqueue(.ack(partition, offsets, completion)) { core.reject(error, completion) }
    }

    /// Journals the batch leased to `stream` (replacing its previous lease). Rides the next
    /// commit group; nobody waits for it.
    public func recordLease(_ p: PartitionKey, stream: UInt64, sequence: UInt64, offsets: [UInt64]) {
        guard let partition = core.partition(named: p.description, create: false), partition.key != nil else { return }
        _ = enqueue(.lease(partition, Lease(stream: stream, sequence: sequence, offsets: offsets)))
    }

    /// Journals that `stream` holds no lease any more.
    public func releaseLease(_ p: PartitionKey, stream: UInt64) {
        guard let partition = core.partition(named: p.description, create: false), partition.key != nil else { return }
        _ = enqueue(.release(partition, stream: stream))
    }

    /// Durable consumer state of `p`: ack floor, acknowledged offsets above it, leases.
    public func consumerState(_ p: PartitionKey) -> ConsumerState {
        core.consumers.withLock { $0[p.description]?.state } ?? ConsumerState()
    }

    private func enqueue(_ op: WriteOp) -> LogStoreError? {
        let config = core.config
        let error: LogStoreError? = core.submission.withLock { s in
            if s.closing { return .closed }
            if let failure = s.failure { return failure }
            if let failure = op.partition.failure { return .partitionFailed(partition: op.partition.name, reason: failure) }
            if s.queuedBytes + op.bytes > config.queueBytesMax || s.queue.count >= config.queueOpsMax { return .overloaded }
            s.queue.append(op)
            s.queuedBytes += op.bytes
            return nil
        }
        if error == nil { core.submission.broadcast() }
        return error
    }

    // MARK: Quarantine

    /// Appends a rejected message to the quarantine log (payload capped at
    /// `quarantinePayloadBytesMax`); the completion gets its quarantine offset once durable.
    public func quarantine(_ entry: QuarantineEntry, completion: @escaping @Sendable (Result<UInt64, LogStoreError>) -> Void) {
        let (key, payload) = QuarantineCoding.encode(entry, payloadBytesMax: core.config.quarantinePayloadBytesMax)
        let record = AppendRecord(key: key, id: ResourceID(high: 0, low: 0), payload: payload, timestampMs: entry.timeMs)
        let partition = core.partition(named: StorePaths.quarantineName, create: true)!
        let metrics = core.metrics
        core.submit(partition, [record], hashes: [], verified: [:]) { result in
            switch result {
            case .success(let outcomes):
                guard case .appended(let offset) = outcomes.first else { return completion(.failure(.invalidRecord("quarantine"))) }
                metrics.quarantined.increment()
                completion(.success(offset))
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }

    /// Quarantine entries from `offset` (for `rtpstream inspect` and tests).
    public func quarantineEntries(from offset: UInt64, maxCount: Int) throws(LogStoreError) -> [QuarantineRecord] {
        guard maxCount >= 1, let p = core.partition(named: StorePaths.quarantineName, create: false) else { return [] }
        let records: [Record]
        do {
            records = try p.read(from: offset, maxRecords: maxCount, maxBytes: Int.max, indexIntervalBytes: core.config.indexIntervalBytes)
        } catch {
            core.noteReadFailure(error, partition: p.name)
            throw error
        }
        return try records.map { (r) throws(LogStoreError) -> QuarantineRecord in
            do { return try QuarantineCoding.decode(r) } catch {
                throw LogStoreError.corruption(partition: p.name, offset: r.offset, detail: "\(error)")
            }
        }
    }

    /// Offsets of the quarantine log: first retained and next.
    public func quarantineOffsets() -> (start: UInt64, end: UInt64) {
        guard let p = core.partition(named: StorePaths.quarantineName, create: false) else { return (0, 0) }
        return p.state.withLock { ($0.startOffset, $0.durableEnd) }
    }

    // MARK: Retention and lifecycle

    /// Deletes expired segments and enforces the size caps (see `LogStoreConfig`). The server
    /// calls it on a timer; it deletes files on the calling thread.
    public func applyRetention(nowMs: Int64) -> RetentionReport {
        Retention(core: core, nowMs: nowMs).apply()
    }

    /// Drains queued work, checkpoints (so the next open replays nothing), and stops the
    /// threads. Further calls fail with `.closed`. Idempotent.
    public func close() {
        let first = closed.withLock { c in
            defer { c = true }
            return !c
        }
        guard first else { return }
        core.submission.withLock { $0.closing = true }
        core.submission.broadcast()
        let running = threads.withLock { t in
            defer { t = [] }
            return t
        }
        if running.isEmpty {
            precondition(core.config.manualPumping, "a threaded store has threads until closed")
            pump()
            pumpCheckpoint()
            writer.finish()
        } else {
            // Called from a completion on one of the store's threads (an inline sink): that
            // thread finishes by itself once the completion returns.
            for t in running where !t.isCurrent { t.join() }
        }
        if let lock = lockFile.withLock({ $0 }) { core.io.unlock(lock) }
    }

    // MARK: Deterministic stepping (manual mode, for the simulation tests)

    /// Commits every queued operation, in groups, and starts checkpoints as the writer would.
    func pump() {
        while case .ops(let ops) = writer.takeGroup(blocking: false) {
            writer.commit(ops)
            writer.maybeCheckpoint()
        }
    }

    /// Runs the pending checkpoint, if any.
    func pumpCheckpoint() {
        let job: CheckpointJob? = core.checkpoints.withLock { s in
            defer { s.job = nil }
            return s.job
        }
        guard let job else { return }
        checkpointer.run(job)
        core.checkpoints.withLock { $0.inFlight = false }
    }
}
