import Glibc
import XCTest
@testable import ISO20022

/// Hostile XML is rejected before it can cost memory, touch the filesystem or network, or leak
/// into the rejection detail.
final class HostileInputTests: XCTestCase {
    static let iso08 = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"

    private func validator(limits: ValidationLimits = ValidationLimits()) throws -> Validator {
        Validator(registry: try Fixtures.registry(Fixtures.iso08, limits: limits), directory: Fixtures.isoDirectory)
    }

    private func temporaryDirectory() throws -> String {
        var template = Array("/tmp/rtpstream-iso20022-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        let path = String(cString: made)
        addTeardownBlock { _ = try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func assertSafeDetail(_ rejection: Rejection?, file: StaticString = #filePath, line: UInt = #line) {
        guard let rejection else { return XCTFail("expected a rejection", file: file, line: line) }
        XCTAssertLessThanOrEqual(rejection.detail.utf8.count, ValidationLimits().detailBytesMax, file: file, line: line)
        XCTAssertTrue(rejection.detail.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }, "non-printable byte in \(rejection.detail)", file: file, line: line)
    }

    func testBillionLaughsIsRejectedAtTheDoctype() throws {
        var entities = "<!ENTITY lol0 \"lol\">\n"
        for i in 1...10 {
            entities += "<!ENTITY lol\(i) \"" + String(repeating: "&lol\(i - 1);", count: 10) + "\">\n"
        }
        let xml = "<?xml version=\"1.0\"?>\n<!DOCTYPE Document [\n\(entities)]>\n<Document xmlns=\"\(Self.iso08)\">&lol10;</Document>"
        let outcome = try validator().validate(xml)
        XCTAssertEqual(outcome.rejection?.code, .doctypeForbidden)
        XCTAssertEqual(outcome.rejection?.line, 2)
        XCTAssertFalse(outcome.rejection?.detail.contains("lol") ?? true)
    }

    func testExternalEntityToALocalFileIsNeverRead() throws {
        let directory = try temporaryDirectory()
        let secret = "TOP-SECRET-\(UInt32.random(in: 0...UInt32.max))"
        try secret.write(toFile: directory + "/secret.txt", atomically: true, encoding: .utf8)
        let scenario = try Fixtures.text("samples/iso/pacs.008.001.08/mbanq-fednow_scenario1.xml")
        let hostile = scenario
            .replacingOccurrences(of: "<Document", with: "<!DOCTYPE Document [<!ENTITY x SYSTEM \"file://\(directory)/secret.txt\">]>\n<Document")
            .replacingOccurrences(of: "<MsgId>20230604111111111Sc01Step1MsgId</MsgId>", with: "<MsgId>&x;</MsgId>")
        XCTAssertNotEqual(hostile, scenario)
        let outcome = try validator().validate(hostile)
        XCTAssertEqual(outcome.rejection?.code, .doctypeForbidden)
        XCTAssertFalse(outcome.rejection.map { "\($0)" }?.contains(secret) ?? true)
        XCTAssertFalse(outcome.rejection?.detail.contains("secret.txt") ?? true)
    }

    func testExternalDTDIsRejected() throws {
        let directory = try temporaryDirectory()
        try "<!ENTITY leak SYSTEM \"file:///etc/passwd\">".write(toFile: directory + "/evil.dtd", atomically: true, encoding: .utf8)
        let xml = "<?xml version=\"1.0\"?><!DOCTYPE Document SYSTEM \"file://\(directory)/evil.dtd\"><Document xmlns=\"\(Self.iso08)\">&leak;</Document>"
        let outcome = try validator().validate(xml)
        XCTAssertEqual(outcome.rejection?.code, .doctypeForbidden)
        XCTAssertFalse(outcome.rejection?.detail.contains("root:") ?? true)
        // Same for a network DTD (nothing is fetched: the parse stops at the DOCTYPE).
        let network = "<!DOCTYPE Document PUBLIC \"-//X//Y//EN\" \"http://127.0.0.1:9/x.dtd\"><Document xmlns=\"\(Self.iso08)\"/>"
        XCTAssertEqual(try validator().validate(network).rejection?.code, .doctypeForbidden)
    }

    func testEntityLoaderRefusesEverythingOutsideSchemaCompilation() throws {
        let directory = try temporaryDirectory()
        try "<x/>".write(toFile: directory + "/local.xml", atomically: true, encoding: .utf8)
        _ = try validator()  // libxml2 initialized, loader installed
        let input = ("file://" + directory + "/local.xml").withCString { EntityLoader.loader($0, nil, nil) }
        XCTAssertNil(input, "the loader must refuse a local file when no schema is being compiled")
    }

    func testDeepNestingStopsAtTheDepthLimit() throws {
        let depth = 10_000
        let xml = "<Document xmlns=\"\(Self.iso08)\">" + String(repeating: "<a>\n", count: depth - 1) + String(repeating: "</a>", count: depth - 1) + "</Document>"
        let outcome = try validator().validate(xml)
        XCTAssertEqual(outcome.rejection?.code, .depthExceeded)
        XCTAssertEqual(outcome.rejection?.line, 32, "stopped at the 33rd element, on line 32")
        assertSafeDetail(outcome.rejection)
    }

    func testDepthLimitIsExact() throws {
        let limits = ValidationLimits(depthMax: 12)
        func nested(_ depth: Int) -> String {
            "<Document xmlns=\"\(Self.iso08)\">" + String(repeating: "<a>", count: depth - 1) + String(repeating: "</a>", count: depth - 1) + "</Document>"
        }
        let v = try validator(limits: limits)
        XCTAssertEqual(v.validate(nested(12)).rejection?.code, .schemaInvalid, "12 levels parse; the schema then rejects <a>")
        XCTAssertEqual(v.validate(nested(13)).rejection?.code, .depthExceeded)
        // The FedNow wrapper (12 levels, the deepest fixture) passes the parse at depthMax 12.
        let wrapperRegistry = try Fixtures.registry(Fixtures.head02, Fixtures.iso08, limits: limits)
        let wrapper = try Fixtures.bytes("samples/iso/business-messages/fednow-sample-message-TxID-pacs008.FedNowIncoming.xml")
        XCTAssertNotNil(Validator(registry: wrapperRegistry, directory: Fixtures.isoDirectory).validate(wrapper).info)
    }

    func testHundredMegabyteTextNodeIsRejectedBySizeBeforeParsing() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/huge.xml"
        let head = Array("<Document xmlns=\"\(Self.iso08)\"><FIToFICstmrCdtTrf><GrpHdr><MsgId>".utf8)
        let tail = Array("</MsgId></GrpHdr></FIToFICstmrCdtTrf></Document>".utf8)
        let textBytes = 100 * 1024 * 1024
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let chunk = [UInt8](repeating: UInt8(ascii: "A"), count: 1024 * 1024)
        _ = head.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        for _ in 0..<(textBytes / chunk.count) { _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        _ = tail.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        let size = head.count + textBytes + tail.count

        // Map it read-only: pages only cost memory when something reads them.
        let rfd = open(path, O_RDONLY)
        defer { close(rfd) }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, rfd, 0), mapped != MAP_FAILED else { return XCTFail("mmap") }
        defer { munmap(mapped, size) }
        let v = try validator()
        let before = Self.residentBytes()
        let outcome = v.validate(UnsafeRawBufferPointer(start: mapped, count: size))
        let after = Self.residentBytes()
        XCTAssertEqual(outcome.rejection?.code, .documentTooLarge)
        XCTAssertTrue(outcome.rejection?.detail.contains("\(size) bytes") ?? false)
        XCTAssertLessThan(after - before, 8 * 1024 * 1024, "the rejected document must not have been read into memory")
    }

    func testInvalidUTF8() throws {
        var bytes = Array("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Document xmlns=\"\(Self.iso08)\"><FIToFICstmrCdtTrf><GrpHdr><MsgId>ab".utf8)
        bytes += [0xC3, 0x28, 0xFF, 0xFE, 0x80]
        bytes += Array("</MsgId></GrpHdr></FIToFICstmrCdtTrf></Document>".utf8)
        let outcome = try validator().validate(bytes)
        XCTAssertEqual(outcome.rejection?.code, .notWellFormed)
        XCTAssertTrue(outcome.rejection?.detail.contains("UTF-8") ?? false, "\(outcome)")
        assertSafeDetail(outcome.rejection)
    }

    func testLongEchoedValuesAreCutAndControlCharactersNeverLeak() throws {
        let scenario = try Fixtures.text("samples/iso/pacs.008.001.08/mbanq-fednow_scenario1.xml")
        let payload = String(repeating: "B", count: 100_000)
        let hostile = scenario.replacingOccurrences(of: "<MsgId>20230604111111111Sc01Step1MsgId</MsgId>",
                                                    with: "<MsgId>x&#10;FORGED-LOG-LINE&#13;\(payload)</MsgId>")
        let outcome = try validator().validate(hostile)
        XCTAssertEqual(outcome.rejection?.code, .schemaInvalid, "\(outcome)")
        XCTAssertTrue(outcome.rejection?.detail.contains("maxLength") ?? false, "\(outcome)")
        XCTAssertFalse(outcome.rejection?.detail.contains(String(repeating: "B", count: 97)) ?? true)
        assertSafeDetail(outcome.rejection)
    }

    func testUndeclaredEntityEmptyAndGarbageInputs() throws {
        let v = try validator()
        XCTAssertEqual(v.validate("<Document xmlns=\"\(Self.iso08)\">&foo;</Document>").rejection?.code, .notWellFormed)
        XCTAssertEqual(v.validate([UInt8]()).rejection?.code, .notWellFormed)
        XCTAssertEqual(v.validate("   \n").rejection?.code, .notWellFormed)
        XCTAssertEqual(v.validate("<a:Document xmlns=\"\(Self.iso08)\"/>").rejection?.code, .notWellFormed, "undeclared prefix")
        XCTAssertEqual(v.validate([0x00, 0x01, 0x02, 0xFF]).rejection?.code, .notWellFormed)
    }

    func testValidatorRecoversAfterEveryKindOfAbortedParse() throws {
        let v = try validator()
        let good = try Fixtures.bytes("samples/iso/pacs.008.001.08/mbanq-fednow_scenario1.xml")
        let hostile: [String] = [
            "<!DOCTYPE x [<!ENTITY a \"b\">]><x/>",
            "<Document xmlns=\"\(Self.iso08)\">" + String(repeating: "<a>", count: 100),
            "<Document xmlns=\"\(Self.iso08)\"><unclosed></Document>",
        ]
        for text in hostile {
            XCTAssertNotNil(v.validate(text).rejection)
            XCTAssertNotNil(v.validate(good).info, "after: \(text.prefix(40))")
        }
    }

    func testSchemaLocationInInstancesIsIgnored() throws {
        // G5: xsi:schemaLocation pointing at an unreachable URL neither loads nor breaks validation.
        let scenario = try Fixtures.text("samples/iso/pacs.008.001.08/mbanq-fednow_scenario1.xml")
        let located = scenario.replacingOccurrences(
            of: "<Document xmlns=\"\(Self.iso08)\"",
            with: "<Document xmlns=\"\(Self.iso08)\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:schemaLocation=\"\(Self.iso08) http://127.0.0.1:9/evil.xsd\"")
        XCTAssertNotEqual(located, scenario)
        XCTAssertNotNil(try validator().validate(located).info)
    }

    /// Resident set size from /proc/self/statm.
    static func residentBytes() -> Int {
        let fields = ((try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? "").split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }
}

final class ParserRecyclingTests: XCTestCase {
    func testNameDictionaryStaysBoundedUnderDistinctNames() throws {
        let limits = ValidationLimits(parserDictEntriesMax: 1_000)
        let v = Validator(registry: try Fixtures.registry(Fixtures.iso08, limits: limits), directory: .empty)
        let ns = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"
        var peak = 0
        for i in 0..<3_000 {
            // Schema-invalid, but every document interns new element and attribute names.
            XCTAssertEqual(v.validate("<Document xmlns=\"\(ns)\"><e\(i) a\(i)=\"1\"/></Document>").rejection?.code, .schemaInvalid)
            peak = max(peak, v.parserDictionaryEntries)
        }
        XCTAssertGreaterThan(peak, 500, "names are interned, so the bound matters")
        XCTAssertLessThanOrEqual(peak, 1_000 + 10)
        let scenario = try Fixtures.bytes("samples/iso/pacs.008.001.08/mbanq-fednow_scenario1.xml")
        XCTAssertEqual(v.validate(scenario).rejection?.code, .senderUnresolved, "a recycled parser still parses and validates")
    }
}
