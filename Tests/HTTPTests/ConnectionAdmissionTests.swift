import TestSupport
import Foundation
@testable import HTTPServer
import XCTest

/// The admission state machine: connection ids and addresses in, decisions out; no sockets.
final class ConnectionAdmissionTests: XCTestCase {
    func policy(max: Int = 100, perAddress: Int = 1000, handshakes: Int = 1000, reserve: Int = 0) -> AdmissionPolicy {
        var p = AdmissionPolicy()
        p.connectionsMax = max
        p.connectionsPerAddressMax = perAddress
        p.handshakesPerAddressMax = handshakes
        p.establishedReservePercent = reserve
        return p
    }

    /// Ids handed out in order, like the server's.
    struct Driver {
        var admission: ConnectionAdmission
        var next: UInt64 = 0
        init(_ p: AdmissionPolicy) { admission = ConnectionAdmission(policy: p) }
        /// Every arrival in a loop turn of its own unless `sameTurn`.
        var turn: UInt64 = 0
        mutating func arrive(_ address: String, established: Bool = false, sameTurn: Bool = false) -> (UInt64, AdmissionDecision) {
            next += 1
            if !sameTurn { turn += 1 }
            return (next, admission.arrive(id: next, address: address, turn: turn, established: established))
        }
        /// A connection that completes its handshake.
        mutating func authenticated(_ address: String) -> UInt64 {
            let (id, d) = arrive(address)
            XCTAssertEqual(d, .admit)
            admission.received(id: id)
            admission.authenticated(id: id)
            return id
        }
    }

    func testDefaultsAreTheDocumentedOnes() {
        let p = AdmissionPolicy()
        XCTAssertEqual(p.connectionsMax, 10_000)
        XCTAssertEqual(p.connectionsPerAddressMax, 1_000)
        XCTAssertEqual(p.handshakesPerAddressMax, 128)
        XCTAssertEqual(p.establishedReservePercent, 10)
        XCTAssertEqual(p.unauthenticatedMax, 9_000)
    }

    func testUnauthenticatedShareIsAtLeastOne() {
        XCTAssertEqual(policy(max: 1, reserve: 90).unauthenticatedMax, 1)
        XCTAssertEqual(policy(max: 10, reserve: 90).unauthenticatedMax, 1)
        XCTAssertEqual(policy(max: 10, reserve: 0).unauthenticatedMax, 10)
        XCTAssertEqual(policy(max: 10, reserve: 500).unauthenticatedMax, 1, "out-of-range percent is clamped")
    }

    func testStatesAndCounts() {
        var d = Driver(policy())
        let (a, _) = d.arrive("10.0.0.1")
        XCTAssertEqual(d.admission.state(of: a), .silent)
        d.admission.received(id: a)
        XCTAssertEqual(d.admission.state(of: a), .handshaking)
        XCTAssertEqual(d.admission.unauthenticated(from: "10.0.0.1"), 1)
        d.admission.authenticated(id: a)
        XCTAssertEqual(d.admission.state(of: a), .established)
        XCTAssertEqual(d.admission.unauthenticated(from: "10.0.0.1"), 0)
        XCTAssertEqual(d.admission.connections(from: "10.0.0.1"), 1)
        let (p, _) = d.arrive("10.0.0.2", established: true)
        XCTAssertEqual(d.admission.state(of: p), .established, "plaintext listeners admit established")
        XCTAssertEqual(d.admission.count, 2)
        XCTAssertEqual(d.admission.unauthenticatedCount, 0)
        d.admission.closed(id: a)
        d.admission.closed(id: a)  // twice: ignored
        d.admission.closed(id: 999)  // unknown: ignored
        d.admission.received(id: 999)
        d.admission.authenticated(id: 999)
        XCTAssertEqual(d.admission.count, 1)
        XCTAssertEqual(d.admission.addressCount, 1, "an address without connections is forgotten")
    }

