import Glibc
import XCTest
@testable import ISO20022

/// The linear pre-scan: UTF-8 only, and per-document work bounds, before libxml2 parses.
final class DocumentPreScanTests: XCTestCase {
    static let ns = "https://www.bcb.gov.br/pi/pacs.008/1.16"
    let limits = ValidationLimits()

    func scan(_ s: String) -> DocumentPreScan.Refusal? { DocumentPreScan.scan(Array(s.utf8), limits: limits) }
    func scan(_ b: [UInt8]) -> DocumentPreScan.Refusal? { DocumentPreScan.scan(b, limits: limits) }

    /// A root element with `count` attributes (`prefix` "a" or "xmlns:p").
    static func manyAttributes(_ count: Int, prefix: String = "a") -> [UInt8] {
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Envelope xmlns=\"\(ns)\""
        s.reserveCapacity(count * 16 + 200)
        for i in 0..<count { s += " \(prefix)\(i)=\"x\"" }
        s += "><AppHdr/></Envelope>"
        return Array(s.utf8)
    }

    func testEveryFixtureAndGeneratedMessagePasses() throws {
        for row in try Fixtures.manifest() where !row.path.contains("not-wellformed") {
            XCTAssertNil(scan(try Fixtures.bytes(row.path)), row.path)
        }
        let g = Pacs008Generator(runTag: "PRESCAN1", addressing: .viaHub("99999010"))
        XCTAssertNil(scan(g.make(sender: "12345678", recipient: "87654321", sequence: 1)))
    }

    // MARK: encodings

    func testByteOrderMarksOtherThanUTF8AreRefused() {
        let body = Array("<a/>".utf8)
        XCTAssertNil(scan([0xEF, 0xBB, 0xBF] + body))
        for (bom, name) in [([UInt8]([0xFF, 0xFE]), "UTF-16"), ([0xFE, 0xFF], "UTF-16"),
                            ([0xFF, 0xFE, 0x00, 0x00], "UTF-32"), ([0x00, 0x00, 0xFE, 0xFF], "UTF-32")] {
            let r = scan(bom + [0x3C, 0x00, 0x61, 0x00])
            XCTAssertEqual(r?.code, .notWellFormed)
            XCTAssertTrue(r?.detail.contains(name) ?? false, r?.detail ?? "")
        }
    }

