import Synchronization

/// Readers' view of a partition: published by the writer after each fdatasync.
struct PartitionState: Sendable {
    var segments: [SegmentInfo] = []
    /// Next offset; every record below is durable.
    var durableEnd: UInt64 = 0
    /// Set when a write to this partition failed: appends are refused until reopen.
    var failure: String?

    var startOffset: UInt64 { segments.first?.base ?? durableEnd }
    var bytes: Int64 { segments.reduce(0) { $0 + $1.bytes } }

    /// Index in `segments` of the segment holding `offset`.
    func segmentIndex(for offset: UInt64) -> Int? {
        var low = 0, high = segments.count
        while low < high {
            let mid = (low + high) / 2
            if segments[mid].base <= offset { low = mid + 1 } else { high = mid }
        }
        return low == 0 ? nil : low - 1
    }
}

/// Progress of one segment during a commit group, published once the group is durable.
struct SegmentProgress {
    let segment: Segment
    var bytes: Int64
    var endOffset: UInt64
    var newIndexEntries: [UInt64] = []
    var sealed = false
    var created: Bool
    var lastTimestampMs: Int64?
}

/// The writer's private state of a partition (touched only by the writer thread, or by
/// recovery before the writer starts).
struct PartitionWriterState {
    var active: Segment?
    var activeBytes: Int64 = 0
    var nextOffset: UInt64 = 0
    var lastIndexedPosition: Int64?
    /// Segments touched by the current group.
    var progress: [SegmentProgress] = []
    /// Segments written since the last checkpoint capture.
    var dirtySegments: [Segment] = []
    /// Segments created since the last checkpoint capture (directory needs an fsync).
    var directoryDirty = false
}

/// Box for state that only the writer thread touches.
final class WriterOwned<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// One log: `partitions/<region>:<ispb>/` or the quarantine log.
final class Partition: Sendable {
    let name: String
    /// nil for the quarantine log.
    let key: PartitionKey?
    /// In-process number (idempotency locations refer to partitions by it).
    let number: UInt32
    let directory: String
    let io: any FileIO
    /// Bounds the store's open segment files (nil: unbounded).
    let descriptors: DescriptorCache?
    let state: Mutex<PartitionState>
    let writer: WriterOwned<PartitionWriterState>
    /// The newest durable records, for readers of the tail (`LogStoreConfig.tailCacheBytesMax`).
    let tail = Mutex(TailCache())

    init(name: String, key: PartitionKey?, number: UInt32, directory: String, io: any FileIO,
         descriptors: DescriptorCache?) {
        self.name = name
        self.key = key
        self.number = number
        self.directory = directory
        self.io = io
        self.descriptors = descriptors
        self.state = Mutex(PartitionState())
        self.writer = WriterOwned(PartitionWriterState())
    }

    var durableEnd: UInt64 { state.withLock { $0.durableEnd } }
    var failure: String? { state.withLock { $0.failure } }

    // MARK: Writing (writer thread)

