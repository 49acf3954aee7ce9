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

/// What `leaseNext` did for a request that followed pointer `sequence`.
public enum LeaseOutcome: Sendable, Equatable {
    /// A new batch (never empty) was leased; the stream's sequence advanced by one.
    case leased([UInt64])
    /// Nothing can be leased now: hold the request (long poll) or answer 204 with the same pointer.
    case nothingAvailable
    /// The stream already moved past `sequence` (a concurrent request of the same pointer got
    /// there first) or still holds an unacknowledged batch: answer its current batch and
    /// pointer, as for a retry of the previous pointer.
    case answerCurrent
    /// The stream was closed meanwhile.
    case gone
}

/// One pull stream of an ISPB.
public struct StreamState: Sendable, Equatable {
    public let id: UInt64
    /// `PI-Pull-Next` carries this sequence; following it acknowledges `batch`.
    public internal(set) var sequence: UInt32
    /// Offsets delivered with the current pointer, not yet acknowledged, in delivery order.
    public internal(set) var batch: [UInt64]
    public internal(set) var lastActivityMs: UInt64
    /// Requests of this stream in progress (acknowledgement in flight, long poll). A stream
    /// with a request in progress never expires.
    public internal(set) var requestsInFlight: Int

    public var isBusy: Bool { requestsInFlight > 0 }
}

