/// The admission limits of one listener (docs/configuration.md, docs/tls.md "Admission").
public struct AdmissionPolicy: Sendable, Equatable {
    /// Open connections at most (`connections-max`).
    public var connectionsMax = 10_000
    /// Open connections from one address at most, authenticated or not.
    public var connectionsPerAddressMax = 1_000
    /// Connections from one address whose TLS handshake has not completed, at most.
    public var handshakesPerAddressMax = 128
    /// Share of `connectionsMax` that only connections with a completed mutual-TLS handshake may
    /// occupy: unauthenticated connections never hold more than the rest.
    public var establishedReservePercent = 10

    public init() {}

    /// Unauthenticated connections at most, table-wide (at least 1).
    public var unauthenticatedMax: Int {
        let percent = min(max(establishedReservePercent, 0), 100)
        return max(1, connectionsMax - connectionsMax * percent / 100)
    }
}

/// Which limit a refusal or a shed is due to; the `reason` label of the metrics.
public enum AdmissionLimit: String, Sendable, Equatable, CaseIterable {
    /// The table holds `connectionsMax` connections.
    case connectionsMax = "connections-max"
    /// Unauthenticated connections hold all of their share (`connectionsMax` minus the reserve).
    case unauthenticatedShare = "unauthenticated-share"
    /// The address holds `connectionsPerAddressMax` connections.
    case addressConnections = "address-connections"
    /// The address holds `handshakesPerAddressMax` unfinished handshakes.
    case addressHandshakes = "address-handshakes"
}

public enum AdmissionDecision: Sendable, Hashable {
    /// Take the new connection.
    case admit
    /// Take the new connection and reset the older, unauthenticated connection `shed` (already
    /// forgotten by the admission state: its `closed` is ignored).
    case admitShedding(shed: UInt64, limit: AdmissionLimit)
    /// Reset the new connection at accept.
    case refuse(AdmissionLimit)
}

/// Admission of connections to one listener: a pure state machine over connection ids, peer
/// addresses and loop turns, no sockets and no clock, driven by the server with `arrive`,
/// `received`, `authenticated` and `closed`.
///
/// A connection is *silent* from accept until its first byte, *handshaking* until its mutual-TLS
/// handshake completes, *established* after (plaintext listeners admit connections established).
/// Silent and handshaking connections are *unauthenticated*. Established connections are never
/// shed. The rules, in order:
///
/// 1. Address scope. A newcomer from an address that holds `connectionsPerAddressMax`
///    connections, or (unless established at once) `handshakesPerAddressMax` unauthenticated
///    ones, takes the place of that address's oldest silent connection accepted in an earlier
///    loop turn; if there is none, the newcomer is refused. An address's handshakes in progress
///    are not shed for its own newcomers, nor its connections not yet read.
/// 2. Table scope. A newcomer that would exceed `connectionsMax`, or (unless established at
///    once) the unauthenticated share (`unauthenticatedMax`), takes the place of an
///    unauthenticated connection of the *heaviest* address: the one holding the most
///    unauthenticated connections (of several, the one that reached that number first); its
///    oldest silent connection, else its oldest handshaking one (a stalled handshake). The
///    newcomer is refused when its own address is among the heaviest, and when established
///    connections fill the table.
///
/// Why: a legitimate client sends its ClientHello at once and completes its handshake in
/// milliseconds, so its address holds few unauthenticated connections and never the most while
/// a flood is on; whatever the flood's rate, it sheds its own connections, not a newcomer from
/// elsewhere. Within an address, the oldest silent connection is the least likely to be
/// legitimate, and one accepted in the current loop turn has not had a chance to be read yet.
public struct ConnectionAdmission: Sendable {
    public let policy: AdmissionPolicy

    public enum State: Sendable, Equatable { case silent, handshaking, established }

    private struct Entry: Sendable {
        let address: String
        let turn: UInt64
        var state: State
    }

    private struct AddressCounts: Sendable {
        var connections = 0
        /// Silent connections, in accept order.
        var silent = AgeQueue<UInt64>()
        /// Silent and handshaking connections, in accept order.
        var pending = AgeQueue<UInt64>()
        var unauthenticated: Int { pending.count }
    }

