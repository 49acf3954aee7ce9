import EventLoop
import Foundation
import XCTest

/// `LoopBound` knows the thread it belongs to: its creator's (debug builds assert on reads from
/// any other thread; the trap itself is not exercised here).
final class LoopBoundTests: XCTestCase {
    func testOwningThreadIsTheCreatorsOnly() {
        let bound = LoopBound(42)
        XCTAssertTrue(bound.isOnOwningThread)
        XCTAssertEqual(bound.value, 42)
        let elsewhere = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var seenElsewhere = true
        Thread.detachNewThread {
            seenElsewhere = bound.isOnOwningThread
            elsewhere.signal()
        }
        elsewhere.wait()
        XCTAssertFalse(seenElsewhere, "another thread is not the owner")
    }
}
