/// The write-ahead journal shared by all partitions: one fdatasync per commit group.
///
///     frame: crc32c u32 | length u32 | body
///     body:  journalSeq u64 | kind u8 | partition string16 | kind-specific fields
///
///     kind 1 append:  count u32 | `count` segment record frames, exactly as in the segment
///     kind 2 ack:     count u32 | offsets u64...
///     kind 3 lease:   stream u64 | sequence u64 | count u32 | offsets u64...
///     kind 4 release: stream u64
///
/// `crc32c` covers `length` and the body. `journalSeq` is the sequence in the file's name: frames
/// left over from a recycled file carry an older one and end the replay.
enum JournalFormat {
    static let headerBytes = 8
    /// Format bound for decoding.
    static let bodyBytesLimit = 1 << 30

    enum Kind: UInt8 {
        case append = 1
        case ack = 2
        case lease = 3
        case release = 4
    }

    /// Starts an entry; returns its start index for `finish`.
    static func begin(_ w: inout ByteWriter, seq: UInt64, kind: Kind, partition: String) -> Int {
        let start = w.count
        w.u32(0)
        w.u32(0)
        w.u64(seq)
        w.u8(kind.rawValue)
        w.string16(partition)
        return start
    }

    /// Patches the length and checksum of the entry that began at `start`.
    static func finish(_ w: inout ByteWriter, start: Int) {
        let length = w.count - start - headerBytes
        precondition(length <= bodyBytesLimit)
        w.patchU32(at: start + 4, UInt32(length))
        let crc = w.bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[(start + 4)...])) }
        w.patchU32(at: start, crc)
    }

    enum Entry {
        /// Frames of `frames` (a range of the decode buffer).
        case append(partition: String, count: Int, frames: Range<Int>)
        case ack(partition: String, offsets: [UInt64])
        case lease(partition: String, Lease)
        case release(partition: String, stream: UInt64)
    }

    enum Decoded {
        case entry(Entry, totalBytes: Int)
        /// The end of what was written: a zero header (the writer ends every group with one) or
        /// an intact entry of an older journal (a recycled file).
        case end
        case incomplete(totalBytes: Int)
        case invalid(String)
    }

    static func decode(_ buffer: UnsafeRawBufferPointer, at position: Int, seq: UInt64) -> Decoded {
        let available = buffer.count - position
        if available < headerBytes { return .incomplete(totalBytes: headerBytes) }
        let crc = buffer.u32LE(at: position)
        let length = Int(buffer.u32LE(at: position + 4))
        if length == 0 && crc == 0 { return .end }
        if length < 11 || length > bodyBytesLimit { return .invalid("entry length \(length) out of range") }
        let total = headerBytes + length
        if available < total { return .incomplete(totalBytes: total) }
        let body = UnsafeRawBufferPointer(rebasing: buffer[(position + 4)..<(position + total)])
        if CRC32C.checksum(body) != crc { return .invalid("checksum mismatch") }
        var r = ByteReader(buffer, position: position + headerBytes)
        do {
            let entrySeq = try r.u64()
            if entrySeq != seq { return .end }
            guard let kind = Kind(rawValue: try r.u8()) else { return .invalid("unknown entry kind") }
            let partition = try r.string16()
            let entry: Entry
            switch kind {
            case .append:
                let count = Int(try r.u32())
                entry = .append(partition: partition, count: count, frames: r.position..<(position + total))
            case .ack:
                let count = Int(try r.u32())
                guard count <= (position + total - r.position) / 8 else { return .invalid("ack count too large") }
                entry = .ack(partition: partition, offsets: try (0..<count).map { _ throws(DecodeError) in try r.u64() })
            case .lease:
                let stream = try r.u64()
                let sequence = try r.u64()
                let count = Int(try r.u32())
                guard count <= (position + total - r.position) / 8 else { return .invalid("lease count too large") }
                let offsets = try (0..<count).map { _ throws(DecodeError) in try r.u64() }
                entry = .lease(partition: partition, Lease(stream: stream, sequence: sequence, offsets: offsets))
            case .release:
                entry = .release(partition: partition, stream: try r.u64())
            }
            if case .append = entry {} else if r.position != position + total {
                return .invalid("entry has trailing bytes")
            }
            return .entry(entry, totalBytes: total)
        } catch {
            return .invalid("malformed entry: \(error)")
        }
    }

    static func fileName(_ seq: UInt64) -> String { "\(zeroPadded(seq)).wal" }

    static func seq(fromFileName name: String) -> UInt64? {
        guard name.hasSuffix(".wal"), name.utf8.count == 24 else { return nil }
        return UInt64(name.prefix(20))
    }
}
