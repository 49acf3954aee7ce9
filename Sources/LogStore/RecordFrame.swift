/// The segment record frame (docs/storage.md has the byte diagram):
///
///     crc32c u32 | length u32 | offset u64 | timestampMs i64 | id 16 | keyLength u16 | key | payload
///
/// `length` counts the bytes after the length field; `crc32c` covers `length` and everything
/// after it. All integers little-endian.
enum RecordFrame {
    static let headerBytes = 8
    static let fixedBodyBytes = 34
    static let overheadBytes = headerBytes + fixedBodyBytes
    /// Payloads are at most 64 MiB in any configuration.
    static let payloadBytesLimit = 64 << 20
    /// Format bound used when decoding, independent of the configured limits (so lowering a
    /// limit never makes stored frames unreadable).
    static let bodyBytesLimit = fixedBodyBytes + Int(UInt16.max) + payloadBytesLimit

    static func encodedBytes(keyCount: Int, payloadCount: Int) -> Int {
        overheadBytes + keyCount + payloadCount
    }

    /// Appends one encoded frame to `out`.
    static func append(to out: inout [UInt8], offset: UInt64, timestampMs: Int64, id: ResourceID,
                       key: [UInt8], payload: [UInt8]) {
        let start = out.count
        let body = fixedBodyBytes + key.count + payload.count
        var w = ByteWriter()
        swap(&w.bytes, &out)
        w.u32(0)
        w.u32(UInt32(body))
        w.u64(offset)
        w.i64(timestampMs)
        w.u64(id.high)
        w.u64(id.low)
        w.u16(UInt16(key.count))
        w.raw(key)
        w.raw(payload)
        swap(&w.bytes, &out)
        out.withUnsafeMutableBytes { raw in
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[(start + 4)...]))
            raw.storeBytes(of: crc.littleEndian, toByteOffset: start, as: UInt32.self)
        }
        assert(out.count - start == headerBytes + body)
    }

    /// A frame located in a buffer; ranges are relative to that buffer.
    struct View {
        var offset: UInt64
        var timestampMs: Int64
        var id: ResourceID
        var keyRange: Range<Int>
        var payloadRange: Range<Int>
        /// Header and body.
        var totalBytes: Int

        func record(in buffer: UnsafeRawBufferPointer) -> Record {
            Record(offset: offset, timestampMs: timestampMs, id: id,
                   key: Array(UnsafeRawBufferPointer(rebasing: buffer[keyRange])),
                   payload: Array(UnsafeRawBufferPointer(rebasing: buffer[payloadRange])))
        }
    }

    enum Decoded {
        case frame(View)
        /// The buffer ends inside the frame; `totalBytes` is what the header claims (or the
        /// header size when even the header is cut).
        case incomplete(totalBytes: Int)
        /// Not a valid frame (bad length, checksum or layout).
        case invalid(String)
    }

    /// Decodes the frame starting at `position` of `buffer`.
    static func decode(_ buffer: UnsafeRawBufferPointer, at position: Int, bodyBytesMax: Int) -> Decoded {
        let available = buffer.count - position
        if available < headerBytes { return .incomplete(totalBytes: headerBytes) }
        let crc = buffer.u32LE(at: position)
        let length = Int(buffer.u32LE(at: position + 4))
        if length == 0 && crc == 0 { return .invalid("zero header (end of written data)") }
        if length < fixedBodyBytes || length > bodyBytesMax { return .invalid("frame length \(length) out of range") }
        let total = headerBytes + length
        if available < total { return .incomplete(totalBytes: total) }
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[(position + 4)..<(position + total)]))
        if computed != crc { return .invalid("checksum mismatch") }
        let body = position + headerBytes
        let keyCount = Int(UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: body + 32, as: UInt16.self)))
        if keyCount > length - fixedBodyBytes { return .invalid("key length \(keyCount) exceeds frame") }
        let keyStart = body + fixedBodyBytes
        return .frame(View(
            offset: buffer.u64LE(at: body),
            timestampMs: Int64(bitPattern: buffer.u64LE(at: body + 8)),
            id: ResourceID(high: buffer.u64LE(at: body + 16), low: buffer.u64LE(at: body + 24)),
            keyRange: keyStart..<(keyStart + keyCount),
            payloadRange: (keyStart + keyCount)..<(position + total),
            totalBytes: total))
    }
}