/// The consumers of one ISPB's partition on this node: competing streams leasing messages by
/// offset. Pure state, no I/O and no clock of its own: the pull service applies the effects
/// (durable acknowledgements, reads, Redis) and passes the time in.
///
/// Invariants (checked by the model test):
/// - an offset is leased to at most one stream at a time, and at most once in a batch;
/// - an acknowledged offset is never leased again;
/// - fresh offsets are leased in log order; offsets of an abandoned or closed-without-ack batch
///   go back to the front (`returned`) and are leased before fresh ones, lowest first.
///
/// Cost per request: O(batch) dictionary and set operations; `hasAvailable` is amortized O(1)
/// (the scan position only moves forward, past offsets that are leased or acknowledged).
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
    /// Next offset never leased since this node opened the partition (offsets below it that are
    /// neither leased nor acknowledged are in `returned`).
    private var scanOffset: UInt64
    /// Returned offsets, ascending: leased before fresh ones. May hold offsets since leased
    /// again or acknowledged; those are skipped (and dropped) when met.
    private var returned: [UInt64] = []
    private var leased: [UInt64: UInt64] = [:]
    /// Every offset below is acknowledged.
    public private(set) var ackFloor: UInt64
    private var ackedAbove: Set<UInt64>

    public init(ispb: String, slotsMax: Int, ackFloor: UInt64, ackedAbove: Set<UInt64>, endOffset: UInt64) {
        precondition(ackFloor <= endOffset)
        precondition(slotsMax >= 1)
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
        dropUnavailableReturned()
        if !returned.isEmpty { return true }
        skipUnavailableScan()
        return scanOffset < endOffset
    }

    /// Messages stored and not yet acknowledged (leased or not).
    public var backlog: UInt64 {
        endOffset - ackFloor - UInt64(ackedAbove.count)
    }

    public var leasedCount: Int { leased.count }

    /// Offsets leased again after they were returned (abandoned or closed unacknowledged),
    /// since this partition was opened: redeliveries to another stream.
    public private(set) var leasedAgainCount: UInt64 = 0

    public func isLeased(_ offset: UInt64) -> Bool { leased[offset] != nil }
    public func isAcknowledged(_ offset: UInt64) -> Bool { offset < ackFloor || ackedAbove.contains(offset) }

    private func isAvailable(_ o: UInt64) -> Bool { !isAcknowledged(o) && leased[o] == nil }

    private func dropUnavailableReturned() {
        var i = 0
        while i < returned.count && !isAvailable(returned[i]) { i += 1 }
        if i > 0 { returned.removeFirst(i) }
    }

    private func skipUnavailableScan() {
        while scanOffset < endOffset && !isAvailable(scanOffset) { scanOffset += 1 }
    }

    private func takeAvailable(max: Int, for stream: UInt64) -> [UInt64] {
        var out: [UInt64] = []
        out.reserveCapacity(max)
        var i = 0
        while out.count < max && i < returned.count {
            let o = returned[i]
            i += 1
            guard isAvailable(o) else { continue }
            leased[o] = stream   // at once: the scan below may meet the same offset
            out.append(o)
        }
        returned.removeFirst(i)
        leasedAgainCount += UInt64(out.count)
        while out.count < max && scanOffset < endOffset {
            let o = scanOffset
            scanOffset += 1
            guard isAvailable(o) else { continue }
            leased[o] = stream
            out.append(o)
        }
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

    /// Returns how many of `offsets` were not acknowledged before.
    private func markAcknowledged(_ offsets: [UInt64]) -> Int {
        var fresh = 0
        for o in offsets where o >= ackFloor {
            leased[o] = nil
            if o == ackFloor {
                ackFloor += 1   // the common case (one consumer, in order): no set traffic
                fresh += 1
            } else if ackedAbove.insert(o).inserted {
                fresh += 1
            }
        }
        advanceFloor()
        return fresh
    }

    private func advanceFloor() {
        if !ackedAbove.isEmpty {
            while ackedAbove.remove(ackFloor) != nil { ackFloor += 1 }
        }
        if scanOffset < ackFloor { scanOffset = ackFloor }
    }

    // MARK: streams

    /// Opens a stream if this node's slot count allows; false when all local slots are taken.
    public func open(id: UInt64, nowMs: UInt64) -> Bool {
        precondition(streams[id] == nil && tombstones[id] == nil, "stream ids are unique")
        guard streams.count < slotsMax else { return false }
        streams[id] = StreamState(id: id, sequence: 0, batch: [], lastActivityMs: nowMs, requestsInFlight: 0)
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
    /// again; the stream's batch is cleared if it is this one. Idempotent (a second request of
    /// the same pointer acknowledges the same batch again). Returns how many offsets were not
    /// acknowledged before.
    @discardableResult
    public func acknowledged(id: UInt64, offsets: [UInt64]) -> Int {
        let fresh = markAcknowledged(offsets)
        if var s = streams[id], !s.batch.isEmpty, s.batch == offsets {
            s.batch = []
            streams[id] = s
        }
        return fresh
    }

    /// For a request that followed pointer `sequence` (and whose acknowledgement, if any, is
    /// durable): leases up to `max` messages as the stream's next batch and advances its
    /// pointer, unless the stream moved on meanwhile or nothing is available.
    public func leaseNext(id: UInt64, after sequence: UInt32, max: Int, nowMs: UInt64) -> LeaseOutcome {
        precondition(max >= 1)
        guard var s = streams[id] else { return .gone }
        s.lastActivityMs = nowMs
        streams[id] = s
        guard s.sequence == sequence, s.batch.isEmpty else { return .answerCurrent }
        guard hasAvailable else { return .nothingAvailable }
        let batch = takeAvailable(max: max, for: id)
        assert(!batch.isEmpty, "hasAvailable promised a message")
        s.batch = batch
        s.sequence &+= 1
        streams[id] = s
        return .leased(batch)
    }

    /// A request of the stream starts (it must not expire while the request waits).
    public func beginRequest(id: UInt64, nowMs: UInt64) {
        guard var s = streams[id] else { return }
        s.requestsInFlight += 1
        s.lastActivityMs = nowMs
        streams[id] = s
    }

    /// A request begun with `beginRequest` ended (answered or cancelled); the idle time counts
    /// from now.
    public func endRequest(id: UInt64, nowMs: UInt64) {
        guard var s = streams[id] else { return }
        precondition(s.requestsInFlight > 0, "endRequest without beginRequest")
        s.requestsInFlight -= 1
        s.lastActivityMs = nowMs
        streams[id] = s
    }

    /// Activity without a request in progress (a retry answered at once): slides the lease.
    public func touch(id: UInt64, nowMs: UInt64) {
        guard var s = streams[id] else { return }
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
        return s.batch.contains { !isAcknowledged($0) }
    }

    /// Streams idle for `idleMs` and without a request in progress are abandoned: closed, their
    /// batches returned to the front. Returns the expired stream ids, ascending.
    public func expire(nowMs: UInt64, idleMs: UInt64) -> [UInt64] {
        let expired = streams.values.filter { !$0.isBusy && nowMs >= $0.lastActivityMs &+ idleMs }.map(\.id).sorted()
        for id in expired { close(id: id, nowMs: nowMs) }
        return expired
    }

    /// The earliest time a stream without a request in progress expires, if any.
    public func earliestExpiryMs(idleMs: UInt64) -> UInt64? {
        streams.values.lazy.filter { !$0.isBusy }.map { $0.lastActivityMs &+ idleMs }.min()
    }

    /// Forgets tombstones older than `ttlMs`.
    public func pruneTombstones(nowMs: UInt64, ttlMs: UInt64) {
        var n = 0
        while n < tombstoneOrder.count, let at = tombstones[tombstoneOrder[n]], nowMs >= at &+ ttlMs {
            tombstones[tombstoneOrder[n]] = nil
            n += 1
        }
        if n > 0 { tombstoneOrder.removeFirst(n) }
    }

    /// Restores a stream from durable or cached state after a restart (or from another node's
    /// cursor): the batch stays leased to it so that its client's pointer keeps working.
    /// Offsets already acknowledged, leased to another stream or not in the log are dropped.
    /// False (nothing restored) when the stream is live or closed here, or every slot is taken.
    public func restore(id: UInt64, sequence: UInt32, batch: [UInt64], nowMs: UInt64) -> Bool {
        guard streams[id] == nil, tombstones[id] == nil, streams.count < slotsMax else { return false }
        var live: [UInt64] = []
        for o in batch where o < endOffset && isAvailable(o) && !live.contains(o) {
            leased[o] = id
            live.append(o)
        }
        streams[id] = StreamState(id: id, sequence: sequence, batch: live, lastActivityMs: nowMs, requestsInFlight: 0)
        return true
    }
}
