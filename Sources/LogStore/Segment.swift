import Synchronization

/// One segment file of a partition, `<base offset, 20 digits>.log`, with its sparse index
/// `<base>.idx`. The descriptor opens lazily, may be closed by the store's `DescriptorCache`
/// while no one uses it (and opens again on the next use), and closes when the last reader lets
/// go (ARC), so retention can delete a segment that a reader is still reading.
final class Segment: Sendable {
    let base: UInt64
    let directory: String
    let io: any FileIO
    /// nil: the descriptor stays open for the segment's life (tools and tests).
    let cache: DescriptorCache?
    private struct Handle {
        var fd: FileDescriptor?
        /// Users inside `withDescriptor` now: the descriptor is not closed under them.
        var pins = 0
        var lastUse: UInt64 = 0
    }
    private let handle: Mutex<Handle>

    init(base: UInt64, directory: String, io: any FileIO, cache: DescriptorCache?, descriptor: FileDescriptor? = nil) {
        self.base = base
        self.directory = directory
        self.io = io
        self.cache = cache
        self.handle = Mutex(Handle(fd: descriptor, lastUse: cache?.tick() ?? 0))
        if descriptor != nil, let cache, cache.register(self) { cache.evict(sparing: self) }
    }

    deinit {
        if let fd = handle.withLock({ $0.fd }) {
            cache?.forget(self, evicted: false)
            io.close(fd)
        }
    }

    var logPath: String { "\(directory)/\(Segment.logName(base))" }
    var indexPath: String { "\(directory)/\(zeroPadded(base)).idx" }

    static func logName(_ base: UInt64) -> String { "\(zeroPadded(base)).log" }

    /// Parses "<20 digits>.log".
    static func base(fromLogName name: String) -> UInt64? {
        guard name.hasSuffix(".log"), name.utf8.count == 24 else { return nil }
        return UInt64(name.prefix(20))
    }

    /// Runs `body` with the segment's descriptor, opening the file if needed; the descriptor is
    /// not closed by the cache while `body` runs. Never keep the descriptor beyond `body`.
    func withDescriptor<T>(_ body: (FileDescriptor) throws(FileIOError) -> T) throws(FileIOError) -> T {
        let fd = try pin()
        defer { unpin() }
        return try body(fd)
    }

    /// The descriptor, opened if needed and pinned until the matching `unpin()` (for scans
    /// whose scope does not fit a closure: pin, then `defer { segment.unpin() }`).
    func pin() throws(FileIOError) -> FileDescriptor {
        let tick = cache?.tick() ?? 0
        if let fd = handle.withLock({ h -> FileDescriptor? in
            guard let fd = h.fd else { return nil }
            h.pins += 1
            h.lastUse = tick
            return fd
        }) { return fd }
        let opened = try io.open(logPath, create: false)
        let (fd, spare, over) = handle.withLock { h -> (FileDescriptor, FileDescriptor?, Bool) in
            h.pins += 1
            h.lastUse = tick
            if let fd = h.fd { return (fd, opened, false) }   // another thread opened it meanwhile
            h.fd = opened
            return (opened, nil, cache?.register(self) ?? false)
        }
        if let spare { io.close(spare) }
        if over { cache?.evict(sparing: self) }
        return fd
    }

    func unpin() {
        let idle = handle.withLock { h in
            precondition(h.pins > 0, "unpin without pin")
            h.pins -= 1
            return h.pins == 0
        }
        if idle, let cache, cache.isOverCapacity { cache.evict(sparing: nil) }
    }

    /// Last use tick (for the cache's eviction order).
    var lastUse: UInt64 { handle.withLock { $0.lastUse } }

    /// Closes the descriptor when no one is using it; true when it was closed.
    func closeIfIdle() -> Bool {
        let fd = handle.withLock { h -> FileDescriptor? in
            guard h.pins == 0, let fd = h.fd else { return nil }
            h.fd = nil
            cache?.forget(self, evicted: true)
            return fd
        }
        guard let fd else { return false }
        io.close(fd)
        return true
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
