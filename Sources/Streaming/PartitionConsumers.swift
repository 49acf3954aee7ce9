/// How a pointer relates to its stream's state (DESIGN.md §1 "Pull semantics").
public enum PointerResolution: Sendable, Equatable {
    /// The newest pointer: following it acknowledges the stream's batch, then delivers the next.
    case current
    /// The pointer before it: a retry after a lost response; the same batch is delivered again.
    case previous
    /// An older pointer of a live stream: its batch was acknowledged long ago.
    case stale
    /// No such stream on this node (never existed, or forgotten after its tombstone expired).
    case unknown
    /// The stream was closed by DELETE or expired after being abandoned.
    case closed
}

/// One pull stream of an ISPB.
public struct StreamState: Sendable, Equatable {
    public let id: UInt64
    /// `PI-Pull-Next` carries this sequence; following it acknowledges `batch`.
    public internal(set) var sequence: UInt32
    /// Offsets delivered with the current pointer, not yet acknowledged, in delivery order.
    public internal(set) var batch: [UInt64]
    public internal(set) var lastActivityMs: UInt64
    /// A request of this stream is in progress (ack in flight or a long poll): never expires.
    public internal(set) var busy: Bool
}

/// The consumers of one ISPB's partition on this node: competing streams leasing messages by
/// offset. Pure state, no I/O and no clock of its own: the pull service applies the effects
/// (durable acknowledgements, reads, Redis) and passes the time in.
///
/// Invariants (checked by the model test):
/// - an offset is leased to at most one stream at a time;
/// - an acknowledged offset is never leased again;
/// - fresh offsets are leased in log order; offsets of an abandoned or closed-without-ack batch
///   go back to the front (`returned`) and are leased before fresh ones, lowest first.
public final class PartitionConsumers {
    public let ispb: String
    public let slotsMax: Int
    /// Tombstones of closed streams kept per ISPB (for 410), oldest dropped first.
    public static let tombstonesMax = 256

    public private(set) var streams: [UInt64: StreamState] = [:]
    private var tombstones: [UInt64: UInt64] = [:]   // stream -> closedAtMs
    private var tombstoneOrder: [UInt64] = []

    /// Everything below is in the log (durable).
    public private(set) var endOffset: UInt64
    /// Next offset never leased since this node opened the partition.
    private var scanOffset: UInt64
    /// Returned offsets, ascending: leased before fresh ones.
    private var returned: [UInt64] = []
    private var leased: [UInt64: UInt64] = [:]
    /// Every offset below is acknowledged.
    public private(set) var ackFloor: UInt64
    private var ackedAbove: Set<UInt64>

    public init(ispb: String, slotsMax: Int, ackFloor: UInt64, ackedAbove: Set<UInt64>, endOffset: UInt64) {
        precondition(ackFloor <= endOffset)
        self.ispb = ispb
        self.slotsMax = slotsMax
        self.ackFloor = ackFloor
        self.ackedAbove = ackedAbove.filter { $0 >= ackFloor }
        self.endOffset = endOffset
        scanOffset = ackFloor
        advanceFloor()
    }

    // MARK: queue

    /// The log grew: offsets below `endOffset` are durable and deliverable.
    public func appended(endOffset: UInt64) {
        if endOffset > self.endOffset { self.endOffset = endOffset }
    }

    /// Whether a lease now would deliver anything.
    public var hasAvailable: Bool {
        if !returned.isEmpty { return true }
        var o = scanOffset
        while o < endOffset {
            if !isAcknowledged(o) && leased[o] == nil { return true }
            o += 1
        }
        return false
    }

    /// Messages stored and not yet acknowledged (leased or not).
    public var backlog: UInt64 {
        endOffset - ackFloor - UInt64(ackedAbove.count)
    }

    public var leasedCount: Int { leased.count }

    public func isLeased(_ offset: UInt64) -> Bool { leased[offset] != nil }
    public func isAcknowledged(_ offset: UInt64) -> Bool { offset < ackFloor || ackedAbove.contains(offset) }

    private func takeAvailable(max: Int, for stream: UInt64) -> [UInt64] {
        var out: [UInt64] = []
        out.reserveCapacity(max)
        while out.count < max && !returned.isEmpty {
            let o = returned.removeFirst()
            if isAcknowledged(o) || leased[o] != nil { continue }
            out.append(o)
        }
        while out.count < max && scanOffset < endOffset {
            let o = scanOffset
            scanOffset += 1
            if isAcknowledged(o) || leased[o] != nil { continue }
            out.append(o)
        }
        for o in out { leased[o] = stream }
        return out
    }

    private func giveBack(_ offsets: [UInt64], from stream: UInt64) {
        var changed = false
        for o in offsets where leased[o] == stream {
            leased[o] = nil
            if !isAcknowledged(o) {
                returned.append(o)
                changed = true
            }
        }
        if changed { returned.sort() }
    }

