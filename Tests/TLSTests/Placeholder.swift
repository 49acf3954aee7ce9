import XCTest
final class TLSTestsPlaceholder: XCTestCase { func testNothing() {} }
