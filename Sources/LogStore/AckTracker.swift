/// Consumer state of one partition (pure logic): acknowledged offsets, possibly out of order
/// across concurrent streams, folded into a floor; leases in flight by stream.
struct AckTracker: Sendable, Equatable {
    private(set) var floor: UInt64
    private(set) var above: Set<UInt64>
    private(set) var leases: [UInt64: Lease]

    init(_ state: ConsumerState = ConsumerState()) {
        floor = state.ackFloor
        above = Set(state.ackedAboveFloor)
        leases = Dictionary(state.leases.map { ($0.stream, $0) }, uniquingKeysWith: { _, last in last })
        advanceFloor()
    }

    /// Idempotent: acknowledging an offset twice changes nothing.
    mutating func acknowledge<S: Sequence<UInt64>>(_ offsets: S) {
        for offset in offsets where offset >= floor { above.insert(offset) }
        advanceFloor()
    }

    /// Replaces the stream's lease.
    mutating func recordLease(_ lease: Lease) { leases[lease.stream] = lease }

    mutating func releaseLease(stream: UInt64) { leases[stream] = nil }

    private mutating func advanceFloor() {
        while above.remove(floor) != nil { floor += 1 }
        assert(above.allSatisfy { $0 > floor })
    }

    var state: ConsumerState {
        ConsumerState(ackFloor: floor, ackedAboveFloor: above.sorted(),
                      leases: leases.values.sorted { $0.stream < $1.stream })
    }
}
