import Logging
import Synchronization

/// An append waiting in the commit queue (immutable once queued).
final class AppendOp: Sendable {
    let partition: Partition
    /// New records only, stored at `firstOffset`, `firstOffset + 1`, ...
    let records: [AppendRecord]
    let firstOffset: UInt64
    /// Fingerprints of `records`' keys (empty for the quarantine log, which is not deduplicated).
    let hashes: [KeyHash]
    /// The answer once the group is durable.
    let outcomes: [AppendOutcome]
    let encodedBytes: Int
    /// Partitions holding pending originals this op reports as duplicates: if one of them has
    /// failed by completion time, the duplicate answer cannot be trusted and the op fails.
    let dependsOn: [Partition]
    let completion: @Sendable (Result<[AppendOutcome], LogStoreError>) -> Void

    init(partition: Partition, records: [AppendRecord], firstOffset: UInt64, hashes: [KeyHash],
         outcomes: [AppendOutcome], dependsOn: [Partition],
         completion: @escaping @Sendable (Result<[AppendOutcome], LogStoreError>) -> Void) {
        precondition(hashes.isEmpty || hashes.count == records.count)
        self.partition = partition
        self.records = records
        self.firstOffset = firstOffset
        self.hashes = hashes
        self.outcomes = outcomes
        self.dependsOn = dependsOn
        self.encodedBytes = records.reduce(64) { $0 + RecordFrame.encodedBytes(keyCount: $1.key.count, payloadCount: $1.payload.count) }
        self.completion = completion
    }
}

/// Work for the writer thread.
enum WriteOp: Sendable {
    case append(AppendOp)
    case ack(Partition, [UInt64], @Sendable (Result<Void, LogStoreError>) -> Void)
    case lease(Partition, Lease)
    case release(Partition, stream: UInt64)

    var partition: Partition {
        switch self {
        case .append(let op): op.partition
        case .ack(let p, _, _), .lease(let p, _), .release(let p, _): p
        }
    }

    var bytes: Int {
        switch self {
        case .append(let op): op.encodedBytes
        case .ack(_, let offsets, _): 64 + 8 * offsets.count
        case .lease(_, let lease): 64 + 8 * lease.offsets.count
        case .release: 64
        }
    }

    var records: Int {
        if case .append(let op) = self { return op.records.count }
        return 0
    }

    /// Appends and acknowledgements have a completion; leases and releases ride along.
    var hasCompletion: Bool {
        switch self {
        case .append, .ack: true
        case .lease, .release: false
        }
    }

    /// Completes the operation with `error` (leases and releases have no completion).
    func failureCompletion(_ error: LogStoreError) -> (@Sendable () -> Void)? {
        switch self {
        case .append(let op): { op.completion(.failure(error)) }
        case .ack(_, _, let completion): { completion(.failure(error)) }
        case .lease, .release: nil
        }
    }
}

/// A key submitted in a group that is not durable yet.
struct PendingKey {
    let partition: Partition
    let offset: UInt64
    let id: ResourceID
    let key: [UInt8]
}

/// Everything the loop thread and the writer share about submissions (one lock).
struct SubmissionState {
    var queue = FIFOQueue<WriteOp>()
    var queuedBytes = 0
    var queuedRecords = 0
    /// Next offset to assign, by partition number.
    var nextOffsets: [UInt32: UInt64] = [:]
    var pending: [KeyHash: PendingKey] = [:]
    var keys: IdempotencyIndex
    var failure: LogStoreError?
    var closing = false
    /// False while the idempotency index loads in the background after open: appends are held
    /// (in order, bounded by `queueOpsMax`) and submitted once it is installed.
    var keysReady = true
    var held: [@Sendable () -> Void] = []
}

/// Partitions by name and by in-process number.
struct Registry {
    var byName: [String: Partition] = [:]
    var byNumber: [Partition] = []
}

/// Checkpoint hand-off between the writer and the checkpointer thread.
struct CheckpointQueueState {
    var job: CheckpointJob?
    var inFlight = false
    var completed = 0
    var stop = false
    /// Set after a failed checkpoint (or an unrecoverable partition at open): journals are kept
    /// until the store is reopened.
    var suspended: String?
}

/// State shared by the facade, the writer, the checkpointer and recovery.
final class StoreCore: Sendable {
    let paths: StorePaths
    let io: any FileIO
    let config: LogStoreConfig
    let logger: Logger
    let metrics: StoreMetrics
    let sink: any CompletionSink
    let hasher: SipHash128
    let registry = Mutex(Registry())
    /// Bounds the open segment files of every partition (`LogStoreConfig.openSegmentsMax`).
    let descriptors: DescriptorCache
    let submission: ConditionLock<SubmissionState>
    let consumers = Mutex<[String: AckTracker]>([:])
    let checkpoints = ConditionLock(CheckpointQueueState())
    /// True when journal/spare.wal exists (a preallocated file to reuse at the next roll).
    let spareJournal = Mutex(false)
    /// What open found and did (the key-loading figures arrive when the index is installed).
    let recoveryReport = Mutex(RecoveryReport())

    init(paths: StorePaths, io: any FileIO, config: LogStoreConfig, logger: Logger, metrics: StoreMetrics,
         sink: any CompletionSink, hasher: SipHash128) {
        self.paths = paths
        self.io = io
        self.config = config
        self.logger = logger
        self.metrics = metrics
        self.sink = sink
        self.hasher = hasher
        descriptors = DescriptorCache(capacity: config.openSegmentsMax, evictions: metrics.segmentFilesEvicted)
        var keys = IdempotencyIndex(entriesMax: config.idempotencyEntriesMax)
        keys.reserveCapacity(1 << 16)
        self.submission = ConditionLock(SubmissionState(keys: keys))
    }

    /// The partition called `name`, registered on first use (files are created by the writer).
    func partition(named name: String, create: Bool) -> Partition? {
        registry.withLock { r in
            if let p = r.byName[name] { return p }
            guard create else { return nil }
            let p = Partition(name: name, key: name == StorePaths.quarantineName ? nil : PartitionKey(name),
                              number: UInt32(r.byNumber.count), directory: paths.partitionDirectory(name), io: io,
                              descriptors: descriptors)
            r.byName[name] = p
            r.byNumber.append(p)
            return p
        }
    }

    func partition(number: UInt32) -> Partition? {
        registry.withLock { r in Int(number) < r.byNumber.count ? r.byNumber[Int(number)] : nil }
    }

    var allPartitions: [Partition] { registry.withLock { $0.byNumber } }

    func updateGauges(journalBytes: Int64 = 0) {
        let all = allPartitions
        metrics.partitions.record(all.filter { $0.key != nil }.count)
        metrics.openSegmentFiles.record(descriptors.openCount)
        metrics.diskBytes.record(all.reduce(journalBytes) { $0 + $1.state.withLock { $0.bytes } })
    }
}
