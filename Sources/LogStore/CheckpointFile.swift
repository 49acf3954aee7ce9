/// The checkpoint: where every partition's durable data ends in its segment files, the
/// consumer state of every partition, and the journal sequence from which to replay. Written
/// as CHECKPOINT.tmp, fdatasync'd, renamed over CHECKPOINT, directory fsynced.
///
///     magic "RTPCKPT1" | version u32 | journalSeq u64 | hashSeed u64 u64 | timeMs i64 |
///     partitionCount u32 | partitions... | crc32c u32 (of everything before it)
///     partition: name string16 | endOffset u64 | segmentBase u64 | position u64 |
///                ackFloor u64 | ackedCount u32 | offsets u64... |
///                leaseCount u32 | (stream u64 | sequence u64 | count u32 | offsets u64...)...
struct CheckpointFile: Equatable {
    static let magic: [UInt8] = Array("RTPCKPT1".utf8)
    static let version: UInt32 = 1

    struct PartitionEntry: Equatable {
        var name: String
        /// Every record below is in fdatasync'd segment files.
        var endOffset: UInt64
        /// Segment holding `endOffset`, and the byte position of `endOffset` in it.
        var segmentBase: UInt64
        var position: UInt64
        var consumer: ConsumerState
    }

    /// Replay journals with this sequence and later.
    var journalSeq: UInt64
    var hashSeed: (UInt64, UInt64)
    var timeMs: Int64
    var partitions: [PartitionEntry]

    static func == (a: CheckpointFile, b: CheckpointFile) -> Bool {
        a.journalSeq == b.journalSeq && a.hashSeed == b.hashSeed && a.timeMs == b.timeMs && a.partitions == b.partitions
    }

    func encode() -> [UInt8] {
        var w = ByteWriter(capacity: 256 + partitions.count * 96)
        w.raw(Self.magic)
        w.u32(Self.version)
        w.u64(journalSeq)
        w.u64(hashSeed.0)
        w.u64(hashSeed.1)
        w.i64(timeMs)
        w.u32(UInt32(partitions.count))
        for p in partitions {
            w.string16(p.name)
            w.u64(p.endOffset)
            w.u64(p.segmentBase)
            w.u64(p.position)
            w.u64(p.consumer.ackFloor)
            w.u32(UInt32(p.consumer.ackedAboveFloor.count))
            for o in p.consumer.ackedAboveFloor { w.u64(o) }
            w.u32(UInt32(p.consumer.leases.count))
            for l in p.consumer.leases {
                w.u64(l.stream)
                w.u64(l.sequence)
                w.u32(UInt32(l.offsets.count))
                for o in l.offsets { w.u64(o) }
            }
        }
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> CheckpointFile {
        guard bytes.count >= 12, Array(bytes.prefix(8)) == magic else { throw DecodeError("bad magic") }
        let stored = bytes.withUnsafeBytes { $0.u32LE(at: bytes.count - 4) }
        let computed = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<(bytes.count - 4)])) }
        guard stored == computed else { throw DecodeError("checksum mismatch") }
        return try withBytes(bytes) { (raw) throws(DecodeError) -> CheckpointFile in
            var r = ByteReader(UnsafeRawBufferPointer(rebasing: raw[..<(raw.count - 4)]), position: 8)
            guard try r.u32() == version else { throw DecodeError("unsupported version") }
            let seq = try r.u64()
            let seed = (try r.u64(), try r.u64())
            let time = try r.i64()
            let count = Int(try r.u32())
            var partitions: [PartitionEntry] = []
            for _ in 0..<count {
                let name = try r.string16()
                let end = try r.u64()
                let base = try r.u64()
                let position = try r.u64()
                let floor = try r.u64()
                let acked = try (0..<Int(try r.u32())).map { _ throws(DecodeError) in try r.u64() }
                var leases: [Lease] = []
                for _ in 0..<Int(try r.u32()) {
                    let stream = try r.u64()
                    let sequence = try r.u64()
                    let offsets = try (0..<Int(try r.u32())).map { _ throws(DecodeError) in try r.u64() }
                    leases.append(Lease(stream: stream, sequence: sequence, offsets: offsets))
                }
                partitions.append(PartitionEntry(name: name, endOffset: end, segmentBase: base, position: position,
                                                 consumer: ConsumerState(ackFloor: floor, ackedAboveFloor: acked, leases: leases)))
            }
            guard r.remaining == 0 else { throw DecodeError("trailing bytes") }
            return CheckpointFile(journalSeq: seq, hashSeed: seed, timeMs: time, partitions: partitions)
        }
    }
}

