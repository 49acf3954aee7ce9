import XCTest
final class LogStoreTestsPlaceholder: XCTestCase { func testNothing() {} }
