import XCTest
final class ISO20022TestsPlaceholder: XCTestCase { func testNothing() {} }