    private func markAcknowledged(_ offsets: [UInt64]) {
        for o in offsets where o >= ackFloor {
            leased[o] = nil
            ackedAbove.insert(o)
        }
        advanceFloor()
    }

    private func advanceFloor() {
        while ackedAbove.remove(ackFloor) != nil { ackFloor += 1 }
        if scanOffset < ackFloor { scanOffset = ackFloor }
    }

    // MARK: streams

    /// Opens a stream if this node's slot count allows; false when all local slots are taken.
    public func open(id: UInt64, nowMs: UInt64) -> Bool {
        precondition(streams[id] == nil && tombstones[id] == nil, "stream ids are unique")
        guard streams.count < slotsMax else { return false }
        streams[id] = StreamState(id: id, sequence: 0, batch: [], lastActivityMs: nowMs, busy: false)
        return true
    }

    public func stream(_ id: UInt64) -> StreamState? { streams[id] }

    public func resolve(id: UInt64, sequence: UInt32) -> PointerResolution {
        guard let s = streams[id] else { return tombstones[id] != nil ? .closed : .unknown }
        if sequence == s.sequence { return .current }
        if s.sequence > 0 && sequence == s.sequence - 1 { return .previous }
        return .stale
    }

    /// The batch that following the current pointer acknowledges.
    public func batchToAcknowledge(id: UInt64) -> [UInt64] { streams[id]?.batch ?? [] }

    /// The acknowledgement of `offsets` is durable. Their leases end and they are never leased
    /// again; the stream's batch is cleared if it was this one.
    public func acknowledged(id: UInt64, offsets: [UInt64]) {
        markAcknowledged(offsets)
        if var s = streams[id], s.batch == offsets {
            s.batch = []
            streams[id] = s
        }
    }

    /// Leases up to `max` messages to the stream as its next batch and advances its pointer.
    /// The previous batch must have been acknowledged (it is empty). May lease nothing.
    @discardableResult
    public func leaseNext(id: UInt64, max: Int, nowMs: UInt64) -> [UInt64] {
        guard var s = streams[id] else { return [] }
        precondition(s.batch.isEmpty, "the current batch must be acknowledged before the next is leased")
        let batch = takeAvailable(max: max, for: id)
        s.batch = batch
        s.sequence &+= 1
        s.lastActivityMs = nowMs
        streams[id] = s
        return batch
    }

    public func setBusy(id: UInt64, _ busy: Bool, nowMs: UInt64) {
        guard var s = streams[id] else { return }
        s.busy = busy
        s.lastActivityMs = nowMs
        streams[id] = s
    }

    /// Closes a stream (DELETE, or expiry). Its unacknowledged batch returns to the front of the
    /// queue. Returns whether anything was returned.
    @discardableResult
    public func close(id: UInt64, nowMs: UInt64) -> Bool {
        guard let s = streams.removeValue(forKey: id) else { return false }
        giveBack(s.batch, from: id)
        tombstones[id] = nowMs
        tombstoneOrder.append(id)
        if tombstoneOrder.count > Self.tombstonesMax {
            let old = tombstoneOrder.removeFirst()
            tombstones[old] = nil
        }
        return !s.batch.isEmpty
    }

    /// Streams idle for `idleMs` and not in a request are abandoned: closed, their batches
    /// returned to the front. Returns the expired stream ids.
    public func expire(nowMs: UInt64, idleMs: UInt64) -> [UInt64] {
        let expired = streams.values.filter { !$0.busy && nowMs >= $0.lastActivityMs &+ idleMs }.map(\.id)
        for id in expired.sorted() { close(id: id, nowMs: nowMs) }
        return expired
    }

    /// Forgets tombstones older than `ttlMs`.
    public func pruneTombstones(nowMs: UInt64, ttlMs: UInt64) {
        while let first = tombstoneOrder.first, let at = tombstones[first], nowMs >= at &+ ttlMs {
            tombstoneOrder.removeFirst()
            tombstones[first] = nil
        }
    }

    /// Restores a stream from durable or cached state after a restart: the batch stays leased
    /// to it so that its client's pointer keeps working. Offsets already acknowledged are dropped.
    public func restore(id: UInt64, sequence: UInt32, batch: [UInt64], nowMs: UInt64) -> Bool {
        guard streams[id] == nil, streams.count < slotsMax else { return false }
        let live = batch.filter { !isAcknowledged($0) && leased[$0] == nil && $0 < endOffset }
        for o in live {
            leased[o] = id
            returned.removeAll { $0 == o }
        }
        streams[id] = StreamState(id: id, sequence: sequence, batch: live, lastActivityMs: nowMs, busy: false)
        return true
    }
}
