import Synchronization

/// One segment file of a partition, `<base offset, 20 digits>.log`, with its sparse index
/// `<base>.idx`. The descriptor opens lazily and closes when the last reader lets go (ARC),
/// so retention can delete a segment that a reader is still reading.
final class Segment: Sendable {
    let base: UInt64
    let directory: String
    let io: any FileIO
    private let descriptorBox: Mutex<FileDescriptor?>

    init(base: UInt64, directory: String, io: any FileIO, descriptor: FileDescriptor? = nil) {
        self.base = base
        self.directory = directory
        self.io = io
        self.descriptorBox = Mutex(descriptor)
    }

    deinit {
        if let fd = descriptorBox.withLock({ $0 }) { io.close(fd) }
    }

    var logPath: String { "\(directory)/\(Segment.logName(base))" }
    var indexPath: String { "\(directory)/\(zeroPadded(base)).idx" }

    static func logName(_ base: UInt64) -> String { "\(zeroPadded(base)).log" }

    /// Parses "<20 digits>.log".
    static func base(fromLogName name: String) -> UInt64? {
        guard name.hasSuffix(".log"), name.utf8.count == 24 else { return nil }
        return UInt64(name.prefix(20))
    }

    func descriptor() throws(FileIOError) -> FileDescriptor {
        try descriptorBox.withLock { (fd) throws(FileIOError) -> FileDescriptor in
            if let fd { return fd }
            let opened = try io.open(logPath, create: false)
            fd = opened
            return opened
        }
    }
}

/// What readers and retention know about one segment. Lives in `PartitionState`.
struct SegmentInfo: Sendable {
    let segment: Segment
    /// Bytes that are durable and readable.
    var bytes: Int64
    /// One past the last durable record of this segment.
    var endOffset: UInt64
    /// nil until loaded (sealed segments found at open load it on first read).
    var index: SparseIndex?
    /// Entries of `index` already written to the index file.
    var indexPersisted = 0
    /// No more records will be written to it.
    var sealed: Bool
    /// Sealed and covered by a completed checkpoint: retention may delete it.
    var checkpointed: Bool
    /// Timestamp of its last record, when known.
    var lastTimestampMs: Int64?

    var base: UInt64 { segment.base }
}
