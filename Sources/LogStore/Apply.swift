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
    ///   after open the group is held (in order, like appends) and enqueued once it is ready.
    public func apply(_ group: CommittedGroup, completion: @escaping @Sendable (Result<Void, LogStoreError>) -> Void) {
        apply(group, pastKeyGate: false, completion: completion)
    }

    /// `pastKeyGate`: replayed from the held list while the index is being installed.
    private func apply(_ group: CommittedGroup, pastKeyGate: Bool,
                       completion: @escaping @Sendable (Result<Void, LogStoreError>) -> Void) {
        let config = core.config
        // Completes `completion` once every op that has a completion succeeded, or at the first failure.
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
        enum Step { case refused(LogStoreError), enqueued, nothingNew, held }
        let step: Step = core.submission.withLock { s in
            if s.closing { return .refused(.closed) }
            if let failure = s.failure { return .refused(failure) }
            if !s.keysReady && !pastKeyGate {
                guard s.held.count < config.queueOpsMax else { return .refused(.overloaded) }
                s.held.append { [self] in apply(group, pastKeyGate: true, completion: completion) }
                return .held
            }
            switch plan(group, finishOne: finishOne, &s) {
            case .failure(let error):
                return .refused(error)
            case .success(let ops):
                let completions = ops.filter(\.hasCompletion).count
                guard completions > 0 else { return .nothingNew }
                guard s.queuedBytes + ops.reduce(0, { $0 + $1.bytes }) <= config.queueBytesMax,
                      s.queue.count + ops.count <= config.queueOpsMax else { return .refused(.overloaded) }
                outstanding.withLock { $0.count = completions }
                for op in ops {
                    if case .append(let a) = op {
                        s.nextOffsets[a.partition.number] = a.firstOffset + UInt64(a.records.count)
                        for (k, h) in a.hashes.enumerated() {
                            s.pending[h] = PendingKey(partition: a.partition, offset: a.firstOffset + UInt64(k),
                                                      id: a.records[k].id, key: a.records[k].key)
                        }
                    }
                    s.queue.append(op)
                    s.queuedBytes += op.bytes
                    s.queuedRecords += op.records
                }
                return .enqueued
            }
        }
        switch step {
        case .held: break
        case .refused(let error): core.reject(error, completion)
        case .nothingNew: core.sink.submit { completion(.success(())) }   // everything was applied before
        case .enqueued: core.submission.broadcast()
        }
    }

    /// The ops that apply `group` after what was submitted so far, or why it cannot be
    /// applied. Reads `s` only: a refused group leaves nothing behind.
    private func plan(_ group: CommittedGroup, finishOne: @escaping @Sendable (Result<Void, LogStoreError>) -> Void,
                      _ s: inout SubmissionState) -> Result<[WriteOp], LogStoreError> {
        let config = core.config
        var ops: [WriteOp] = []
        var nextOffsets = s.nextOffsets
        var lastPartition: Partition?
        for event in group.events {
            guard let partition = core.partition(named: event.partition, create: true) else {
                return .failure(.invalidPartitionKey(event.partition))
            }
            if let failure = partition.failure { return .failure(.partitionFailed(partition: partition.name, reason: failure)) }
            lastPartition = partition
            switch event {
            case .appended(_, let records):
                let next = nextOffsets[partition.number] ?? 0
                let fresh = records.filter { $0.offset >= next }    // below: applied before
                guard !fresh.isEmpty else { continue }
                for (k, r) in fresh.enumerated() where r.offset != next + UInt64(k) {
                    return .failure(.invalidOffset(partition: partition.name, offset: r.offset))
                }
                for r in fresh where r.key.isEmpty || r.key.count > config.keyBytesMax || r.payload.count > config.payloadBytesMax {
                    return .failure(.invalidRecord("applied record at \(partition.name) offset \(r.offset) exceeds this store's limits"))
                }
                let appendRecords = fresh.map { AppendRecord(key: $0.key, id: $0.id, payload: $0.payload, timestampMs: $0.timestampMs) }
                let hashes = partition.key == nil ? [] : fresh.map { core.hasher.hash($0.key) }
                let outcomes = fresh.map { AppendOutcome.appended(offset: $0.offset) }
                ops.append(.append(AppendOp(partition: partition, records: appendRecords, firstOffset: next, hashes: hashes,
                                            outcomes: outcomes, dependsOn: []) { finishOne($0.map { _ in () }) }))
                nextOffsets[partition.number] = next + UInt64(fresh.count)
            case .acknowledged(_, let offsets):
                let next = nextOffsets[partition.number] ?? 0
                if let bad = offsets.first(where: { $0 >= next }) {
                    return .failure(.invalidOffset(partition: partition.name, offset: bad))
                }
                ops.append(.ack(partition, offsets, finishOne))
            case .leased(_, let lease):
                ops.append(.lease(partition, lease))
            case .released(_, let stream):
                ops.append(.release(partition, stream: stream))
            }
        }
        // Leases and releases have no completion: an empty acknowledgement after them completes
        // once their group is durable.
        if let lastPartition, !ops.isEmpty, !ops.contains(where: \.hasCompletion) {
            ops.append(.ack(lastPartition, [], finishOne))
        }
        return .success(ops)
    }
}
