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
    private var window: [UInt8] = []
    private var windowStart: Int64
    private var cursor = 0

    /// Scans `file` from `position` up to `limit` (exclusive).
    init(io: any FileIO, file: FileDescriptor, from position: Int64, limit: Int64, chunkBytes: Int = 1 << 20) {
        precondition(position >= 0 && position <= limit)
        self.io = io
        self.file = file
        self.limit = limit
        self.chunkBytes = chunkBytes
        self.windowStart = position
    }

    var position: Int64 { windowStart + Int64(cursor) }

    /// Makes at least `count` bytes available at the cursor when the file has them; returns how
    /// many are available.
    private mutating func fill(_ count: Int) throws(FileIOError) -> Int {
        let available = window.count - cursor
        if available >= count { return available }
        let fileLeft = Int(limit - windowStart - Int64(window.count))
        if fileLeft <= 0 { return available }
        if cursor > 0 {
            window.removeFirst(cursor)
            windowStart += Int64(cursor)
            cursor = 0
        }
        let want = min(fileLeft, max(count - window.count, chunkBytes))
        let old = window.count
        window.append(contentsOf: [UInt8](repeating: 0, count: want))
        let (io, file, at) = (self.io, self.file, windowStart + Int64(old))
        let got = try withMutableBytes(&window) { (raw) throws(FileIOError) in
            try io.readFully(file, into: UnsafeMutableRawBufferPointer(rebasing: raw[old...]), at: at)
        }
        if got < want { window.removeLast(want - got) }
        return window.count - cursor
    }

    /// Feeds frames to `decode` until the data ends or `decode` refuses; `decode` gets the
    /// window, the index of the frame's first byte in it and that byte's file position.
    mutating func scan(_ decode: (UnsafeRawBufferPointer, Int, Int64) throws -> Step) throws -> Stop {
        var want = RecordFrame.headerBytes
        while true {
            let available = try fill(want)
            if available == 0 { return Stop(position: position, reason: .end) }
            let step = try window.withUnsafeBytes { try decode($0, cursor, position) }
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