    /// Writes encoded frames (contiguous in `frames`) to the active segment, rolling segments
    /// by size. `layout` lists each frame's (offset, byte count, timestamp) in order. Nothing
    /// becomes visible to readers until `publish()`.
    func writeFrames(_ frames: UnsafeRawBufferPointer, layout: [(offset: UInt64, bytes: Int, timestampMs: Int64)],
                     segmentBytesMax: Int, indexIntervalBytes: Int) throws(FileIOError) {
        var w = writer.value
        defer { writer.value = w }
        var runStart = 0
        var runBytes = 0
        var cursor = 0

        func flushRun(_ w: inout PartitionWriterState) throws(FileIOError) {
            guard runBytes > 0, let active = w.active else { return }
            let run = UnsafeRawBufferPointer(rebasing: frames[runStart..<(runStart + runBytes)])
            try active.withDescriptor { (fd) throws(FileIOError) in try io.writeAll(fd, run, at: w.activeBytes) }
            w.activeBytes += Int64(runBytes)
            w.progress[w.progress.count - 1].bytes = w.activeBytes
            runStart += runBytes
            runBytes = 0
        }

        if let active = w.active, w.progress.last?.segment !== active {
            w.progress.append(SegmentProgress(segment: active, bytes: w.activeBytes, endOffset: w.nextOffset, created: false))
            if !w.dirtySegments.contains(where: { $0 === active }) { w.dirtySegments.append(active) }
        }
        for frame in layout {
            precondition(frame.offset == w.nextOffset, "frames must continue the partition")
            if w.active == nil {
                try openSegment(&w, base: frame.offset)
            } else if w.activeBytes + Int64(runBytes + frame.bytes) > Int64(segmentBytesMax) && w.activeBytes + Int64(runBytes) > 0 {
                try flushRun(&w)
                w.progress[w.progress.count - 1].sealed = true
                try openSegment(&w, base: frame.offset)
            }
            let position = w.activeBytes + Int64(runBytes)
            if w.lastIndexedPosition.map({ position - $0 >= Int64(indexIntervalBytes) }) ?? true {
                let base = w.active!.base
                w.progress[w.progress.count - 1].newIndexEntries.append(
                    UInt64(UInt32(frame.offset - base)) << 32 | UInt64(UInt32(position)))
                w.lastIndexedPosition = position
            }
            runBytes += frame.bytes
            cursor += frame.bytes
            w.nextOffset = frame.offset + 1
            w.progress[w.progress.count - 1].endOffset = w.nextOffset
            w.progress[w.progress.count - 1].lastTimestampMs = frame.timestampMs
        }
        precondition(cursor == frames.count, "layout must describe all frames")
        try flushRun(&w)
    }

    private func openSegment(_ w: inout PartitionWriterState, base: UInt64) throws(FileIOError) {
        if w.active == nil { try io.makeDirectory(directory) }
        let fd = try io.open("\(directory)/\(Segment.logName(base))", create: true)
        do { try io.truncate(fd, to: 0) } catch { io.close(fd); throw error }
        let segment = Segment(base: base, directory: directory, io: io, cache: descriptors, descriptor: fd)
        if io.exists(segment.indexPath) { try io.remove(segment.indexPath) }
        w.active = segment
        w.activeBytes = 0
        w.lastIndexedPosition = nil
        w.progress.append(SegmentProgress(segment: segment, bytes: 0, endOffset: base, created: true))
        w.dirtySegments.append(segment)
        w.directoryDirty = true
    }

    /// Publishes the group's progress to readers: the group is durable.
    func publish() {
        var w = writer.value
        let progress = w.progress
        w.progress.removeAll(keepingCapacity: true)
        writer.value = w
        guard !progress.isEmpty else { return }
        state.withLock { s in
            for p in progress {
                if p.created {
                    precondition(s.segments.last.map { $0.sealed || $0.base < p.segment.base } ?? true)
                    if let last = s.segments.indices.last { s.segments[last].sealed = true }
                    s.segments.append(SegmentInfo(segment: p.segment, bytes: 0, endOffset: p.segment.base,
                                                  index: SparseIndex(), sealed: false, checkpointed: false))
                }
                let i = s.segments.count - 1
                precondition(s.segments[i].segment === p.segment, "progress must be for the last segment")
                s.segments[i].bytes = p.bytes
                s.segments[i].endOffset = p.endOffset
                s.segments[i].index?.append(contentsOf: p.newIndexEntries)
                if p.sealed { s.segments[i].sealed = true }
                if let ts = p.lastTimestampMs { s.segments[i].lastTimestampMs = ts }
                s.durableEnd = p.endOffset
            }
        }
    }

    /// Forgets the group's progress after a failure (nothing is published).
    func discardProgress(reason: String) {
        writer.value.progress.removeAll()
        state.withLock { $0.failure = $0.failure ?? reason }
    }
}