    private var entries: [UInt64: Entry] = [:]
    private var addresses: [String: AddressCounts] = [:]
    /// Addresses by their number of unauthenticated connections (> 0), in the order they
    /// reached it.
    private var byUnauthenticated: [Int: AgeQueue<String>] = [:]
    /// The largest key of `byUnauthenticated` with a member (0: none).
    private var heaviest = 0
    public private(set) var unauthenticatedCount = 0

    public init(policy: AdmissionPolicy) {
        self.policy = policy
    }

    /// Connections admitted and not closed or shed.
    public var count: Int { entries.count }
    /// Addresses with at least one connection.
    public var addressCount: Int { addresses.count }
    /// The most unauthenticated connections one address holds.
    public var heaviestAddressUnauthenticated: Int { heaviest }

    public func state(of id: UInt64) -> State? { entries[id]?.state }

    public func connections(from address: String) -> Int { addresses[address]?.connections ?? 0 }

    public func unauthenticated(from address: String) -> Int { addresses[address]?.unauthenticated ?? 0 }

    /// A connection was accepted from `address` (see `addressKey`) in loop turn `turn`.
    /// `established` is true on plaintext listeners. `id` must be new and increase with every
    /// call; `turn` must not decrease.
    public mutating func arrive(id: UInt64, address: String, turn: UInt64, established: Bool = false) -> AdmissionDecision {
        var shed: (UInt64, AdmissionLimit)?
        let here = addresses[address] ?? AddressCounts()
        let addressLimit: AdmissionLimit? =
            here.connections >= policy.connectionsPerAddressMax ? .addressConnections
            : (!established && here.unauthenticated >= policy.handshakesPerAddressMax) ? .addressHandshakes
            : nil
        if let addressLimit {
            var queue = here.silent
            guard let victim = queue.oldest(), entries[victim]!.turn < turn else { return .refuse(addressLimit) }
            forget(victim)
            shed = (victim, addressLimit)
        } else {
            let tableLimit: AdmissionLimit? =
                entries.count >= policy.connectionsMax ? .connectionsMax
                : (!established && unauthenticatedCount >= policy.unauthenticatedMax) ? .unauthenticatedShare
                : nil
            if let tableLimit {
                guard heaviest > 0, here.unauthenticated < heaviest,
                      let heavy = byUnauthenticated[heaviest]?.oldest() else { return .refuse(tableLimit) }
                // No silent connection: all its unauthenticated ones are handshaking.
                guard let victim = addresses[heavy]!.silent.oldest() ?? addresses[heavy]!.pending.oldest() else {
                    return .refuse(tableLimit)  // unreachable: a heaviest address holds one
                }
                forget(victim)
                shed = (victim, tableLimit)
            }
        }
        let state: State = established ? .established : .silent
        entries[id] = Entry(address: address, turn: turn, state: state)
        var counts = addresses[address] ?? AddressCounts()
        counts.connections += 1
        let before = counts.unauthenticated
        if !established {
            counts.silent.append(id)
            counts.pending.append(id)
        }
        addresses[address] = counts
        if !established { unauthenticatedChanged(address, from: before, to: before + 1) }
        if let (victim, limit) = shed { return .admitShedding(shed: victim, limit: limit) }
        return .admit
    }

    /// Bytes arrived on connection `id`: a silent connection is now handshaking.
    public mutating func received(id: UInt64) {
        guard var entry = entries[id], entry.state == .silent else { return }
        entry.state = .handshaking
        entries[id] = entry
        addresses[entry.address]!.silent.remove(id)
    }

    /// Connection `id` completed its mutual-TLS handshake.
    public mutating func authenticated(id: UInt64) {
        guard var entry = entries[id], entry.state != .established else { return }
        let before = addresses[entry.address]!.unauthenticated
        addresses[entry.address]!.silent.remove(id)
        addresses[entry.address]!.pending.remove(id)
        entry.state = .established
        entries[id] = entry
        unauthenticatedChanged(entry.address, from: before, to: before - 1)
    }

    /// Connection `id` closed (unknown or already shed ids are ignored).
    public mutating func closed(id: UInt64) {
        forget(id)
    }

    private mutating func forget(_ id: UInt64) {
        guard let entry = entries.removeValue(forKey: id), var counts = addresses[entry.address] else { return }
        counts.connections -= 1
        let before = counts.unauthenticated
        if entry.state != .established {
            counts.silent.remove(id)
            counts.pending.remove(id)
        }
        addresses[entry.address] = counts.connections > 0 ? counts : nil
        if entry.state != .established { unauthenticatedChanged(entry.address, from: before, to: before - 1) }
    }