/// Idempotency keys that became durable in the journals a checkpoint retired.
///
///     magic "RTPKEYS1" | version u32 | partitionCount u32 | names string16... |
///     entryCount u64 | entries | crc32c u32 (of everything before it)
///     entry (36 bytes): hash u64 u64 | partition u32 (index into names) | offset u64 | timestampMs i64
struct KeyFile: Equatable {
    static let magic: [UInt8] = Array("RTPKEYS1".utf8)
    static let version: UInt32 = 1
    static let entryBytes = 36

    struct Entry: Equatable {
        var hash: KeyHash
        var partition: String
        var offset: UInt64
        var timestampMs: Int64
    }

    var entries: [Entry]

    var newestTimestampMs: Int64? { entries.map(\.timestampMs).max() }

    func encode() -> [UInt8] {
        var names: [String] = []
        var numbers: [String: UInt32] = [:]
        for e in entries where numbers[e.partition] == nil {
            numbers[e.partition] = UInt32(names.count)
            names.append(e.partition)
        }
        var w = ByteWriter(capacity: 32 + names.count * 24 + entries.count * Self.entryBytes)
        w.raw(Self.magic)
        w.u32(Self.version)
        w.u32(UInt32(names.count))
        for n in names { w.string16(n) }
        w.u64(UInt64(entries.count))
        for e in entries {
            w.u64(e.hash.first)
            w.u64(e.hash.second)
            w.u32(numbers[e.partition]!)
            w.u64(e.offset)
            w.i64(e.timestampMs)
        }
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// Calls `visit` for every entry without building an array (fast load at open): `names` is
    /// the file's partition table, `visit` gets an index into it.
    static func forEachEntry(in bytes: [UInt8], names: ([String]) -> Void,
                             _ visit: (KeyHash, Int, UInt64, Int64) -> Void) throws(DecodeError) {
        guard bytes.count >= 28, Array(bytes.prefix(8)) == magic else { throw DecodeError("bad magic") }
        try withBytes(bytes) { (raw) throws(DecodeError) in
            let body = UnsafeRawBufferPointer(rebasing: raw[..<(raw.count - 4)])
            guard CRC32C.checksum(body) == raw.u32LE(at: raw.count - 4) else { throw DecodeError("checksum mismatch") }
            var r = ByteReader(body, position: 8)
            guard try r.u32() == version else { throw DecodeError("unsupported version") }
            let table = try (0..<Int(try r.u32())).map { _ throws(DecodeError) in try r.string16() }
            let count = Int(try r.u64())
            guard r.remaining == count * entryBytes else { throw DecodeError("entry count mismatch") }
            names(table)
            var at = r.position
            for _ in 0..<count {
                let number = Int(body.u32LE(at: at + 16))
                guard number < table.count else { throw DecodeError("bad partition number") }
                visit(KeyHash(first: body.u64LE(at: at), second: body.u64LE(at: at + 8)), number,
                      body.u64LE(at: at + 20), Int64(bitPattern: body.u64LE(at: at + 28)))
                at += entryBytes
            }
        }
    }

    /// Entry count from the file size (for sizing the index before loading).
    static func estimatedEntries(fileBytes: Int) -> Int { max(0, fileBytes / entryBytes) }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> KeyFile {
        var entries: [Entry] = []
        var table: [String] = []
        try forEachEntry(in: bytes, names: { table = $0 }) {
            entries.append(Entry(hash: $0, partition: table[$1], offset: $2, timestampMs: $3))
        }
        return KeyFile(entries: entries)
    }
}
