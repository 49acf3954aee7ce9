import XCTest
@testable import ISO20022

/// The shipped SPI pacs.008 1.16 profile agrees with the official BCB schema on every fixture in
/// its namespace, and is deliberately stricter on the points docs/iso20022.md lists.
final class ShippedSchemaTests: XCTestCase {
    /// Every fixture in https://www.bcb.gov.br/pi/pacs.008/1.16 (none is excluded).
    static let claimed = [
        "samples/spi/bcb-example_pacs.008_CONTA_1_msg.xml",
        "samples/spi/bcb-example_pacs.008_END_1_msg.xml",
        "samples/spi/bcb-example_pacs.008_END_10_msg.xml",
        "samples/spi/derived_pacs.008_CONTA_1_dummy-signature.xml",
        "samples/spi/derived_pacs.008_CONTA_1_strd-rmtinf_dummy-signature.xml",
        "samples/spi/derived_pacs.008_END_10_dummy-signature.xml",
        "invalid/spi_pacs008_CreDt-no-millis.xml",
        "invalid/spi_pacs008_amount-3-decimals.xml",
        "invalid/spi_pacs008_bad-EndToEndId.xml",
        "invalid/spi_pacs008_currency-USD.xml",
        "invalid/spi_pacs008_duplicate-Rsn-xs-unique.xml",
        "invalid/spi_pacs008_missing-Purp.xml",
    ]

    /// A schema verdict from an outcome: anything but schema-invalid passed the schema.
    static func schemaValid(_ outcome: ValidationOutcome) -> Bool { outcome.rejection?.code != .schemaInvalid }

    /// The element a schema error names ("Element '{ns}Purp': ..." -> "{ns}Purp").
    static func blamedElement(_ outcome: ValidationOutcome) -> Substring? {
        guard let detail = outcome.rejection?.detail, detail.hasPrefix("Element '") else { return nil }
        return detail.dropFirst("Element '".count).prefix(while: { $0 != "'" })
    }

    func testClaimedFixturesAreExactlyThoseInTheNamespace() throws {
        let fixtures = try FileManager.default.subpathsOfDirectory(atPath: Fixtures.root).filter { $0.hasSuffix(".xml") }
        let inNamespace = try fixtures.filter {
            try Fixtures.text($0).contains("xmlns=\"\(ShippedSchema.namespace)\"")
        }
        XCTAssertEqual(Set(inNamespace), Set(Self.claimed))
    }

    func testVerdictEqualsTheOfficialSchemaOnEveryClaimedFixture() throws {
        let shipped = Validator(registry: try SchemaRegistry.shipped(), directory: .empty)
        let officialSigned = Validator(registry: try Fixtures.registry(Fixtures.spi008Signed), directory: .empty)
        let officialBare = Validator(registry: try Fixtures.registry(Fixtures.spi008), directory: .empty)
        var validCount = 0
        for path in Self.claimed {
            let bytes = try Fixtures.bytes(path)
            let signed = String(decoding: bytes, as: UTF8.self).contains("<ds:Signature")
            let official = (signed ? officialSigned : officialBare).validate(bytes)
            let ours = shipped.validate(bytes)
            XCTAssertEqual(Self.schemaValid(ours), Self.schemaValid(official), "\(path): shipped \(ours) vs official \(official)")
            XCTAssertEqual(Self.blamedElement(ours), Self.blamedElement(official), "\(path): shipped \(ours) vs official \(official)")
            if Self.schemaValid(ours) {
                validCount += 1
                XCTAssertEqual(ours, official, "same routing outcome for \(path)")
            }
        }
        XCTAssertEqual(validCount, 3, "the three signed samples are valid; the unsigned BCB examples and invalid/ are not")
    }

    /// Where the profile is stricter than the official XSD, on purpose.
    func testDeliberatelyStricterThanTheOfficialSchema() throws {
        let shipped = Validator(registry: try SchemaRegistry.shipped(), directory: .empty)
        let official = Validator(registry: try Fixtures.registry(Fixtures.spi008Signed), directory: .empty)
        let base = try Fixtures.text("samples/spi/derived_pacs.008_CONTA_1_dummy-signature.xml")
        let variants: [(String, String, String)] = [
            ("alphanumeric ISPB", "<MmbId>20000000</MmbId>", "<MmbId>2000000A</MmbId>"),
            ("zero amount", "<IntrBkSttlmAmt Ccy=\"BRL\">1000.00</IntrBkSttlmAmt>", "<IntrBkSttlmAmt Ccy=\"BRL\">0.00</IntrBkSttlmAmt>"),
            ("other MsgDefIdr", "<MsgDefIdr>pacs.008.spi.1.16</MsgDefIdr>", "<MsgDefIdr>pacs.008.spi.1.15</MsgDefIdr>"),
            ("'|' in InstrId", "<EndToEndId>", "<InstrId>|9999901012341234123412345678900</InstrId><EndToEndId>"),
        ]
        for (name, from, to) in variants {
            let text = base.replacingOccurrences(of: from, with: to)
            XCTAssertNotEqual(text, base, name)
            XCTAssertTrue(Self.schemaValid(official.validate(text)), "official accepts \(name)")
            XCTAssertEqual(shipped.validate(text).rejection?.code, .schemaInvalid, "shipped rejects \(name)")
        }
    }

    func testSignatureIsLaxButRequired() throws {
        let shipped = Validator(registry: try SchemaRegistry.shipped(), directory: .empty)
        let base = try Fixtures.text("samples/spi/derived_pacs.008_CONTA_1_dummy-signature.xml")
        // Lax: an XMLDSig element the profile does not declare is fine...
        let odd = base.replacingOccurrences(of: #"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">"#,
                                            with: #"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Anything/>"#)
        XCTAssertNotEqual(odd, base)
        XCTAssertNotNil(shipped.validate(odd).info)
        // ...but exactly one element from the XMLDSig namespace is required.
        let other = base.replacingOccurrences(of: "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"", with: "xmlns:ds=\"urn:not-xmldsig\"")
        XCTAssertEqual(shipped.validate(other).rejection?.code, .schemaInvalid)
        let unsigned = try Fixtures.bytes("samples/spi/bcb-example_pacs.008_CONTA_1_msg.xml")
        XCTAssertTrue(shipped.validate(unsigned).rejection?.detail.contains("Sgntr': Missing child element(s)") ?? false)
    }
}
