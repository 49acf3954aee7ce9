import Logging

/// Submission of appends: idempotency checks against pending and durable keys, offsets,
/// back-pressure, the commit queue. Runs on the caller's thread; the writer thread takes it
/// from there.
extension StoreCore {
    func reject<T>(_ error: LogStoreError, _ completion: @escaping @Sendable (Result<T, LogStoreError>) -> Void) {
        switch error {
        case .overloaded: metrics.rejectedOverloaded.increment()
        case .invalidRecord, .invalidPartitionKey, .invalidOffset: metrics.rejectedInvalid.increment()
        default: metrics.rejectedFailed.increment()
        }
        sink.submit { completion(.failure(error)) }
    }

    enum SubmitStep {
        case done(Result<[AppendOutcome], LogStoreError>)
        case enqueued
        case verify([(index: Int, location: IdempotencyIndex.Location)])
        /// Held until the idempotency index is loaded (see `installKeys`).
        case held
    }

    /// Classifies each record (new, duplicate in batch, duplicate of a pending or durable key),
    /// assigns offsets and queues the new ones, all under the submission lock. A durable key is
    /// confirmed by reading its record (fingerprints are 128-bit; the read makes the answer
    /// exact and yields the id): that read happens outside the lock, then submission retries.
    func submit(_ partition: Partition, _ records: [AppendRecord], hashes: [KeyHash],
                verified: [Int: IdempotencyEntry?], pastKeyGate: Bool = false,
                completion: @escaping @Sendable (Result<[AppendOutcome], LogStoreError>) -> Void) {
        let config = self.config
        let deduplicate = !hashes.isEmpty
        let step: SubmitStep = submission.withLock { s in
            if s.closing { return .done(.failure(.closed)) }
            if let failure = s.failure { return .done(.failure(failure)) }
            if deduplicate && !pastKeyGate && !s.keysReady {
                guard s.held.count < config.queueOpsMax else { return .done(.failure(.overloaded)) }
                s.held.append { [self] in
                    submit(partition, records, hashes: hashes, verified: verified, pastKeyGate: true, completion: completion)
                }
                return .held
            }
            if let failure = partition.failure { return .done(.failure(.partitionFailed(partition: partition.name, reason: failure))) }
            var outcomes = [AppendOutcome?](repeating: nil, count: records.count)
            var duplicateOf: [Int: Int] = [:]
            var fresh: [Int] = []
            var needVerify: [(index: Int, location: IdempotencyIndex.Location)] = []
            var dependsOn: [Partition] = []
            var waitsForPending = false
            var firstInBatch: [KeyHash: Int] = [:]
            for i in records.indices {
                guard deduplicate else {
                    fresh.append(i)
                    continue
                }
                let h = hashes[i]
                if let j = firstInBatch[h], records[j].key == records[i].key {
                    duplicateOf[i] = j
                    continue
                }
                if let pending = s.pending[h], pending.key == records[i].key, let key = pending.partition.key {
                    outcomes[i] = .duplicate(partition: key, offset: pending.offset, id: pending.id)
                    waitsForPending = true
                    if pending.partition !== partition, !dependsOn.contains(where: { $0 === pending.partition }) {
                        dependsOn.append(pending.partition)
                    }
                    continue
                }
                if let known = verified[i] {
                    if let e = known {
                        outcomes[i] = .duplicate(partition: e.partition, offset: e.offset, id: e.id)
                        continue
                    }
                } else if let location = s.keys.lookup(h) {
                    needVerify.append((i, location))
                    continue
                }
                firstInBatch[h] = i
                fresh.append(i)
            }
            if !needVerify.isEmpty { return .verify(needVerify) }
            let newRecords = fresh.map { records[$0] }
            let bytes = newRecords.reduce(64) { $0 + RecordFrame.encodedBytes(keyCount: $1.key.count, payloadCount: $1.payload.count) }
            if !fresh.isEmpty && (s.queuedBytes + bytes > config.queueBytesMax || s.queue.count >= config.queueOpsMax) {
                return .done(.failure(.overloaded))
            }
            let first = s.nextOffsets[partition.number] ?? 0
            for (k, i) in fresh.enumerated() {
                let offset = first + UInt64(k)
                outcomes[i] = .appended(offset: offset)
                if deduplicate {
                    s.pending[hashes[i]] = PendingKey(partition: partition, offset: offset, id: records[i].id, key: records[i].key)
                }
            }
            for (i, j) in duplicateOf {
                guard case .appended(let offset) = outcomes[j], let key = partition.key else { continue }
                outcomes[i] = .duplicate(partition: key, offset: offset, id: records[j].id)
            }
            let final = outcomes.map { $0! }
            let duplicates = records.count - fresh.count
            if duplicates > 0 { metrics.duplicateRecords.increment(by: duplicates) }
            if fresh.isEmpty && !waitsForPending { return .done(.success(final)) }
            s.nextOffsets[partition.number] = first + UInt64(fresh.count)
            let op = AppendOp(partition: partition, records: newRecords, firstOffset: first,
                              hashes: deduplicate ? fresh.map { hashes[$0] } : [], outcomes: final, dependsOn: dependsOn,
                              completion: completion)
            s.queue.append(.append(op))
            s.queuedBytes += op.encodedBytes
            s.queuedRecords += newRecords.count
            return .enqueued
        }
        switch step {
        case .held:
            break
        case .enqueued:
            submission.broadcast()
        case .done(let result):
            if case .success = result {
                sink.submit { completion(result) }
            } else if case .failure(let error) = result {
                reject(error, completion)
            }
        case .verify(let list):
            var known = verified
            for (i, location) in list {
                switch confirm(location, key: records[i].key) {
                case .success(let entry): known[i] = entry
                case .failure(let error): return reject(error, completion)
                }
            }
            submit(partition, records, hashes: hashes, verified: known, pastKeyGate: pastKeyGate, completion: completion)
        }
    }

