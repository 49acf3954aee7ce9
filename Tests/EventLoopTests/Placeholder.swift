import XCTest
final class EventLoopTestsPlaceholder: XCTestCase { func testNothing() {} }
