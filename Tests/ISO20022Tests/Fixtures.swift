import Foundation
@testable import ISO20022
import TestSupport

/// The shared fixtures (never copied into the repository), found by `Paths.fixtures`.
enum Fixtures {
    static let root: String = Paths.fixtures.path

    static func path(_ relative: String) -> String { root + "/" + relative }

    static func bytes(_ relative: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path(relative))))
    }

    static func text(_ relative: String) throws -> String {
        String(decoding: try bytes(relative), as: UTF8.self)
    }

    struct Row {
        let path: String
        let schema: String?  // nil for the wrapper rows ("-")
        let expected: String // valid, invalid, not-wellformed, n/a
        let errorSubstring: String
    }

    static func manifest() throws -> [Row] {
        let lines = try text("manifest.tsv").split(separator: "\n").dropFirst()
        return lines.map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Row(path: f[0], schema: f[1] == "-" ? nil : f[1], expected: f[2], errorSubstring: f.count > 3 ? f[3] : "")
        }
    }

    static let iso08 = "xsd/iso/pacs.008.001.08.xsd"
    static let iso09 = "xsd/iso/pacs.008.001.09.xsd"
    static let iso002 = "xsd/iso/pacs.002.001.10.xsd"
    static let head01 = "xsd/iso/head.001.001.01.xsd"
    static let head02 = "xsd/iso/head.001.001.02.xsd"
    static let spi008 = "xsd/spi/pacs.008.spi.1.16.xsd"
    static let spi002 = "xsd/spi/pacs.002.spi.1.17.xsd"
    static let spi008Signed = "xsd/local/pacs.008.spi.1.16+xmldsig.xsd"
    static let spi002Signed = "xsd/local/pacs.002.spi.1.17+xmldsig.xsd"

    static func registry(_ schemas: String..., limits: ValidationLimits = ValidationLimits()) throws -> SchemaRegistry {
        try SchemaRegistry(schemaFiles: schemas.map(path), limits: limits)
    }

    /// Maps every BIC and clearing id the ISO fixtures use to a made-up ISPB.
    static let isoDirectory = ParticipantDirectory(entries: [
        "USABA:111111111": "11111111",
        "USABA:333333333": "33333333",
        "USABA:999999997": "99999997",
        "111111111": "11111111",     // FedNow AppHdr uses a bare MmbId
        "021150706": "02115070",
        "BRDEROBU": "10000001",
        "BTRLRO22": "10000002",
        "FNTXDE2X": "10000003",
        "GLPBES2X": "10000004",
        "YZABGBKLXXX": "10000005",
        "NOPQUSTUXXX": "10000006",
        "ABCDGBEFXXX": "10000007",
        "PQRSUSNOXXX": "10000008",
        "NOPQGBFGXXX": "10000009",
        "CDEFUS01XXX": "10000010",
        "BCDEGB34XXX": "10000011",
        "QRSTUSOPXXX": "10000012",
        "PQRSGB9AXXX": "10000013",
        "EFGHUSUVXXX": "10000014",
        "STUVGBQRXXX": "10000015",
        "HIJKUSZ0XXX": "10000016",
        "UVWXGBKLXXX": "10000017",
        "JKLMUSTUXXX": "10000018",
    ])
}

extension Validator {
    func validate(_ text: String) -> ValidationOutcome { validate(Array(text.utf8)) }
}