    /// Reads the record an index entry points to: the key's entry when the record holds exactly
    /// this key, nil when it does not (a fingerprint collision) or is gone (retention).
    func confirm(_ location: IdempotencyIndex.Location, key: [UInt8]) -> Result<IdempotencyEntry?, LogStoreError> {
        guard let p = partition(number: location.partition), let partitionKey = p.key else { return .success(nil) }
        do {
            let records = try p.read(from: location.offset, maxRecords: 1, maxBytes: 0, indexIntervalBytes: config.indexIntervalBytes)
            guard let r = records.first, r.offset == location.offset, r.key == key else { return .success(nil) }
            return .success(IdempotencyEntry(partition: partitionKey, offset: r.offset, id: r.id, timestampMs: r.timestampMs))
        } catch {
            noteReadFailure(error, partition: p.name)
            return .failure(error)
        }
    }

    func noteReadFailure(_ error: LogStoreError, partition: String) {
        if case .corruption(_, let offset, let detail) = error {
            metrics.corruptReads.increment()
            logger.error("corrupt record detected on read; not served",
                              metadata: ["partition": "\(partition)", "offset": "\(offset)", "detail": "\(detail)"])
        }
    }

    /// Installs the idempotency index loaded after open, then submits the appends held
    /// meanwhile, in order (appends arriving during that are held behind them).
    func installKeys(_ pending: Recovery.PendingKeys, checkpointer: Checkpointer) {
        let t0 = Clock.monotonicNanoseconds()
        guard var load = pending.take() else { return }
        if let error = load.error {
            submission.withLock { $0.failure = $0.failure ?? error }
            metrics.failures.increment()
            logger.critical("idempotency key files unreadable: the store refuses appends until it is reopened",
                            metadata: ["error": "\(error)"])
        } else {
            let recovered = pending.recovered
            submission.withLock { s in
                swap(&s.keys, &load.index)
                for (hash, location) in recovered { s.keys.insert(hash, location) }
                // Keys made durable before the index was ready (none expected: appends were held).
                for (hash, location) in load.index.entries { s.keys.insert(hash, location) }
            }
            checkpointer.keyFiles.withLock { $0 = load.files + $0 }
        }
        let entries = submission.withLock { $0.keys.count }
        metrics.idempotencyEntries.record(entries)
        recoveryReport.withLock {
            $0.keysLoaded = load.loaded
            $0.keysMs = load.milliseconds
        }
        var released = 0
        while true {
            let batch: [@Sendable () -> Void] = submission.withLock { s in
                if s.held.isEmpty {
                    s.keysReady = true
                    return []
                }
                defer { s.held.removeAll() }
                return s.held
            }
            if batch.isEmpty { break }
            released += batch.count
            for submitHeld in batch { submitHeld() }
        }
        logger.info("idempotency index ready", metadata: [
            "keys": "\(entries)", "loadMs": "\(Int(load.milliseconds))",
            "waitedMs": "\(Int(Double(Clock.monotonicNanoseconds() - t0) / 1e6))", "heldAppends": "\(released)",
        ])
    }
}
