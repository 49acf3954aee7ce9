import XCTest
@testable import Hub

/// The fair validation scheduler, as pure logic: jobs are strings "<sender><n>".
final class ValidationSchedulerTests: XCTestCase {
    func testAtMostInFlightMaxRunAndFinishingStartsTheNext() {
        var s = ValidationScheduler<String>(inFlightMax: 2)
        XCTAssertEqual(s.submit("a1", sender: "A"), ["a1"])
        XCTAssertEqual(s.submit("a2", sender: "A"), ["a2"])
        XCTAssertEqual(s.submit("a3", sender: "A"), [])
        XCTAssertEqual(s.inFlight, 2)
        XCTAssertEqual(s.waiting, 1)
        XCTAssertEqual(s.finished(), ["a3"])
        XCTAssertEqual(s.finished(), [])
        XCTAssertEqual(s.finished(), [])
        XCTAssertEqual(s.inFlight, 0)
        XCTAssertEqual(s.waiting, 0)
    }

    func testAnotherSendersJobOvertakesABurst() {
        // A floods 100 jobs; B's one job starts after at most one more of A's, not after A's 98.
        var s = ValidationScheduler<String>(inFlightMax: 2)
        var started: [String] = []
        for i in 1...100 { started += s.submit("a\(i)", sender: "A") }
        XCTAssertEqual(started, ["a1", "a2"])
        XCTAssertEqual(s.submit("b1", sender: "B"), [])
        XCTAssertEqual(s.waiting(for: "A"), 98)
        XCTAssertEqual(s.finished(), ["a3"])
        XCTAssertEqual(s.finished(), ["b1"])
        XCTAssertEqual(s.finished(), ["a4"])
    }

    func testRoundRobinAcrossSendersFIFOWithinOne() {
        var s = ValidationScheduler<String>(inFlightMax: 1)
        var order = s.submit("a1", sender: "A")
        for job in ["a2", "a3", "a4"] { order += s.submit(job, sender: "A") }
        for job in ["b1", "b2"] { order += s.submit(job, sender: "B") }
        order += s.submit("c1", sender: "C")
        while s.inFlight > 0 { order += s.finished() }
        XCTAssertEqual(order, ["a1", "a2", "b1", "c1", "a3", "b2", "a4"])
    }

    func testEverySenderWaitsAtMostOneRoundPerOtherSender() {
        // 5 senders with 50 jobs each and a latecomer: the latecomer's job starts after at most
        // one job of each other sender beyond those already running.
        var s = ValidationScheduler<String>(inFlightMax: 3)
        var started: [String] = []
        for i in 1...50 { for sender in ["A", "B", "C", "D", "E"] { started += s.submit("\(sender)\(i)", sender: sender) } }
        XCTAssertEqual(started.count, 3)
        _ = s.submit("Z1", sender: "Z")
        var after = 0
        while true {
            let next = s.finished()
            XCTAssertEqual(next.count, 1)
            if next == ["Z1"] { break }
            after += 1
        }
        XCTAssertLessThanOrEqual(after, 5)
    }

    func testQueuesAreDroppedWhenEmptyAndFIFOCompacts() {
        var s = ValidationScheduler<Int>(inFlightMax: 1)
        var done: [Int] = []
        for i in 0..<1000 { done += s.submit(i, sender: "S\(i % 7)") }
        while s.inFlight > 0 { done += s.finished() }
        XCTAssertEqual(Set(done), Set(0..<1000))
        XCTAssertEqual(done.count, 1000)
        for sender in 0..<7 {
            let mine = done.filter { $0 % 7 == sender }
            XCTAssertEqual(mine, mine.sorted(), "sender \(sender) out of order")
        }
        XCTAssertEqual(s.waiting, 0)
        var f = FIFO<Int>()
        for i in 0..<100 { f.push(i) }
        for i in 0..<90 { XCTAssertEqual(f.pop(), i) }
        f.push(100)
        XCTAssertEqual(f.count, 11)
        XCTAssertEqual(f.pop(), 90)
    }
}
