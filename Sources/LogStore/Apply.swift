import Synchronization

extension LogStore {
    /// Applies a group another store committed (its `CommittedGroup`, from a `DurabilityTarget`
    /// or an event observer) so that this store comes out identical: the same records at the
    /// same offsets with the same resource ids and keys, the same acknowledgements and leases.
    /// A replica's only write path.
    ///
    /// - Appends must continue each partition exactly: records below the partition's next
    ///   offset were applied before (a replica restarted mid-stream) and are skipped; a gap is
    ///   `.invalidOffset`. Keys are not deduplicated (the producing store did that) but enter
    ///   the idempotency index, so the replica answers resends exactly as its source would.
    /// - Acknowledgements may name offsets appended earlier in the same group.
    /// - The group is enqueued as one unit, in event order; `completion` runs once all of it is
    ///   durable here (or with the first error). While the idempotency index is still loading
    ///   after open the group is refused with `.overloaded` (retry).
    public func apply(_ group: CommittedGroup, completion: @escaping @Sendable (Result<Void, LogStoreError>) -> Void) {
        let config = core.config
        let outstanding = Mutex<(count: Int, failed: Bool)>((0, false))
        let finishOne: @Sendable (Result<Void, LogStoreError>) -> Void = { result in
            let done: Result<Void, LogStoreError>? = outstanding.withLock { o in
                guard !o.failed else { return nil }
                if case .failure = result {
                    o.failed = true
                    return result
                }
                o.count -= 1
                return o.count == 0 ? .success(()) : nil
            }
            if let done { completion(done) }
        }
        let error: LogStoreError? = core.submission.withLock { s in
            if s.closing { return .closed }
            if let failure = s.failure { return failure }
            if !s.keysReady { return .overloaded }
            // Validate and plan the whole group before touching shared state: a refused group
            // leaves nothing behind.
            var ops: [WriteOp] = []
            var nextOffsets = s.nextOffsets
            var pending: [(KeyHash, PendingKey)] = []
            var lastPartition: Partition?
            for event in group.events {
                guard let partition = core.partition(named: event.partition, create: true) else {
                    return .invalidPartitionKey(event.partition)
                }
                if let failure = partition.failure { return .partitionFailed(partition: partition.name, reason: failure) }
                lastPartition = partition
                switch event {
                case .appended(_, let records):
                    let next = nextOffsets[partition.number] ?? 0
                    let fresh = records.filter { $0.offset >= next }
                    guard let first = fresh.first else { continue }
                    for (k, r) in fresh.enumerated() where r.offset != next + UInt64(k) {
                        return .invalidOffset(partition: partition.name, offset: r.offset)
                    }
                    assert(first.offset == next)
                    for r in fresh where r.key.isEmpty || r.key.count > config.keyBytesMax || r.payload.count > config.payloadBytesMax {
                        return .invalidRecord("applied record at \(partition.name) offset \(r.offset) exceeds this store's limits")
                    }
                    let appendRecords = fresh.map { AppendRecord(key: $0.key, id: $0.id, payload: $0.payload, timestampMs: $0.timestampMs) }
                    let hashes = partition.key == nil ? [] : fresh.map { core.hasher.hash($0.key) }
                    for (k, h) in hashes.enumerated() {
                        pending.append((h, PendingKey(partition: partition, offset: next + UInt64(k), id: fresh[k].id, key: fresh[k].key)))
                    }
                    let outcomes = fresh.map { AppendOutcome.appended(offset: $0.offset) }
                    ops.append(.append(AppendOp(partition: partition, records: appendRecords, firstOffset: next, hashes: hashes,
                                                outcomes: outcomes, dependsOn: []) { finishOne($0.map { _ in () }) }))
                    nextOffsets[partition.number] = next + UInt64(fresh.count)
                case .acknowledged(_, let offsets):
                    let next = nextOffsets[partition.number] ?? 0
                    if let bad = offsets.first(where: { $0 >= next }) {
                        return .invalidOffset(partition: partition.name, offset: bad)
                    }
                    ops.append(.ack(partition, offsets, finishOne))
                case .leased(_, let lease):
                    ops.append(.lease(partition, lease))
                case .released(_, let stream):
                    ops.append(.release(partition, stream: stream))
                }
            }
            // Leases and releases have no completion: an empty acknowledgement after them
            // completes when their group is durable.
            if let lastPartition, !ops.contains(where: { if case .lease = $0 { false } else if case .release = $0 { false } else { true } }) {
                ops.append(.ack(lastPartition, [], finishOne))
            }
            let completions = ops.filter { if case .lease = $0 { false } else if case .release = $0 { false } else { true } }.count
            outstanding.withLock { $0.count = completions }
            guard completions > 0 else { return nil }
            if !ops.isEmpty && (s.queuedBytes + ops.reduce(0) { $0 + $1.bytes } > config.queueBytesMax
                                || s.queue.count + ops.count > config.queueOpsMax) {
                outstanding.withLock { $0.count = 0 }
                return .overloaded
            }
            s.nextOffsets = nextOffsets
            for (h, key) in pending { s.pending[h] = key }
            for op in ops {
                s.queue.append(op)
                s.queuedBytes += op.bytes
                s.queuedRecords += op.records
            }
            return nil
        }
        if let error { return core.reject(error, completion) }
        if outstanding.withLock({ $0.count }) == 0 {
            core.sink.submit { completion(.success(())) }   // everything was applied before
            return
        }
        core.submission.broadcast()
    }
}
