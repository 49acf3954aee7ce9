import XCTest
@testable import Hub

/// The fair validation scheduler, as pure logic: jobs are strings "<sender><n>" (or numbers),
/// started jobs finish oldest first (`Pool`).
final class ValidationSchedulerTests: XCTestCase {
    /// The scheduler plus the jobs it started, finishing in start order.
    struct Pool<Job: Hashable> {
        var s: ValidationScheduler<Job>
        var senderOf: [Job: String] = [:]
        var running: [Job] = []

        mutating func submit(_ job: Job, sender: String) -> [Job] {
            senderOf[job] = sender
            let started = s.submit(job, sender: sender)
            running += started
            return started
        }

        /// The oldest running job finishes; returns the jobs that start.
        mutating func finish() -> [Job] {
            let job = running.removeFirst()
            let started = s.finished(sender: senderOf[job]!)
            running += started
            return started
        }
    }

    func testAtMostInFlightMaxRunAndFinishingStartsTheNext() {
        var p = Pool(s: ValidationScheduler<String>(inFlightMax: 2))
        XCTAssertEqual(p.submit("a1", sender: "A"), ["a1"])
        XCTAssertEqual(p.submit("a2", sender: "A"), ["a2"])
        XCTAssertEqual(p.submit("a3", sender: "A"), [])
        XCTAssertEqual(p.s.inFlight, 2)
        XCTAssertEqual(p.s.waiting, 1)
        XCTAssertEqual(p.finish(), ["a3"])
        XCTAssertEqual(p.finish(), [])
        XCTAssertEqual(p.finish(), [])
        XCTAssertEqual(p.s.inFlight, 0)
        XCTAssertEqual(p.s.waiting, 0)
    }

    func testAnotherSendersJobOvertakesABurst() {
        // A floods 100 jobs; B's one job starts after at most one more of A's, not after A's 98.
        var p = Pool(s: ValidationScheduler<String>(inFlightMax: 2))
        var started: [String] = []
        for i in 1...100 { started += p.submit("a\(i)", sender: "A") }
        XCTAssertEqual(started, ["a1", "a2"])
        XCTAssertEqual(p.submit("b1", sender: "B"), [])
        XCTAssertEqual(p.s.waiting(for: "A"), 98)
        XCTAssertEqual(p.finish(), ["a3"])
        XCTAssertEqual(p.finish(), ["b1"])
        XCTAssertEqual(p.finish(), ["a4"])
    }

    /// With a per-sender share below the total, a burst holds only its share: another sender's
    /// job starts at once, with free slots left for a third.
    func testPerSenderShareLeavesRoomForOthers() {
        var p = Pool(s: ValidationScheduler<String>(inFlightMax: 8, perSenderMax: 2))
        var started: [String] = []
        for i in 1...100 { started += p.submit("a\(i)", sender: "A") }
        XCTAssertEqual(started, ["a1", "a2"], "A holds its share, no more")
        XCTAssertEqual(p.submit("b1", sender: "B"), ["b1"], "B starts at once")
        XCTAssertEqual(p.submit("c1", sender: "C"), ["c1"])
        XCTAssertEqual(p.s.inFlight, 4)
        XCTAssertEqual(p.finish(), ["a3"], "A's next starts when one of A's finishes")
        XCTAssertEqual(p.finish(), ["a4"])
        XCTAssertEqual(p.finish(), [], "B's finishing starts nothing of A's (A is at its share)")
        XCTAssertEqual(p.s.inFlight, 3)
    }

    func testRoundRobinAcrossSendersFIFOWithinOne() {
        var p = Pool(s: ValidationScheduler<String>(inFlightMax: 1))
        var order = p.submit("a1", sender: "A")
        for job in ["a2", "a3", "a4"] { order += p.submit(job, sender: "A") }
        for job in ["b1", "b2"] { order += p.submit(job, sender: "B") }
        order += p.submit("c1", sender: "C")
        while p.s.inFlight > 0 { order += p.finish() }
        XCTAssertEqual(order, ["a1", "a2", "b1", "c1", "a3", "b2", "a4"])
    }

    func testEverySenderWaitsAtMostOneRoundPerOtherSender() {
        // 5 senders with 50 jobs each and a latecomer: the latecomer's job starts after at most
        // one job of each other sender beyond those already running.
        for perSender in [3, 1] {
            var p = Pool(s: ValidationScheduler<String>(inFlightMax: 3, perSenderMax: perSender))
            var started: [String] = []
            for i in 1...50 { for sender in ["A", "B", "C", "D", "E"] { started += p.submit("\(sender)\(i)", sender: sender) } }
            XCTAssertEqual(started.count, 3)
            _ = p.submit("Z1", sender: "Z")
            var after = 0
            while true {
                let next = p.finish()
                XCTAssertEqual(next.count, 1)
                if next == ["Z1"] { break }
                after += 1
            }
            XCTAssertLessThanOrEqual(after, 5, "per-sender share \(perSender)")
        }
    }

    func testQueuesAreDroppedWhenEmptyAndFIFOCompacts() {
        var p = Pool(s: ValidationScheduler<Int>(inFlightMax: 3, perSenderMax: 1))
        var done: [Int] = []
        for i in 0..<1000 { done += p.submit(i, sender: "S\(i % 7)") }
        while p.s.inFlight > 0 { done += p.finish() }
        XCTAssertEqual(Set(done), Set(0..<1000))
        XCTAssertEqual(done.count, 1000)
        for sender in 0..<7 {
            let mine = done.filter { $0 % 7 == sender }
            XCTAssertEqual(mine, mine.sorted(), "sender \(sender) out of order")
        }
        XCTAssertEqual(p.s.waiting, 0)
        var f = FIFO<Int>()
        for i in 0..<100 { f.push(i) }
        for i in 0..<90 { XCTAssertEqual(f.pop(), i) }
        f.push(100)
        XCTAssertEqual(f.count, 11)
        XCTAssertEqual(f.pop(), 90)
    }
}