    // Rule 1, handshakes per address: the address's oldest silent connection makes room.
    func testAddressHandshakeLimitShedsThatAddressesOldestSilent() {
        var d = Driver(policy(handshakes: 3))
        let (a1, _) = d.arrive("10.0.0.1")
        let (a2, _) = d.arrive("10.0.0.1")
        let (a3, _) = d.arrive("10.0.0.1")
        let (other, _) = d.arrive("10.0.0.9")
        d.admission.received(id: a1)  // a1 is handshaking: not a victim while silent ones exist
        let (a4, d4) = d.arrive("10.0.0.1")
        XCTAssertEqual(d4, .admitShedding(shed: a2, limit: .addressHandshakes))
        XCTAssertNil(d.admission.state(of: a2))
        let (_, d5) = d.arrive("10.0.0.1")
        XCTAssertEqual(d5, .admitShedding(shed: a3, limit: .addressHandshakes))
        XCTAssertEqual(d.admission.unauthenticated(from: "10.0.0.1"), 3)
        XCTAssertEqual(d.admission.state(of: other), .silent, "another address is never shed by rule 1")
        d.admission.closed(id: a2)  // the shed connection's close arrives later: ignored
        XCTAssertEqual(d.admission.connections(from: "10.0.0.1"), 3)
        _ = a4
    }

    func testAddressHandshakeLimitRefusesWhenAllAreHandshaking() {
        var d = Driver(policy(handshakes: 2))
        let (a1, _) = d.arrive("10.0.0.1")
        let (a2, _) = d.arrive("10.0.0.1")
        d.admission.received(id: a1)
        d.admission.received(id: a2)
        let (_, d3) = d.arrive("10.0.0.1")
        XCTAssertEqual(d3, .refuse(.addressHandshakes), "handshakes in progress keep their place")
        XCTAssertEqual(d.admission.connections(from: "10.0.0.1"), 2)
        d.admission.authenticated(id: a1)
        let (_, d4) = d.arrive("10.0.0.1")
        XCTAssertEqual(d4, .admit, "a completed handshake frees a handshake place")
    }

    func testEstablishedIdentityIsNeverShedByItsOwnAddressFlood() {
        var d = Driver(policy(perAddress: 5, handshakes: 2))
        let est = d.authenticated("10.0.0.1")
        for _ in 0..<1000 {
            let (_, decision) = d.arrive("10.0.0.1")
            if case .admitShedding(let shed, _) = decision { XCTAssertNotEqual(shed, est) }
        }
        XCTAssertEqual(d.admission.state(of: est), .established)
        XCTAssertEqual(d.admission.unauthenticated(from: "10.0.0.1"), 2)
        XCTAssertEqual(d.admission.count, 3)
    }

    // Rule 1, connections per address: counts established ones; sheds silent ones, else refuses.
    func testAddressConnectionLimit() {
        var d = Driver(policy(perAddress: 3))
        let e1 = d.authenticated("10.0.0.1")
        let e2 = d.authenticated("10.0.0.1")
        let (s, _) = d.arrive("10.0.0.1")
        let (_, d4) = d.arrive("10.0.0.1")
        XCTAssertEqual(d4, .admitShedding(shed: s, limit: .addressConnections))
        XCTAssertEqual(d.admission.connections(from: "10.0.0.1"), 3)
        let (n, _) = (d.next, ())
        d.admission.received(id: n)
        d.admission.authenticated(id: n)
        let (_, d5) = d.arrive("10.0.0.1")
        XCTAssertEqual(d5, .refuse(.addressConnections), "only established connections: refused")
        let (_, d6) = d.arrive("10.0.0.1", established: true)
        XCTAssertEqual(d6, .refuse(.addressConnections), "plaintext listeners too")
        let (_, d7) = d.arrive("10.0.0.2")
        XCTAssertEqual(d7, .admit, "other addresses are not affected")
        XCTAssertEqual([e1, e2].map { d.admission.state(of: $0) }, [.established, .established])
    }

    // Rule 2, unauthenticated share: the heaviest address gives up its oldest silent connection,
    // else its oldest handshaking one.
    func testUnauthenticatedShareShedsFromTheHeaviestAddress() {
        var d = Driver(policy(max: 10, reserve: 50))  // 5 unauthenticated at most
        let (b1, _) = d.arrive("10.0.0.2")
        let (a1, _) = d.arrive("10.0.0.1")
        let (a2, _) = d.arrive("10.0.0.1")
        let (a3, _) = d.arrive("10.0.0.1")
        let (c1, _) = d.arrive("10.0.0.3")
        d.admission.received(id: a1)  // handshaking: after the address's silent ones
        XCTAssertEqual(d.admission.heaviestAddressUnauthenticated, 3)
        let (_, r1) = d.arrive("10.0.0.4")
        XCTAssertEqual(r1, .admitShedding(shed: a2, limit: .unauthenticatedShare), "older b1 and c1 are elsewhere")
        let (_, r2) = d.arrive("10.0.0.5")
        XCTAssertEqual(r2, .admitShedding(shed: a3, limit: .unauthenticatedShare))
        // 10.0.0.1 now holds one (handshaking), like every other address: of the addresses
        // holding one, the first to reach that number (10.0.0.2) gives up its connection.
        let (_, r3) = d.arrive("10.0.0.6")
        XCTAssertEqual(r3, .admitShedding(shed: b1, limit: .unauthenticatedShare))
        XCTAssertEqual(d.admission.unauthenticatedCount, 5)
        XCTAssertEqual(d.admission.count, 5)
        XCTAssertEqual(d.admission.state(of: c1), .silent)
    }

