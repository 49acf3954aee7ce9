/// Little-endian encoding helpers shared by every on-disk format of the store.

/// Appends fixed-width little-endian integers and raw bytes to a growing buffer.
struct ByteWriter {
    var bytes: [UInt8]

    init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    var count: Int { bytes.count }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func raw(_ v: [UInt8]) { bytes.append(contentsOf: v) }

    /// A string with a 16-bit length prefix.
    mutating func string16(_ s: String) {
        let utf8 = Array(s.utf8)
        precondition(utf8.count <= Int(UInt16.max), "string too long for a 16-bit length")
        u16(UInt16(utf8.count))
        raw(utf8)
    }

    /// Overwrites 4 bytes at `index` (a field reserved earlier).
    mutating func patchU32(at index: Int, _ v: UInt32) {
        precondition(index >= 0 && index + 4 <= bytes.count)
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: v.littleEndian, toByteOffset: index, as: UInt32.self) }
    }
}

/// Thrown by `ByteReader` when the input ends early or holds an impossible value.
struct DecodeError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Reads fixed-width little-endian integers from a byte buffer, bounds-checked.
struct ByteReader {
    let buffer: UnsafeRawBufferPointer
    private(set) var position: Int

    init(_ buffer: UnsafeRawBufferPointer, position: Int = 0) {
        self.buffer = buffer
        self.position = position
    }

    var remaining: Int { buffer.count - position }

    private mutating func need(_ n: Int) throws(DecodeError) {
        if n < 0 || remaining < n { throw DecodeError("truncated: need \(n) bytes, have \(remaining)") }
    }

    mutating func u8() throws(DecodeError) -> UInt8 {
        try need(1)
        defer { position += 1 }
        return buffer[position]
    }

    mutating func u16() throws(DecodeError) -> UInt16 {
        try need(2)
        defer { position += 2 }
        return UInt16(littleEndian: buffer.loadUnaligned(fromByteOffset: position, as: UInt16.self))
    }

    mutating func u32() throws(DecodeError) -> UInt32 {
        try need(4)
        defer { position += 4 }
        return UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: position, as: UInt32.self))
    }

    mutating func u64() throws(DecodeError) -> UInt64 {
        try need(8)
        defer { position += 8 }
        return UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: position, as: UInt64.self))
    }

    mutating func i64() throws(DecodeError) -> Int64 { Int64(bitPattern: try u64()) }

    mutating func bytes(_ n: Int) throws(DecodeError) -> [UInt8] {
        try need(n)
        defer { position += n }
        return Array(UnsafeRawBufferPointer(rebasing: buffer[position..<(position + n)]))
    }

    mutating func string16() throws(DecodeError) -> String {
        let n = Int(try u16())
        return String(decoding: try bytes(n), as: UTF8.self)
    }

    mutating func skip(_ n: Int) throws(DecodeError) {
        try need(n)
        position += n
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func u32LE(at offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    @inline(__always)
    func u64LE(at offset: Int) -> UInt64 {
        UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}

/// `value` in decimal, left-padded with zeros to `width` digits (segment and journal names).
func zeroPadded(_ value: UInt64, width: Int = 20) -> String {
    let digits = String(value)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}

/// `Array.withUnsafeBytes` that keeps a typed error (the standard library's is `rethrows`).
@inline(__always)
func withBytes<R, E: Error>(_ array: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let result: Result<R, E> = array.withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }
    return try result.get()
}

/// `Array.withUnsafeMutableBytes` that keeps a typed error.
@inline(__always)
func withMutableBytes<R, E: Error>(_ array: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let result: Result<R, E> = array.withUnsafeMutableBytes { raw in Result { () throws(E) -> R in try body(raw) } }
    return try result.get()
}
