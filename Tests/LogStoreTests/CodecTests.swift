import XCTest
@testable import LogStore

final class CodecTests: XCTestCase {
    func testCRC32CKnownVectors() {
        // RFC 3720 (iSCSI) B.4 test vectors and the classic check value.
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }), 0x113F_DB5C)
    }

    func testCRC32CHardwareAndPortableAgree() {
        for n in [0, 1, 3, 8, 15, 16, 17, 4096, 4099] {
            let data = payload(n, count: n)
            XCTAssertEqual(CRC32C.checksum(data), CRC32C.portableChecksum(data), "length \(n)")
        }
    }

    func testCRC32CContinuationEqualsOneShot() {
        let data = payload(1, count: 1000)
        let whole = CRC32C.checksum(data)
        for split in [0, 1, 7, 8, 9, 500, 999, 1000] {
            let a = data[..<split].withUnsafeBytes { CRC32C.checksum($0) }
            let b = data[split...].withUnsafeBytes { CRC32C.checksum($0, continuing: a) }
            XCTAssertEqual(b, whole, "split at \(split)")
        }
    }

    func testSipHash128ReferenceVectors() {
        // veorq/SipHash vectors.h, vectors_sip128: key 00..0f, message 00..(len-1).
        let expected: [Int: String] = [
            0: "a3817f04ba25a8e66df67214c7550293",
            1: "da87c1d86b99af44347659119b22fc45",
            7: "a1f1ebbed8dbc153c0b84aa61ff08239",
            8: "3b62a9ba6258f5610f83e264f31497b4",
            9: "264499060ad9baabc47f8b02bb6d71ed",
            15: "5493e99933b0a8117e08ec0f97cfc3d9",
            16: "6ee2a4ca67b054bbfd3315bf85230577",
            63: "5150d1772f50834a503e069a973fbd7c",
        ]
        let hasher = SipHash128(k0: 0x0706_0504_0302_0100, k1: 0x0F0E_0D0C_0B0A_0908)
        for (length, hex) in expected {
            let h = hasher.hash((0..<length).map { UInt8($0) })
            var bytes: [UInt8] = []
            withUnsafeBytes(of: h.first.littleEndian) { bytes += $0 }
            withUnsafeBytes(of: h.second.littleEndian) { bytes += $0 }
            XCTAssertEqual(bytes.map { String(format: "%02x", $0) }.joined(), hex, "length \(length)")
        }
    }

    private func encodedFrame() -> [UInt8] {
        var out: [UInt8] = []
        RecordFrame.append(to: &out, offset: 42, timestampMs: -5, id: ResourceID(high: 1, low: 2),
                           key: Array("12345678/M1".utf8), payload: payload(3, count: 200))
        return out
    }

    func testRecordFrameRoundTrip() {
        let frame = encodedFrame()
        XCTAssertEqual(frame.count, RecordFrame.encodedBytes(keyCount: 11, payloadCount: 200))
        frame.withUnsafeBytes { raw in
            guard case .frame(let v) = RecordFrame.decode(raw, at: 0, bodyBytesMax: RecordFrame.bodyBytesLimit) else {
                return XCTFail("not decoded")
            }
            let r = v.record(in: raw)
            XCTAssertEqual(r, Record(offset: 42, timestampMs: -5, id: ResourceID(high: 1, low: 2),
                                     key: Array("12345678/M1".utf8), payload: payload(3, count: 200)))
            XCTAssertEqual(v.totalBytes, frame.count)
        }
    }

    func testRecordFrameDecodedIncrementallyOneByteAtATime() {
        let frame = encodedFrame()
        for n in 0..<frame.count {
            let prefix = Array(frame[..<n])
            prefix.withUnsafeBytes { raw in
                guard case .incomplete = RecordFrame.decode(raw, at: 0, bodyBytesMax: RecordFrame.bodyBytesLimit) else {
                    return XCTFail("prefix of \(n) bytes must be incomplete")
                }
            }
        }
    }

    func testEveryBitFlipInAFrameIsDetected() {
        let frame = encodedFrame()
        for byte in 0..<frame.count {
            for bit in 0..<8 {
                var damaged = frame
                damaged[byte] ^= UInt8(1 << bit)
                damaged.withUnsafeBytes { raw in
                    if case .frame = RecordFrame.decode(raw, at: 0, bodyBytesMax: RecordFrame.bodyBytesLimit) {
                        XCTFail("flip of bit \(bit) in byte \(byte) was not detected")
                    }
                }
            }
        }
    }

    func testJournalEntryRoundTripAndSequenceCheck() {
        var w = ByteWriter()
        let start = JournalFormat.begin(&w, seq: 9, kind: .lease, partition: "x:12345678")
        w.u64(3); w.u64(4); w.u32(2); w.u64(10); w.u64(11)
        JournalFormat.finish(&w, start: start)
        w.bytes.withUnsafeBytes { raw in
            guard case .entry(.lease(let name, let lease), let total) = JournalFormat.decode(raw, at: 0, seq: 9) else {
                return XCTFail("not decoded")
            }
            XCTAssertEqual(name, "x:12345678")
            XCTAssertEqual(lease, Lease(stream: 3, sequence: 4, offsets: [10, 11]))
            XCTAssertEqual(total, raw.count)
            // The same bytes in a journal with another sequence (a recycled file) end the replay.
            guard case .end = JournalFormat.decode(raw, at: 0, seq: 10) else { return XCTFail("stale entry accepted") }
        }
        [UInt8](repeating: 0, count: 16).withUnsafeBytes { raw in
            guard case .end = JournalFormat.decode(raw, at: 0, seq: 9) else { return XCTFail("zero header is the end") }
        }
    }

    func testSparseIndexFloorAndStaleEntriesDropped() {
        var index = SparseIndex()
        index.append(relativeOffset: 0, position: 0)
        index.append(relativeOffset: 10, position: 4096)
        index.append(relativeOffset: 25, position: 8200)
        XCTAssertEqual(index.floor(0)?.position, 0)
        XCTAssertEqual(index.floor(9)?.position, 0)
        XCTAssertEqual(index.floor(10)?.position, 4096)
        XCTAssertEqual(index.floor(1000)?.relativeOffset, 25)
        let bytes = index.encode(0..<3)
        // A log cut to 8000 bytes makes the last entry stale.
        XCTAssertEqual(SparseIndex.decode(bytes, logBytes: 8000).count, 2)
        // Garbage after valid entries (not increasing) is dropped.
        XCTAssertEqual(SparseIndex.decode(bytes + [1, 0, 0, 0, 1, 0, 0, 0], logBytes: 1 << 20).count, 3)
    }

    func testCheckpointAndKeyFileRoundTripAndCorruptionDetected() throws {
        let ckpt = CheckpointFile(journalSeq: 7, hashSeed: (1, 2), timeMs: 99, partitions: [
            .init(name: "a:00000001", endOffset: 10, segmentBase: 0, position: 777,
                  consumer: ConsumerState(ackFloor: 3, ackedAboveFloor: [5, 9], leases: [Lease(stream: 1, sequence: 2, offsets: [3, 4])])),
        ])
        var bytes = ckpt.encode()
        XCTAssertEqual(try CheckpointFile.decode(bytes), ckpt)
        bytes[20] ^= 0x40
        XCTAssertThrowsError(try CheckpointFile.decode(bytes))

        let keys = KeyFile(entries: [
            .init(hash: KeyHash(first: 1, second: 2), partition: "a:00000001", offset: 5, timestampMs: 6),
            .init(hash: KeyHash(first: 3, second: 4), partition: "b:00000002", offset: 7, timestampMs: 8),
        ])
        var keyBytes = keys.encode()
        XCTAssertEqual(try KeyFile.decode(keyBytes), keys)
        keyBytes[keyBytes.count - 10] ^= 1
        XCTAssertThrowsError(try KeyFile.decode(keyBytes))
    }

    func testQuarantineEntryCodingCapsPayload() throws {
        let entry = QuarantineEntry(timeMs: 5, sender: "12345678", messageId: "M1", reasonCode: "schema-invalid",
                                    detail: "element X", payload: payload(4, count: 1000))
        let (key, bytes) = QuarantineCoding.encode(entry, payloadBytesMax: 100)
        XCTAssertEqual(String(decoding: key, as: UTF8.self), "12345678/M1")
        let decoded = try QuarantineCoding.decode(Record(offset: 3, timestampMs: 5, id: ResourceID(high: 0, low: 0), key: key, payload: bytes))
        XCTAssertEqual(decoded.offset, 3)
        XCTAssertEqual(decoded.entry.payload, Array(entry.payload.prefix(100)))
        XCTAssertEqual(decoded.entry.payloadBytesOriginal, 1000)
        XCTAssertEqual(decoded.entry.reasonCode, "schema-invalid")
        XCTAssertEqual(decoded.entry.messageId, "M1")
    }
}
