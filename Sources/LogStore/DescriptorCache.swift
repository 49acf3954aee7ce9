import CoreMetrics
import Synchronization

/// Bounds how many segment files the store keeps open. Every partition a sender can name gets
/// a directory and a segment; without a bound, invented recipients would hold one descriptor
/// each until the process hits its descriptor limit, and then a legitimate partition's next
/// segment could not be opened.
///
/// Segments register here when their descriptor opens. Beyond `capacity`, the least recently
/// used segments that no one is using at that moment (`Segment.withDescriptor` pins) close
/// theirs; the next use opens the file again. Descriptors in use cannot close, so the count may
/// exceed `capacity` by the segments in use at that moment (one per thread at most) until the
/// last of them is let go, which evicts again. Closing a descriptor loses no written data: the
/// data is in the page cache, and an fdatasync through a later descriptor of the same file
/// makes it durable (on Linux a writeback error not yet seen through any descriptor is reported
/// to the next fsync of the file too).
///
/// Locking: a segment's lock may be held while taking the cache's (register, forget), never the
/// other way round; segments found through the cache are used and released only after its lock
/// is dropped (a segment's deinit calls `forget`).
final class DescriptorCache: Sendable {
    let capacity: Int
    private struct Entry {
        weak var segment: Segment?
    }
    private struct State {
        var open: [ObjectIdentifier: Entry] = [:]
        var evicted: UInt64 = 0
    }
    private let state = Mutex(State())
    private let clock = Atomic<UInt64>(0)
    /// `state.open.count`, readable without the lock (checked on every unpin).
    private let openNow = Atomic<Int>(0)
    private let evictions: Counter?

    /// `capacity` is at least 1 (`LogStoreConfig.validate` checks the configured value).
    init(capacity: Int, evictions: Counter? = nil) {
        precondition(capacity >= 1, "descriptor cache capacity must be at least 1")
        self.capacity = capacity
        self.evictions = evictions
    }

    /// Descriptors open now.
    var openCount: Int { state.withLock { $0.open.count } }
    /// Descriptors closed to stay within capacity, since start.
    var evictedCount: UInt64 { state.withLock { $0.evicted } }

    /// A use-order tick (monotonic across threads).
    func tick() -> UInt64 { clock.wrappingAdd(1, ordering: .relaxed).newValue }

    /// `segment` opened its descriptor (called under the segment's lock, so that a
    /// concurrent close cannot unregister it after the fact). True when over capacity: the
    /// caller then calls `evict(sparing:)` once it holds no segment lock.
    func register(_ segment: Segment) -> Bool {
        state.withLock { s in
            s.open[ObjectIdentifier(segment)] = Entry(segment: segment)
            openNow.store(s.open.count, ordering: .relaxed)
            return s.open.count > capacity
        }
    }

    /// Closes the least recently used idle descriptors until the cache is within capacity
    /// (or nothing idle is left), never `sparing`'s.
    /// More descriptors open than the capacity (some were in use when the last one opened).
    var isOverCapacity: Bool { openNow.load(ordering: .relaxed) > capacity }

    func evict(sparing: Segment?) {
        let candidates: [Segment] = state.withLock { s in
            s.open.count > capacity ? s.open.values.compactMap(\.segment) : []
        }
        var excess = candidates.count - capacity
        guard excess > 0 else { return }
        for victim in candidates.sorted(by: { $0.lastUse < $1.lastUse }) where victim !== sparing {
            if victim.closeIfIdle() { excess -= 1 }
            if excess == 0 { break }
        }
    }

    /// `segment` closed its descriptor (evicted or deinitialized).
    func forget(_ segment: Segment, evicted: Bool) {
        state.withLock { s in
            s.open[ObjectIdentifier(segment)] = nil
            openNow.store(s.open.count, ordering: .relaxed)
            if evicted { s.evicted += 1 }
        }
        if evicted { evictions?.increment() }
    }
}
