import XCTest
@testable import ISO20022

final class DetailSanitizerTests: XCTestCase {
    private func sanitize(_ text: String, bytesMax: Int = 64, quotedBytesMax: Int = 10) -> String {
        DetailSanitizer.sanitize(Array(text.utf8), bytesMax: bytesMax, quotedBytesMax: quotedBytesMax)
    }

    func testControlCharactersAndNonASCII() {
        XCTAssertEqual(sanitize("a\u{1B}[31mb\u{0}c"), "a?[31mb?c")
        XCTAssertEqual(sanitize("  line one\n\n\tline two \r\n"), "line one line two")
        XCTAssertEqual(sanitize("Informações"), "Informa????es")
    }

    func testQuotedRunsAreCut() {
        XCTAssertEqual(sanitize("The value 'ABCDEFGHIJKLMNOP' is bad; 'short' ok"), "The value 'ABCDEFGHIJ...' is bad; 'short' ok")
        XCTAssertEqual(sanitize("unterminated 'ABCDEFGHIJKLMNOP"), "unterminated 'ABCDEFGHIJ...")
    }

    func testTotalCap() {
        let out = sanitize(String(repeating: "word ", count: 100), bytesMax: 40)
        XCTAssertEqual(out.utf8.count, 40)
        XCTAssertTrue(out.hasSuffix("..."))
        XCTAssertEqual(sanitize("exactly-ten", bytesMax: 11), "exactly-ten")
    }

    func testLibxml2MessageKeepsItsUsefulParts() {
        let message = "Element '{urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08}MsgId': [facet 'maxLength'] The value '"
            + String(repeating: "X", count: 5000) + "' has a length of '5000'; this exceeds the allowed maximum length of '35'.\n"
        let out = DetailSanitizer.sanitize(Array(message.utf8), bytesMax: 512, quotedBytesMax: 96)
        XCTAssertTrue(out.contains("{urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08}MsgId"))
        XCTAssertTrue(out.contains("exceeds the allowed maximum length of '35'."))
        XCTAssertFalse(out.contains(String(repeating: "X", count: 97)))
        XCTAssertLessThanOrEqual(out.utf8.count, 512)
    }
}