    func testNewcomerFromTheHeaviestAddressIsRefused() {
        var d = Driver(policy(max: 10, reserve: 70))  // 3 unauthenticated at most
        _ = d.arrive("10.0.0.1")
        _ = d.arrive("10.0.0.1")
        _ = d.arrive("10.0.0.2")
        let (_, r) = d.arrive("10.0.0.1")
        XCTAssertEqual(r, .refuse(.unauthenticatedShare), "it would only shed its own kind")
        let (_, r2) = d.arrive("10.0.0.2")
        XCTAssertEqual(r2, .admitShedding(shed: 1, limit: .unauthenticatedShare))
        let (_, r3) = d.arrive("10.0.0.2")
        XCTAssertEqual(r3, .refuse(.unauthenticatedShare), "now 10.0.0.2 is the heaviest")
    }

    func testReserveIsKeptForEstablishedConnections() {
        var d = Driver(policy(max: 10, reserve: 30))  // 7 unauthenticated at most
        for _ in 0..<100 { _ = d.arrive("10.0.\(d.next).1") }
        XCTAssertEqual(d.admission.unauthenticatedCount, 7)
        XCTAssertEqual(d.admission.count, 7, "3 places stay free of unauthenticated connections")
        // Established connections may use the reserve (plaintext or completed handshakes).
        for i in 0..<3 {
            let (_, r) = d.arrive("192.168.0.\(i)", established: true)
            XCTAssertEqual(r, .admit)
        }
        XCTAssertEqual(d.admission.count, 10)
    }

    // Rule 2, connections-max: unauthenticated connections make room; established never do.
    func testFullTableShedsUnauthenticatedThenRefuses() {
        var d = Driver(policy(max: 3, reserve: 0))
        let e1 = d.authenticated("10.0.0.1")
        let e2 = d.authenticated("10.0.0.2")
        let (s, _) = d.arrive("10.0.0.3")
        let (n, r) = d.arrive("10.0.0.4")
        XCTAssertEqual(r, .admitShedding(shed: s, limit: .connectionsMax))
        d.admission.received(id: n)
        d.admission.authenticated(id: n)
        let (_, r2) = d.arrive("10.0.0.5")
        XCTAssertEqual(r2, .refuse(.connectionsMax), "a table full of established identities refuses")
        let (_, r3) = d.arrive("10.0.0.5", established: true)
        XCTAssertEqual(r3, .refuse(.connectionsMax))
        d.admission.closed(id: e1)
        let (_, r4) = d.arrive("10.0.0.5")
        XCTAssertEqual(r4, .admit)
        _ = e2
    }

    func testAddressRuleShedsBeforeTableRuleSoOneVictimAtMost() {
        var d = Driver(policy(max: 2, handshakes: 1))
        let (a, _) = d.arrive("10.0.0.1")
        let (_, _) = d.arrive("10.0.0.2")
        let (_, r) = d.arrive("10.0.0.1")
        XCTAssertEqual(r, .admitShedding(shed: a, limit: .addressHandshakes))
        XCTAssertEqual(d.admission.count, 2)
    }

    /// The flood of the incident: one address opens far more connections than allowed and
    /// never sends a byte; a client from elsewhere still gets in and is not shed before its
    /// handshake, and an address's connections stay bounded.
    func testFloodFromOneAddressLeavesRoomForOthers() {
        var d = Driver(policy(max: 10_000, perAddress: 1000, handshakes: 128, reserve: 10))
        for _ in 0..<10_050 { _ = d.arrive("10.0.0.1") }
        XCTAssertEqual(d.admission.connections(from: "10.0.0.1"), 128)
        let (legit, r) = d.arrive("10.9.9.9")
        XCTAssertEqual(r, .admit)
        for _ in 0..<10_050 { _ = d.arrive("10.0.0.1") }
        XCTAssertEqual(d.admission.state(of: legit), .silent, "not shed by another address's flood")
        d.admission.received(id: legit)
        d.admission.authenticated(id: legit)
        XCTAssertEqual(d.admission.count, 129)
    }

