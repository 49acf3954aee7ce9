import XCTest
@testable import ISO20022

/// Every row of the fixtures' manifest.tsv through the Validator, with a registry built from
/// that row's schema.
final class ManifestTests: XCTestCase {
    /// Valid rows that are schema-valid but still rejected, by design, and why.
    static let validButRejected: [String: (RejectCode, String)] = [
        // An AppHdr alone is not a business message.
        "samples/iso/head.001.001.01/crafted_bicfi-minimal.AppHdr.xml": (.notBusinessMessage, "AppHdr without a Document"),
        "samples/iso/head.001.001.01/crafted_pix-style-bah.AppHdr.xml": (.notBusinessMessage, "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-example_y2025_pacs.008.max.AppHdr.xml": (.notBusinessMessage, "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-example_y2025_pacs.008.min.AppHdr.xml": (.notBusinessMessage, "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-example_y2025_pacs.008_stp.max.AppHdr.xml": (.notBusinessMessage, "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-example_y2025_pacs.008_stp.min.AppHdr.xml": (.notBusinessMessage, "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-example_y2026_pacs.008.max.AppHdr.xml": (.notBusinessMessage, "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-testfile_2025_cbprplus_pacs008_2025.AppHdr.xml": (.notBusinessMessage, "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-testfile_2025_pacs008_credit_transfer_sample.AppHdr.xml": (.notBusinessMessage, "AppHdr without a Document"),
        "samples/iso/head.001.001.02/fednow-sample-TxID.AppHdr.xml": (.notBusinessMessage, "AppHdr without a Document"),
        // BCB pacs.002 examples re-homed into ISO: no agent anywhere, so no sender.
        "samples/iso/pacs.002.001.10/derived_bcb-ERRO_1-as-iso-pacs.002.001.10.Document.xml": (.senderUnresolved, "no sender"),
        "samples/iso/pacs.002.001.10/derived_bcb-SPI_1-as-iso-pacs.002.001.10.Document.xml": (.senderUnresolved, "no sender"),
        // The same, re-homed into ISO .09: no AppHdr, ten transactions from ten debtor agents.
        "samples/iso/pacs.008.001.09/derived_bcb-END_10-as-iso-pacs.008.001.09.Document.xml": (.senderUnresolved, "different DbtrAgt"),
        // SPI pacs.002 addressed to the hub: a status report has no creditor agent to route to.
        "samples/spi/derived_pacs.002_ERRO_1_dummy-signature.xml": (.recipientUnresolved, "no creditor agent"),
        "samples/spi/derived_pacs.002_SPI_1_dummy-signature.xml": (.recipientUnresolved, "no creditor agent"),
        // SPI pacs.008 to the hub with 10 transactions to 10 different creditor agents.
        "samples/spi/derived_pacs.008_END_10_dummy-signature.xml": (.recipientAmbiguous, "different CdtrAgt"),
    ]

    /// Invalid rows whose namespace the row's schema does not declare: xmllint forces the schema
    /// on them ("No matching global declaration available for the validation root"); the
    /// registry picks schemas by root namespace, so they have none.
    static let unknownNamespace: Set<String> = [
        "invalid/iso_pacs008_no-namespace.xml",
        "invalid/iso_pacs008_wrong-namespace-v09.xml",
    ]

    func testEveryManifestRow() throws {
        let rows = try Fixtures.manifest()
        XCTAssertEqual(rows.count, 66, "manifest changed; review the expectations")
        var registries: [String: SchemaRegistry] = [:]
        var counts: [String: Int] = [:]
        for row in rows {
            let registry: SchemaRegistry
            if let schema = row.schema {
                if registries[schema] == nil { registries[schema] = try Fixtures.registry(schema) }
                registry = registries[schema]!
            } else {
                // Wrappers: both parts' schemas registered.
                registry = try Fixtures.registry(Fixtures.head02, Fixtures.iso08)
            }
            let validator = Validator(registry: registry, directory: Fixtures.isoDirectory)
            let outcome = validator.validate(try Fixtures.bytes(row.path))
            let label = "\(row.path) [\(row.schema ?? "wrapper")]"
            counts[row.expected, default: 0] += 1
            switch row.expected {
            case "valid", "n/a":
                if let (code, substring) = ManifestTests.validButRejected[row.path] {
                    XCTAssertEqual(outcome.rejection?.code, code, label)
                    XCTAssertTrue(outcome.rejection?.detail.contains(substring) ?? false, "\(label): \(outcome)")
                } else {
                    XCTAssertNotNil(outcome.info, "\(label): \(outcome)")
                }
            case "invalid" where ManifestTests.unknownNamespace.contains(row.path):
                XCTAssertEqual(outcome.rejection?.code, .unknownNamespace, "\(label): \(outcome)")
            case "invalid":
                XCTAssertEqual(outcome.rejection?.code, .schemaInvalid, "\(label): \(outcome)")
                XCTAssertTrue(outcome.rejection?.detail.contains(row.errorSubstring) ?? false,
                              "\(label): expected '\(row.errorSubstring)' in \(outcome)")
                XCTAssertNotNil(outcome.rejection?.line, label)
            case "not-wellformed":
                XCTAssertEqual(outcome.rejection?.code, .notWellFormed, "\(label): \(outcome)")
                XCTAssertTrue(outcome.rejection?.detail.contains(row.errorSubstring) ?? false,
                              "\(label): expected '\(row.errorSubstring)' in \(outcome)")
            default:
                XCTFail("unknown expectation \(row.expected) in \(label)")
            }
        }
        XCTAssertEqual(counts, ["valid": 33, "n/a": 3, "invalid": 28, "not-wellformed": 2])
    }
}
