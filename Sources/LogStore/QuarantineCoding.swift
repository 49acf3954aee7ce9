/// Quarantine entries are records of the quarantine log: the record's key is
/// "<sender>/<messageId or ->", its timestamp the entry's time, its payload (sender, message
/// id and reason capped at 256 characters, detail at 2048 bytes, so the fields take < 4 KiB):
///
///     version u8 | sender string16 | hasMessageId u8 | messageId string16 |
///     reasonCode string16 | detail u32-length UTF-8 | payloadBytesOriginal u32 | payload...
enum QuarantineCoding {
    static let version: UInt8 = 1

    static func encode(_ e: QuarantineEntry, payloadBytesMax: Int) -> (key: [UInt8], payload: [UInt8]) {
        var w = ByteWriter(capacity: 64 + e.detail.utf8.count + min(e.payload.count, payloadBytesMax))
        w.u8(version)
        w.string16(String(e.sender.prefix(256)))
        w.u8(e.messageId == nil ? 0 : 1)
        w.string16(String((e.messageId ?? "").prefix(256)))
        w.string16(String(e.reasonCode.prefix(256)))
        let detail = Array(e.detail.utf8.prefix(2048))
        w.u32(UInt32(detail.count))
        w.raw(detail)
        w.u32(UInt32(clamping: e.payloadBytesOriginal))
        w.raw(Array(e.payload.prefix(payloadBytesMax)))
        let key = Array("\(e.sender)/\(e.messageId ?? "-")".utf8.prefix(200))
        return (key.isEmpty ? [0x2d] : key, w.bytes)
    }

    static func decode(_ record: Record) throws(DecodeError) -> QuarantineRecord {
        try withBytes(record.payload) { (raw) throws(DecodeError) -> QuarantineRecord in
            var r = ByteReader(raw)
            guard try r.u8() == version else { throw DecodeError("unsupported quarantine entry version") }
            let sender = try r.string16()
            let hasId = try r.u8() != 0
            let id = try r.string16()
            let reason = try r.string16()
            let detail = String(decoding: try r.bytes(Int(try r.u32())), as: UTF8.self)
            let original = Int(try r.u32())
            let payload = try r.bytes(r.remaining)
            var entry = QuarantineEntry(timeMs: record.timestampMs, sender: sender, messageId: hasId ? id : nil,
                                        reasonCode: reason, detail: detail, payload: payload)
            entry.payloadBytesOriginal = original
            return QuarantineRecord(offset: record.offset, entry: entry)
        }
    }
}