    /// A distributed flood that fills the unauthenticated share: a newcomer from elsewhere is
    /// never the heaviest address, so the flood sheds its own.
    func testDistributedFloodShedsItsOwn() {
        var d = Driver(policy(max: 100, perAddress: 10, handshakes: 10, reserve: 20))
        for i in 0..<1000 { _ = d.arrive("10.0.\(i % 50).1") }
        XCTAssertEqual(d.admission.unauthenticatedCount, 80)
        let (legit, _) = d.arrive("10.9.9.9")
        for i in 0..<79 { _ = d.arrive("10.0.\(i % 50).1") }
        XCTAssertEqual(d.admission.state(of: legit), .silent)
        for i in 0..<10_000 { _ = d.arrive("10.0.\(i % 50).1", sameTurn: i % 3 != 0) }
        XCTAssertEqual(d.admission.state(of: legit), .silent, "not shed while silent")
        d.admission.received(id: legit)
        for i in 0..<10_000 { _ = d.arrive("10.0.\(i % 50).1", sameTurn: i % 3 != 0) }
        XCTAssertEqual(d.admission.state(of: legit), .handshaking, "nor while handshaking")
        XCTAssertLessThanOrEqual(d.admission.heaviestAddressUnauthenticated, 2, "the flood is spread evenly")
    }

    /// Connections accepted in the current loop turn have not been read yet: never shed.
    func testConnectionsOfTheCurrentTurnAreNotShed() {
        var d = Driver(policy(max: 10, handshakes: 2, reserve: 70))  // 3 unauthenticated at most
        let (a1, _) = d.arrive("10.0.0.1")
        let (_, r2) = d.arrive("10.0.0.1", sameTurn: true)
        XCTAssertEqual(r2, .admit)
        let (_, r3) = d.arrive("10.0.0.1", sameTurn: true)
        XCTAssertEqual(r3, .refuse(.addressHandshakes), "both silent ones arrived this turn")
        let (_, r4) = d.arrive("10.0.0.1")
        XCTAssertEqual(r4, .admitShedding(shed: a1, limit: .addressHandshakes), "next turn: the oldest goes")
        // Table scope: a burst from elsewhere, in the newcomer's own turn or later, sheds the
        // burst's own connections.
        var t = Driver(policy(max: 100, reserve: 70))  // 30 unauthenticated at most
        for _ in 0..<30 { _ = t.arrive("10.0.0.1") }
        let (legit, l) = t.arrive("10.9.9.9")
        XCTAssertEqual(l, .admitShedding(shed: 1, limit: .unauthenticatedShare))
        for i in 0..<100 { _ = t.arrive("10.0.1.\(i % 7)", sameTurn: true) }
        XCTAssertEqual(t.admission.state(of: legit), .silent)
        t.admission.received(id: legit)
        for i in 0..<100 { _ = t.arrive("10.0.2.\(i % 7)") }
        XCTAssertEqual(t.admission.state(of: legit), .handshaking)
        // A flood spread thinner than one per address is indistinguishable: ties go in the
        // order the addresses reached their number, so the newcomer lasts one cycle of the share.
        var u = Driver(policy(max: 10, reserve: 70))
        _ = u.arrive("10.0.0.1")
        let (early, _) = u.arrive("10.0.0.2")
        _ = u.arrive("10.0.0.3")
        _ = u.arrive("10.0.0.4")
        XCTAssertNil(u.admission.state(of: 1))
        XCTAssertEqual(u.admission.state(of: early), .silent)
        _ = u.arrive("10.0.0.5")
        XCTAssertNil(u.admission.state(of: early))
    }

    /// With no silent connection left, a stalled handshake makes room, whatever its turn.
    func testStalledHandshakesMakeRoomWhenNothingIsSilent() {
        var d = Driver(policy(max: 10, reserve: 80))  // 2 unauthenticated at most
        let (h1, _) = d.arrive("10.0.0.1")
        let (h2, _) = d.arrive("10.0.0.2")
        d.admission.received(id: h1)
        d.admission.received(id: h2)
        let (_, r) = d.arrive("10.0.0.3", sameTurn: true)
        XCTAssertEqual(r, .admitShedding(shed: h1, limit: .unauthenticatedShare))
    }

