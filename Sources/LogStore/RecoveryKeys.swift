import Logging
import Synchronization

/// Recovery: the idempotency index (key files loaded on their own thread, keys found past the
/// checkpoint).
extension Recovery {
    /// Key files the checkpoint covers, oldest first; removes the others (left by a checkpoint
    /// that did not complete).
    func keyFileSeqs() throws(LogStoreError) -> [UInt64] {
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
    static func insertKeys(from bytes: [UInt8], into index: inout IdempotencyIndex, core: StoreCore,
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
    mutating func rememberKey(_ key: UnsafeRawBufferPointer, partition: Partition, offset: UInt64, timestampMs: Int64) {
        guard partition.key != nil, timestampMs >= cutoffMs else { return }
        let hash = core.hasher.hash(key)
        recoveredKeys.append((hash, .init(partition: partition.number, offset: offset, timestampMs: timestampMs)))
        keyLog.append(KeyFile.Entry(hash: hash, partition: partition.name, offset: offset, timestampMs: timestampMs))
    }
}