    /// Moves `address` between the buckets of `byUnauthenticated` (counts change by one).
    private mutating func unauthenticatedChanged(_ address: String, from old: Int, to new: Int) {
        unauthenticatedCount += new - old
        if old > 0 {
            byUnauthenticated[old]!.remove(address)
            if byUnauthenticated[old]!.count == 0 { byUnauthenticated[old] = nil }
        }
        if new > 0 { byUnauthenticated[new, default: AgeQueue()].append(address) }
        if new > heaviest {
            heaviest = new
        } else if old == heaviest && byUnauthenticated[old] == nil {
            heaviest = new
        }
    }

    /// The counting key of a peer address as `TCPSocket.peerAddress` renders it ("1.2.3.4:5678",
    /// "[2001:db8::1]:5678"): the IPv4 address; an IPv4-mapped IPv6 address as IPv4; any other
    /// IPv6 address as its /64 prefix ("2001:db8:0:0::/64"), the block one host usually holds.
    /// Anything unparsable counts as itself without its port.
    public static func addressKey(_ peer: String) -> String {
        var host = Substring(peer)
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = host[host.index(after: host.startIndex)..<close]
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        if let percent = host.firstIndex(of: "%") { host = host[..<percent] }
        guard host.contains(":") else { return String(host) }
        let lower = host.lowercased()
        if lower.hasPrefix("::ffff:"), lower.contains(".") { return String(lower.dropFirst(7)) }
        guard let groups = ipv6Groups(lower) else { return lower }
        return groups[0..<4].map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
    }

    /// The eight 16-bit groups of a textual IPv6 address, nil if it is not one.
    static func ipv6Groups(_ text: String) -> [UInt16]? {
        func parse(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, piece) in pieces.enumerated() {
                if i == pieces.count - 1, piece.contains(".") {
                    let octets = piece.split(separator: ".", omittingEmptySubsequences: false).map { UInt8($0) }
                    guard octets.count == 4, octets.allSatisfy({ $0 != nil }) else { return nil }
                    out.append(UInt16(octets[0]!) << 8 | UInt16(octets[1]!))
                    out.append(UInt16(octets[2]!) << 8 | UInt16(octets[3]!))
                } else {
                    guard (1...4).contains(piece.count), let v = UInt16(piece, radix: 16) else { return nil }
                    out.append(v)
                }
            }
            return out
        }
        let halves = text.components(separatedBy: "::")
        switch halves.count {
        case 1:
            guard let all = parse(Substring(text)), all.count == 8 else { return nil }
            return all
        case 2:
            guard let head = parse(Substring(halves[0])), let tail = parse(Substring(halves[1])),
                  head.count + tail.count <= 7 else { return nil }
            return head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        default:
            return nil
        }
    }
}

/// Members in arrival order with removal from anywhere: removed members stay in the array
/// until they reach the head or the array is compacted (amortized O(1) per operation). A member
/// appended again after its removal counts from its new place.
struct AgeQueue<Element: Hashable & Sendable>: Sendable {
    private var items: [Element] = []
    private var head = 0
    /// Member → the sequence number of its live place (a member removed and appended again
    /// has a stale place too).
    private var members: [Element: UInt64] = [:]
    private var generations: [UInt64] = []
    private var sequence: UInt64 = 0

    var count: Int { members.count }

    mutating func append(_ e: Element) {
        sequence &+= 1
        members[e] = sequence
        items.append(e)
        generations.append(sequence)
    }

    mutating func remove(_ e: Element) {
        guard members.removeValue(forKey: e) != nil else { return }
        if items.count - head > 2 * members.count + 32 { compact() }
    }

    private func isLive(_ i: Int) -> Bool { members[items[i]] == generations[i] }

    private mutating func compact() {
        var keptItems: [Element] = []
        var keptGenerations: [UInt64] = []
        for i in head..<items.count where isLive(i) {
            keptItems.append(items[i])
            keptGenerations.append(generations[i])
        }
        items = keptItems
        generations = keptGenerations
        head = 0
    }

    /// The oldest member, if any.
    mutating func oldest() -> Element? {
        while head < items.count && !isLive(head) { head += 1 }
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            generations.removeAll(keepingCapacity: true)
            head = 0
            return nil
        }
        return items[head]
    }
}
