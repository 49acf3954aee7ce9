import Glibc

/// Reads a file front to back through a window, for decoders of length-prefixed frames
/// (segment recovery, index rebuilds, journal replay).
struct FileScanner {
    /// What a decoder made of the bytes at the cursor.
    enum Step {
        /// A valid frame of this many bytes (already handled by the decoder).
        case frame(totalBytes: Int)
        /// The window ends inside a frame that claims this many bytes.
        case incomplete(totalBytes: Int)
        case invalid(String)
    }

    /// Why scanning stopped, and where (file position of the first byte not accepted).
    struct Stop: Equatable {
        enum Reason: Equatable {
            case end
            case tornFrame
            case invalid(String)
        }
        var position: Int64
        var reason: Reason
    }

    private let io: any FileIO
    private let file: FileDescriptor
    private let limit: Int64
    private let chunkBytes: Int
    /// The window: bytes `[0, count)` of `storage` mirror the file from `windowStart`.
    private var storage: ScannerBuffer
    private var windowStart: Int64
    private var cursor = 0

    /// Scans `file` from `position` up to `limit` (exclusive), reading `chunkBytes` at least
    /// per refill.
    init(io: any FileIO, file: FileDescriptor, from position: Int64, limit: Int64, chunkBytes: Int = 1 << 20) {
        precondition(position >= 0 && position <= limit)
        self.io = io
        self.file = file
        self.limit = limit
        self.chunkBytes = chunkBytes
        self.windowStart = position
        storage = ScannerBuffer()
    }

    var position: Int64 { windowStart + Int64(cursor) }

    /// Makes at least `count` bytes available at the cursor when the file has them; returns how
    /// many are available. The window's storage is reused and never zero-filled.
    private mutating func fill(_ count: Int) throws(FileIOError) -> Int {
        let available = storage.count - cursor
        if available >= count { return available }
        let fileLeft = Int(limit - windowStart - Int64(storage.count))
        if fileLeft <= 0 { return available }
        if cursor > 0 {
            storage.dropFirst(cursor)
            windowStart += Int64(cursor)
            cursor = 0
        }
        let want = min(fileLeft, max(count - storage.count, chunkBytes))
        let old = storage.count
        storage.reserve(old + want)
        let got = try io.readFully(file, into: UnsafeMutableRawBufferPointer(start: storage.base + old, count: want),
                                   at: windowStart + Int64(old))
        storage.count = old + got
        return storage.count - cursor
    }

    /// Feeds frames to `decode` until the data ends or `decode` refuses; `decode` gets the
    /// window, the index of the frame's first byte in it and that byte's file position.
    mutating func scan(_ decode: (UnsafeRawBufferPointer, Int, Int64) throws -> Step) throws -> Stop {
        var want = RecordFrame.headerBytes
        while true {
            let available = try fill(want)
            if available == 0 { return Stop(position: position, reason: .end) }
            let step = try decode(UnsafeRawBufferPointer(start: storage.base, count: storage.count), cursor, position)
            switch step {
            case .frame(let total):
                precondition(total > 0 && total <= available)
                cursor += total
                want = RecordFrame.headerBytes
            case .incomplete(let total):
                if total <= want || available >= total {
                    return Stop(position: position, reason: .tornFrame)
                }
                want = total
            case .invalid(let why):
                return Stop(position: position, reason: .invalid(why))
            }
        }
    }
}

/// A growable byte buffer that is never zero-filled (the scanner overwrites what it reads).
final class ScannerBuffer {
    private(set) var base: UnsafeMutableRawPointer
    private var capacity: Int
    var count = 0

    init(capacity: Int = 64 << 10) {
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    func reserve(_ n: Int) {
        guard n > capacity else { return }
        let newCapacity = max(n, capacity * 2)
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        fresh.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = fresh
        capacity = newCapacity
    }

    func dropFirst(_ n: Int) {
        precondition(n <= count)
        memmove(base, base + n, count - n)
        count -= n
    }
}