    func testUTF16WithoutBOMIsRefusedAtTheFirstNUL() {
        let utf16le = Array("<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>".utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let r = scan(utf16le)
        XCTAssertEqual(r?.code, .notWellFormed)
        XCTAssertTrue(r?.detail.contains("NUL byte at offset 1") ?? false, r?.detail ?? "")
    }

    func testDeclaredEncodingMustBeUTF8OrUSASCII() {
        XCTAssertNil(scan("<?xml version=\"1.0\" encoding=\"utf-8\"?><a/>"))
        XCTAssertNil(scan("<?xml version='1.0' encoding = 'UTF-8' ?><a/>"))
        XCTAssertNil(scan("<?xml version=\"1.0\"?><a/>"))
        XCTAssertNil(scan("<?xml version=\"1.0\" encoding=\"US-ASCII\"?><a/>"))
        for e in ["ISO-8859-1", "latin1", "UTF-16", "windows-1252", "EBCDIC-US"] {
            let r = scan("<?xml version=\"1.0\" encoding=\"\(e)\"?><a/>")
            XCTAssertEqual(r?.code, .notWellFormed, e)
            XCTAssertTrue(r?.detail.contains("declared encoding '\(e)'") ?? false, r?.detail ?? "")
        }
        // US-ASCII is a subset of UTF-8 only while the bytes are ASCII.
        let r = scan(Array("<?xml version=\"1.0\" encoding=\"US-ASCII\"?><a>".utf8) + [0xC3, 0xA9] + Array("</a>".utf8))
        XCTAssertEqual(r?.code, .notWellFormed)
        XCTAssertTrue(r?.detail.contains("declared US-ASCII") ?? false, r?.detail ?? "")
    }

    func testInvalidUTF8IsRefusedWithItsOffset() {
        let cases: [[UInt8]] = [
            [0xC3, 0x28],             // bad continuation
            [0xC0, 0xAF],             // overlong '/'
            [0xE0, 0x80, 0xAF],       // overlong
            [0xED, 0xA0, 0x80],       // surrogate U+D800
            [0xF4, 0x90, 0x80, 0x80], // beyond U+10FFFF
            [0xF8, 0x88, 0x80, 0x80], // 5-byte form
            [0xE9, 0x74],             // ISO-8859-1 'é' followed by ASCII
            [0xE2, 0x82],             // truncated at the end
        ]
        for bad in cases {
            let doc = Array("<a>".utf8) + bad
            let r = scan(doc)
            XCTAssertEqual(r?.code, .notWellFormed, "\(bad)")
            XCTAssertTrue(r?.detail.contains("offset 3") ?? false, r?.detail ?? "")
        }
        XCTAssertNil(scan(Array("<a>é€𝄞</a>".utf8)))
    }

    // MARK: work bounds

    func testAttributesPerElement() {
        XCTAssertNil(scan(Self.manyAttributes(limits.attributesPerElementMax - 1)))   // + xmlns
        let r = scan(Self.manyAttributes(limits.attributesPerElementMax))
        XCTAssertEqual(r?.code, .documentTooComplex)
        XCTAssertEqual(r?.limit, .attributesPerElement)
        XCTAssertEqual(r?.line, 2)
        // Lenient: names without values, odd spacing, '>' inside a value still count.
        var s = "<a"
        for i in 0...limits.attributesPerElementMax { s += " b\(i)" }
        XCTAssertEqual(scan(s + "/>")?.limit, .attributesPerElement)
        var t = "<a"
        for i in 0...limits.attributesPerElementMax { t += "\nb\(i) = '>'" }
        XCTAssertEqual(scan(t + ">")?.limit, .attributesPerElement)
    }

    func testNamespaceDeclarationsPerElementAndPerDocument() {
        XCTAssertEqual(scan(Self.manyAttributes(limits.namespaceDeclarationsPerElementMax, prefix: "xmlns:p"))?.limit,
                       .namespaceDeclarationsPerElement)
        XCTAssertNil(scan(Self.manyAttributes(limits.namespaceDeclarationsPerElementMax - 1, prefix: "xmlns:p")))
        // Spread over elements: the document bound.
        var s = "<r>"
        for i in 0...limits.namespaceDeclarationsPerDocumentMax { s += "<e xmlns:p\(i)='u:\(i)'/>" }
        XCTAssertEqual(scan(s + "</r>")?.limit, .namespaceDeclarationsPerDocument)
        // "xmlnsfoo" is an ordinary attribute.
        XCTAssertNil(scan("<r xmlnsfoo='1' xmlns='u:a' xmlns:x='u:b'/>"))
    }

    func testAttributeValueAndTextSizes() {
        let value = String(repeating: "v", count: limits.attributeValueBytesMax)
        XCTAssertNil(scan("<a b='\(value)'/>"))
        XCTAssertEqual(scan("<a b='\(value)v'/>")?.limit, .attributeValueBytes)
        XCTAssertEqual(scan("<a b='\(value)v")?.limit, .attributeValueBytes)   // unterminated runs to the end
        let text = String(repeating: "t", count: limits.textBytesMax)
        XCTAssertNil(scan("<a>\(text)</a>"))
        XCTAssertEqual(scan("<a>\(text)t</a>")?.limit, .textBytes)
        XCTAssertEqual(scan("<a>\(text)t")?.limit, .textBytes)
        // A CDATA section is part of its text run; comments split runs and are not counted.
        let half = String(repeating: "t", count: limits.textBytesMax / 2 + 1)
        XCTAssertEqual(scan("<a>\(half)<![CDATA[\(half)]]></a>")?.limit, .textBytes)
        XCTAssertNil(scan("<a>\(half)<!--c-->\(half)</a>"))
        XCTAssertNil(scan("<a><!-- <b c='\(value)v'/> --><?pi \(value)v?></a>"))
    }

    func testDoctypeIsLeftToTheParser() {
        XCTAssertNil(scan("<!DOCTYPE a [<!ENTITY e '\(String(repeating: "x", count: 10_000))'>]><a/>"))
    }

    // MARK: through the validator

    func testTheValidatorRefusesBeforeLibxml2AndCountsTheLimit() throws {
        let validator = Validator(registry: try SchemaRegistry.shipped(), directory: .empty)
        let outcome = validator.validate(Self.manyAttributes(200_000))
        XCTAssertEqual(outcome.rejection?.code, .documentTooComplex)
        XCTAssertEqual(outcome.rejection?.detail, "an element has more than 64 attributes")
        XCTAssertEqual(validator.parserDictionaryEntries, 0, "libxml2 never saw the document")
    }

    func testTheCPUDeadlineStopsTheParse() throws {
        // 1 ms of CPU for a 2.6 MB message is too little: refused, by the deadline.
        let limits = ValidationLimits(cpuMillisecondsMax: 1)
        let validator = Validator(registry: try Fixtures.registry(Fixtures.iso08, limits: limits), directory: Fixtures.isoDirectory)
        let big = try Fixtures.manifest().map(\.path).filter { $0.hasSuffix(".xml") }
            .map { try Fixtures.bytes($0) }.max { $0.count < $1.count }!
        XCTAssertGreaterThan(big.count, 1_000_000)
        let outcome = validator.validate(big)
        XCTAssertEqual(outcome.rejection?.code, .documentTooComplex, "\(outcome)")
        XCTAssertTrue(outcome.rejection?.detail.contains("ms of CPU time") ?? false)
    }

    /// Documents just inside every bound, near the 4 MiB document limit, stay cheap for libxml2:
    /// the bounds, not the deadline, keep hostile messages in milliseconds.
    func testDocumentsJustInsideTheBoundsStayCheap() throws {
        let validator = Validator(registry: try SchemaRegistry.shipped(), directory: .empty)
        var attrs = ""
        for i in 0..<(limits.attributesPerElementMax - 1) { attrs += " a\(i)=\"x\"" }
        var manyAttributes = "<Envelope xmlns=\"\(Self.ns)\"><AppHdr>"
        while manyAttributes.utf8.count < limits.documentBytesMax - 1_000 { manyAttributes += "<e\(attrs)/>" }
        manyAttributes += "</AppHdr></Envelope>"
        var namespaces = "<Envelope xmlns=\"\(Self.ns)\"><AppHdr>"
        for e in 0..<(limits.namespaceDeclarationsPerDocumentMax / limits.namespaceDeclarationsPerElementMax - 1) {
            namespaces += "<e"
            for i in 0..<limits.namespaceDeclarationsPerElementMax { namespaces += " xmlns:p\(i)=\"u:\(e):\(i)\"" }
            namespaces += ">"
        }
        namespaces += String(repeating: "<p0:x p1:a='1' p2:b='2'/>", count: 100_000)
        namespaces += String(repeating: "</e>", count: limits.namespaceDeclarationsPerDocumentMax / limits.namespaceDeclarationsPerElementMax - 1)
        namespaces += "</AppHdr></Envelope>"
        let text = String(repeating: "t", count: limits.textBytesMax)
        var texts = "<Envelope xmlns=\"\(Self.ns)\"><AppHdr>"
        while texts.utf8.count < limits.documentBytesMax - limits.textBytesMax - 100 { texts += "<e>\(text)</e>" }
        texts += "</AppHdr></Envelope>"
        for (name, doc) in [("63 attributes on every element", manyAttributes), ("namespaces at the bounds", namespaces),
                            ("256 KiB text nodes", texts)] {
            let bytes = Array(doc.utf8)
            XCTAssertLessThanOrEqual(bytes.count, limits.documentBytesMax, name)
            let t0 = ValidationMetrics.monotonicNanoseconds()
            let outcome = validator.validate(bytes)
            let ms = Double(ValidationMetrics.monotonicNanoseconds() - t0) / 1e6
            XCTAssertNotEqual(outcome.rejection?.code, .documentTooComplex, "\(name): \(outcome)")
            XCTAssertLessThan(ms, 1_500, name)
            print("inside the bounds: \(name) (\(bytes.count) bytes): \(String(format: "%.1f", ms)) ms, \(outcome.rejection?.code.rawValue ?? "accepted")")
        }
        // For comparison: the largest fixture, a valid 1000-transaction pacs.008.
        let iso = Validator(registry: try Fixtures.registry(Fixtures.iso08), directory: Fixtures.isoDirectory)
        let big = try Fixtures.manifest().map(\.path).filter { $0.hasSuffix(".xml") }
            .map { try Fixtures.bytes($0) }.max { $0.count < $1.count }!
        let t0 = ValidationMetrics.monotonicNanoseconds()
        let outcome = iso.validate(big)
        print("inside the bounds: largest fixture (\(big.count) bytes): \(String(format: "%.1f", Double(ValidationMetrics.monotonicNanoseconds() - t0) / 1e6)) ms, \(outcome.rejection?.code.rawValue ?? "accepted")")
    }

    /// Prints the time to refuse hostile documents with the pre-scan and, for comparison, the
    /// time libxml2 takes on them when the pre-scan's bounds are lifted (the behaviour before).
    /// `RTPSTREAM_PRESCAN_BEFORE=1` adds the slow libxml2 side.
    func testMeasureRefusalTimes() throws {
        let before = ProcessInfo.processInfo.environment["RTPSTREAM_PRESCAN_BEFORE"] == "1"
        let lifted = ValidationLimits(attributesPerElementMax: 10_000_000, namespaceDeclarationsPerElementMax: 10_000_000,
                                      namespaceDeclarationsPerDocumentMax: 10_000_000, cpuMillisecondsMax: 1_000_000)
        let now = Validator(registry: try SchemaRegistry.shipped(), directory: .empty)
        let old = Validator(registry: try SchemaRegistry.shipped(limits: lifted), directory: .empty)
        let cases: [(String, [UInt8])] = [
            ("20k attributes", Self.manyAttributes(20_000)),
            ("40k attributes", Self.manyAttributes(40_000)),
            ("200k attributes", Self.manyAttributes(200_000)),
            ("100k namespace declarations", Self.manyAttributes(100_000, prefix: "xmlns:p")),
        ]
        for (name, doc) in cases {
            let t0 = ValidationMetrics.monotonicNanoseconds()
            let outcome = now.validate(doc)
            let ms = Double(ValidationMetrics.monotonicNanoseconds() - t0) / 1e6
            XCTAssertEqual(outcome.rejection?.code, .documentTooComplex)
            XCTAssertLessThan(ms, 500, name)
            var line = "prescan: \(name) (\(doc.count) bytes): refused in \(String(format: "%.2f", ms)) ms"
            if before && name != "200k attributes" || ProcessInfo.processInfo.environment["RTPSTREAM_PRESCAN_BEFORE_ALL"] == "1" {
                let t1 = ValidationMetrics.monotonicNanoseconds()
                let r = old.validate(doc)
                line += "; libxml2 without the pre-scan: \(String(format: "%.2f", Double(ValidationMetrics.monotonicNanoseconds() - t1) / 1e6)) ms (\(r.rejection?.code.rawValue ?? "accepted"))"
            }
            print(line)
        }
    }

    /// The eight-byte ASCII fast path: a NUL, a stray high byte or a valid multi-byte character
    /// at every position relative to an 8-byte boundary is seen exactly as byte by byte.
    func testEncodingChecksAtEveryAlignment() {
        let head = Array("<a>".utf8), tail = Array("</a>".utf8)
        for offset in 0..<24 {
            let filler = [UInt8](repeating: UInt8(ascii: "x"), count: offset)
            XCTAssertNotNil(scan(head + filler + [0] + filler + tail), "NUL after \(offset)")
            XCTAssertNotNil(scan(head + filler + [0xFF] + filler + tail), "0xFF after \(offset)")
            XCTAssertNotNil(scan(head + filler + [0xC3] + tail), "truncated sequence after \(offset)")
            XCTAssertNil(scan(head + filler + Array("ção €𝄞".utf8) + filler + tail), "valid UTF-8 after \(offset)")
        }
    }
}