    func testQueuesStayCompactUnderChurn() {
        var d = Driver(policy(max: 50, perAddress: 50, handshakes: 50))
        for _ in 0..<100_000 {
            let (id, r) = d.arrive("10.0.0.1")
            XCTAssertEqual(r, .admit)
            d.admission.received(id: id)
            d.admission.authenticated(id: id)
            d.admission.closed(id: id)
        }
        XCTAssertEqual(d.admission.count, 0)
        XCTAssertEqual(d.admission.addressCount, 0)
        var q = AgeQueue<UInt64>()
        for i in 0..<10_000 { q.append(UInt64(i)) }
        for i in 0..<9_999 { q.remove(UInt64(i)) }
        XCTAssertEqual(q.count, 1)
        XCTAssertEqual(q.oldest(), 9_999)
        q.remove(9_999)
        XCTAssertNil(q.oldest())
    }

    func testAddressKeys() {
        XCTAssertEqual(ConnectionAdmission.addressKey("127.0.0.1:5678"), "127.0.0.1")
        XCTAssertEqual(ConnectionAdmission.addressKey("127.0.0.2:1"), "127.0.0.2")
        XCTAssertEqual(ConnectionAdmission.addressKey("[::1]:443"), "0:0:0:0::/64")
        XCTAssertEqual(ConnectionAdmission.addressKey("[::ffff:10.1.2.3]:443"), "10.1.2.3")
        XCTAssertEqual(ConnectionAdmission.addressKey("[2001:db8:1:2:aaaa::1]:443"), "2001:db8:1:2::/64")
        XCTAssertEqual(ConnectionAdmission.addressKey("[2001:DB8:1:2:bbbb:1:2:3]:443"), "2001:db8:1:2::/64")
        XCTAssertEqual(ConnectionAdmission.addressKey("[fe80::1%eth0]:443"), "fe80:0:0:0::/64")
        XCTAssertEqual(ConnectionAdmission.addressKey("[64:ff9b::192.0.2.1]:1"), "64:ff9b:0:0::/64")
        XCTAssertEqual(ConnectionAdmission.addressKey("unknown"), "unknown")
        // Garbage never crashes and counts as itself.
        for junk in ["", ":", "[", "]", "[]:1", "[:::]:1", "1:2:3:4:5:6:7:8:9", "g::1", "12345::",
                     "::1.2.3", "::300.1.1.1", "[::1", "a:b", "::", "1::2::3"] {
            _ = ConnectionAdmission.addressKey(junk)
        }
        XCTAssertNil(ConnectionAdmission.ipv6Groups("1::2::3"))
        XCTAssertNil(ConnectionAdmission.ipv6Groups("1:2:3:4:5:6:7:8:9"))
        XCTAssertNil(ConnectionAdmission.ipv6Groups("12345::"))
        XCTAssertEqual(ConnectionAdmission.ipv6Groups("::"), [0, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(ConnectionAdmission.ipv6Groups("1:2:3:4:5:6:7:8"), [1, 2, 3, 4, 5, 6, 7, 8])
    }

    func testHeaviestFollowsHandshakesAndCloses() {
        var d = Driver(policy(max: 100, reserve: 95))  // 5 unauthenticated at most
        let a = (0..<3).map { _ in d.arrive("10.0.0.1").0 }
        let b = (0..<2).map { _ in d.arrive("10.0.0.2").0 }
        XCTAssertEqual(d.admission.heaviestAddressUnauthenticated, 3)
        for id in a { d.admission.received(id: id); d.admission.authenticated(id: id) }
        XCTAssertEqual(d.admission.heaviestAddressUnauthenticated, 2)
        XCTAssertEqual(d.admission.unauthenticatedCount, 2)
        d.admission.closed(id: b[0])
        XCTAssertEqual(d.admission.heaviestAddressUnauthenticated, 1)
        d.admission.closed(id: b[1])
        XCTAssertEqual(d.admission.heaviestAddressUnauthenticated, 0)
        XCTAssertEqual(d.admission.count, 3)
    }

    /// Random operations against a naive model of the rules (linear scans, no queues): every
    /// decision and count must agree.
    func testAgreesWithANaiveModelOverRandomOperations() {
        struct Model {
            struct C { let id: UInt64; let address: String; let turn: UInt64; var state: ConnectionAdmission.State }
            let p: AdmissionPolicy
            var conns: [C] = []
            var reachedAt: [String: Int] = [:]
            var clock = 0
            func unauth(_ a: String) -> Int { conns.filter { $0.address == a && $0.state != .established }.count }
            mutating func touch(_ a: String) { clock += 1; reachedAt[a] = clock }
            mutating func remove(_ id: UInt64) {
                guard let i = conns.firstIndex(where: { $0.id == id }) else { return }
                let c = conns.remove(at: i)
                if c.state != .established { touch(c.address) }
            }
            mutating func arrive(_ id: UInt64, _ a: String, _ turn: UInt64, _ est: Bool) -> AdmissionDecision {
                var shed: (UInt64, AdmissionLimit)?
                let total = conns.filter { $0.address == a }.count
                let limit: AdmissionLimit? = total >= p.connectionsPerAddressMax ? .addressConnections
                    : (!est && unauth(a) >= p.handshakesPerAddressMax) ? .addressHandshakes : nil
                if let limit {
                    guard let v = conns.first(where: { $0.address == a && $0.state == .silent }), v.turn < turn else { return .refuse(limit) }
                    remove(v.id)
                    shed = (v.id, limit)
                } else {
                    let u = conns.filter { $0.state != .established }.count
                    let t: AdmissionLimit? = conns.count >= p.connectionsMax ? .connectionsMax
                        : (!est && u >= p.unauthenticatedMax) ? .unauthenticatedShare : nil
                    if let t {
                        let addrs = Set(conns.filter { $0.state != .established }.map(\.address))
                        let heaviest = addrs.map { unauth($0) }.max() ?? 0
                        guard heaviest > 0, unauth(a) < heaviest else { return .refuse(t) }
                        let heavy = addrs.filter { unauth($0) == heaviest }.min { reachedAt[$0]! < reachedAt[$1]! }!
                        let v = conns.first { $0.address == heavy && $0.state == .silent }
                            ?? conns.first { $0.address == heavy && $0.state == .handshaking }!
                        remove(v.id)
                        shed = (v.id, t)
                    }
                }
                conns.append(C(id: id, address: a, turn: turn, state: est ? .established : .silent))
                if !est { touch(a) }
                if let (v, l) = shed { return .admitShedding(shed: v, limit: l) }
                return .admit
            }
            mutating func received(_ id: UInt64) {
                if let i = conns.firstIndex(where: { $0.id == id && $0.state == .silent }) { conns[i].state = .handshaking }
            }
            mutating func authenticated(_ id: UInt64) {
                if let i = conns.firstIndex(where: { $0.id == id && $0.state != .established }) {
                    conns[i].state = .established
                    touch(conns[i].address)
                }
            }
        }
        let rounds = Int(ProcessInfo.processInfo.environment["ADMISSION_MODEL_ROUNDS"] ?? "") ?? 20
        for round in 0..<rounds {
            var rng = SplitMix64(seed: UInt64(round))
            var p = policy(max: Int.random(in: 1...40, using: &rng), perAddress: Int.random(in: 1...15, using: &rng),
                           handshakes: Int.random(in: 1...10, using: &rng), reserve: Int.random(in: 0...90, using: &rng))
            if round == 0 { p = policy(max: 12, perAddress: 5, handshakes: 3, reserve: 25) }
            var real = ConnectionAdmission(policy: p)
            var model = Model(p: p)
            var next: UInt64 = 0
            var turn: UInt64 = 0
            for step in 0..<3000 {
                let known = model.conns.map(\.id)
                let pick = known.randomElement(using: &rng) ?? 0
                switch Int.random(in: 0..<10, using: &rng) {
                case 0..<5:
                    next += 1
                    if Bool.random(using: &rng) { turn += 1 }
                    let a = "10.0.0.\(Int.random(in: 0..<6, using: &rng))"
                    let est = Int.random(in: 0..<8, using: &rng) == 0
                    let r = real.arrive(id: next, address: a, turn: turn, established: est)
                    let m = model.arrive(next, a, turn, est)
                    XCTAssertEqual(r, m, "round (seed) \(round) step \(step) policy \(p)")
                    if r != m { return }
                case 5..<7:
                    real.received(id: pick)
                    model.received(pick)
                case 7..<9:
                    real.authenticated(id: pick)
                    model.authenticated(pick)
                default:
                    real.closed(id: pick)
                    model.remove(pick)
                }
                XCTAssertEqual(real.count, model.conns.count)
                XCTAssertEqual(real.unauthenticatedCount, model.conns.filter { $0.state != .established }.count)
                XCTAssertLessThanOrEqual(real.count, p.connectionsMax)
            }
        }
    }
}
