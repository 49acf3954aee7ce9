import Glibc

/// A growable byte buffer owned by one connection: bytes are appended at `writeIndex` and
/// consumed from `readIndex`. Its memory is reused from response to response, so a
/// keep-alive connection allocates nothing per response once the buffer has grown to fit.
///
/// Pointers into the buffer stay valid until the next `reserveWritable` or `append` (which may
/// compact or grow it).
final class ByteBuffer {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    var readIndex = 0
    var writeIndex = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    var readableCount: Int { writeIndex - readIndex }

    /// The unread bytes.
    var readable: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base + readIndex, count: readableCount) }

    /// Free space after the written bytes (call `reserveWritable` first).
    var writable: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + writeIndex, count: capacity - writeIndex)
    }

    /// Makes room for at least `count` more bytes: moves the unread bytes to the front, then
    /// grows (doubling) if that is not enough.
    func reserveWritable(_ count: Int) {
        if capacity - writeIndex >= count { return }
        if readIndex > 0 {
            let unread = readableCount
            if unread > 0 { memmove(base, base + readIndex, unread) }
            readIndex = 0
            writeIndex = unread
        }
        if capacity - writeIndex >= count { return }
        var newCapacity = capacity * 2
        while newCapacity - writeIndex < count { newCapacity *= 2 }
        let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        grown.copyMemory(from: base, byteCount: writeIndex)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }

    func append(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        reserveWritable(bytes.count)
        (base + writeIndex).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        writeIndex += bytes.count
    }

    func clear() {
        readIndex = 0
        writeIndex = 0
    }
}
