import XCTest
import TLS

/// The ISPB rule as pure logic over subject attribute values.
final class ISPBRuleTests: XCTestCase {
    func testDefaultRuleIsTheWholeCN() {
        XCTAssertEqual(ISPBRule.default.description, "CN:whole")
        XCTAssertEqual(ISPBRule.default.attribute, "CN")
        XCTAssertEqual(ISPBRule.default.match, .whole)
        XCTAssertNil(ISPBRule.default.ispb(inValues: ["87654321 12345678"]), "two ISPBs in one CN")
        XCTAssertNil(ISPBRule.default.ispb(inValues: ["psp-12345678.example"]))
    }

    func testRunMatching() throws {
        let rule = try ISPBRule(parsing: "CN:run")
        XCTAssertEqual(rule.ispb(inValues: ["12345678"]), "12345678")
        XCTAssertEqual(rule.ispb(inValues: ["00000000"]), "00000000", "leading zeros are kept")
        XCTAssertEqual(rule.ispb(inValues: ["psp-12345678.example"]), "12345678")
        XCTAssertEqual(rule.ispb(inValues: ["BANCO X S.A.:60701190"]), "60701190")
        XCTAssertEqual(rule.ispb(inValues: ["1234567 87654321"]), "87654321", "a 7-digit run is skipped")
        XCTAssertNil(rule.ispb(inValues: ["11111111 22222222"]), "two ISPBs: ambiguous, refused")
        XCTAssertNil(rule.ispb(inValues: ["87654321 12345678"]), "the probe's subject")
        XCTAssertNil(rule.ispb(inValues: ["11111111", "22222222"]), "two values naming different ISPBs")
        XCTAssertEqual(rule.ispb(inValues: ["11111111", "x-11111111"]), "11111111", "the same ISPB twice is one")
        XCTAssertNil(rule.ispb(inValues: ["123456789"]), "9 digits are not an ISPB")
        XCTAssertNil(rule.ispb(inValues: ["12345678000195"]), "a CNPJ is not an ISPB")
        XCTAssertNil(rule.ispb(inValues: ["spi.bank.example"]))
        XCTAssertNil(rule.ispb(inValues: []))
        XCTAssertNil(rule.ispb(inValues: ["١٢٣٤٥٦٧٨"]), "only ASCII digits count")
        XCTAssertEqual(rule.ispb(inValues: ["no digits", "then 44445555"]), "44445555", "values in order")
    }

    func testWholeMatching() throws {
        let rule = try ISPBRule(parsing: "serialNumber:whole")
        XCTAssertEqual(rule.match, .whole)
        XCTAssertEqual(rule.description, "serialNumber:whole")
        XCTAssertEqual(rule.ispb(inValues: ["12345678"]), "12345678")
        XCTAssertNil(rule.ispb(inValues: ["ISPB 12345678"]))
        XCTAssertNil(rule.ispb(inValues: ["1234567"]))
        XCTAssertEqual(rule.ispb(inValues: ["x", "87654321"]), "87654321")
        XCTAssertNil(rule.ispb(inValues: ["12345678", "87654321"]), "two values naming different ISPBs")
    }

    func testParsing() throws {
        XCTAssertEqual(try ISPBRule(parsing: "OU").description, "OU:run")
        XCTAssertEqual(try ISPBRule(parsing: "CN:whole"), ISPBRule.default)
        XCTAssertEqual(try ISPBRule(parsing: "commonName:whole"), ISPBRule.default, "long names name the same attribute")
        XCTAssertNoThrow(try ISPBRule(parsing: "2.5.4.5"), "dotted OIDs work")
        XCTAssertThrowsError(try ISPBRule(parsing: "notAnAttribute")) { error in
            XCTAssertTrue("\(error)".contains("unknown subject attribute"), "\(error)")
        }
        XCTAssertThrowsError(try ISPBRule(parsing: "CN:prefix")) { error in
            XCTAssertTrue("\(error)".contains("\"run\" or \"whole\""), "\(error)")
        }
        XCTAssertThrowsError(try ISPBRule(parsing: ""))
    }

    func testVersionParsing() {
        XCTAssertEqual(TLSVersion(parsing: "1.2"), .tls12)
        XCTAssertEqual(TLSVersion(parsing: "TLSv1.3"), .tls13)
        XCTAssertEqual(TLSVersion(parsing: "tlsv1.2"), .tls12)
        XCTAssertNil(TLSVersion(parsing: "1.1"))
        XCTAssertEqual(TLSVersion.tls13.description, "TLSv1.3")
    }
}
