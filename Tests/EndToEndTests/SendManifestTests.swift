import Foundation
import Glibc
import HTTP
import HTTPClient
import TestSupport
import XCTest

/// Every row of the fixtures' manifest.tsv through the real endpoint: the real binary with
/// mutual TLS and Redis, `--schema` set to the row's schema set (one hub per set: the bare SPI
/// XSD and the SPI+XMLDSig driver claim the same namespace), a participant directory that maps
/// the fixtures' BICs and clearing ids to ISPBs with test certificates. Each row is sent as the
/// sender it names. Valid rows must be stored and pulled by their recipient; rejected rows must
/// get the expected problem, be quarantined (seen through `rtpstream inspect quarantine`) and
/// audited, and nothing else may reach any partition.
final class SendManifestTests: XCTestCase {
    /// identifier → ISPB for the hub's `--participants`. Senders of rows that share a message id
    /// get distinct ISPBs so that idempotency does not merge different messages; recipients
    /// share two ISPBs.
    static let directory = """
    # sender institutions
    YZABGBKLXXX      20000001
    ABCDGBEFXXX      20000002
    NOPQGBFGXXX      20000003
    BCDEGB34XXX      20000004
    PQRSGB9AXXX      20000005
    STUVGBQRXXX      20000001
    UVWXGBKLXXX      20000002
    BRDEROBU         20000003
    FNTXDE2X         20000004
    USABA:111111111  11111111
    111111111        11111111
    # recipient institutions
    NOPQUSTUXXX      87654321
    PQRSUSNOXXX      87654321
    CDEFUS01XXX      87654321
    QRSTUSOPXXX      87654321
    EFGHUSUVXXX      87654321
    HIJKUSZ0XXX      87654321
    JKLMUSTUXXX      87654321
    BTRLRO22         87654321
    GLPBES2X         87654321
    USABA:333333333  12345678
    USABA:999999997  12345678
    021150706        12345678
    # participants the fixtures name by ISPB alone (a loaded directory lists every recipient)
    00038166         00038166
    10000000         10000000
    20000000         20000000
    """

    /// Rows the hub stores: sender → recipient and the message id (the idempotency key with the
    /// sender). Rows sharing (sender, message id) in one hub run get the first one's id.
    static let stored: [String: (sender: String, recipient: String, messageId: String)] = [
        "samples/iso/business-messages/cbprur-example_y2025_pacs.008.min.Envelope.xml": ("20000001", "87654321", "EXMsgId"),
        "samples/iso/business-messages/cbprur-testfile_2025_cbprplus_pacs008_2025.SwiftEnvelope.xml": ("20000003", "87654321", "pcs008bzmsgidr-1"),
        "samples/iso/business-messages/fednow-sample-message-TxID-pacs008.FedNowIncoming.xml": ("11111111", "12345678", "20230604111111111Sc01Step1MsgId"),
        "samples/iso/pacs.002.001.10/cbprur-example_y2025_pacs.002.max.Document.xml": ("20000002", "87654321", "EXMsgId"),
        "samples/iso/pacs.002.001.10/cbprur-example_y2025_pacs.002.min.Document.xml": ("20000001", "87654321", "EXMsgId"),
        "samples/iso/pacs.008.001.08/cbprur-example_y2025_pacs.008.max.Document.xml": ("20000002", "87654321", "EXMsgId"),
        "samples/iso/pacs.008.001.08/cbprur-example_y2025_pacs.008.min.Document.xml": ("20000001", "87654321", "EXMsgId"),
        "samples/iso/pacs.008.001.08/cbprur-example_y2025_pacs.008_stp.max.Document.xml": ("20000005", "87654321", "EXMsgId"),
        "samples/iso/pacs.008.001.08/cbprur-example_y2025_pacs.008_stp.min.Document.xml": ("20000003", "87654321", "EXMsgId"),
        "samples/iso/pacs.008.001.08/cbprur-example_y2026_pacs.008.max.Document.xml": ("20000004", "87654321", "EXMsgId"),
        "samples/iso/pacs.008.001.08/cbprur-testfile_2025_cbprplus_pacs008_2025.Document.xml": ("20000003", "87654321", "pcs008bzmsgidr-1"),
        "samples/iso/pacs.008.001.08/cbprur-testfile_2025_pacs008_credit_transfer_sample.Document.xml": ("20000004", "87654321", "P008-20260413-5017"),
        "samples/iso/pacs.008.001.08/derived_bcb-CONTA_1-as-iso-pacs.008.001.08.Document.xml": ("10000000", "20000000", "M0003816612345678901234567890123"),
        "samples/iso/pacs.008.001.08/derived_synthetic_1000tx.xml": ("11111111", "12345678", "20230604111111111Sc01Step1MsgId"),
        "samples/iso/pacs.008.001.08/fednow-sample-TxID.Document.xml": ("11111111", "12345678", "20230604111111111Sc01Step1MsgId"),
        "samples/iso/pacs.008.001.08/mbanq-fednow_sample-pacs008.crlf.xml": ("11111111", "12345678", "20230604111111111Sc01Step1MsgId"),
        "samples/iso/pacs.008.001.08/mbanq-fednow_scenario1.xml": ("11111111", "12345678", "20230604111111111Sc01Step1MsgId"),
        "samples/iso/pacs.008.001.09/derived_bcb-CONTA_1-as-iso-pacs.008.001.09.Document.xml": ("10000000", "20000000", "M0003816612345678901234567890123"),
        "samples/spi/derived_pacs.008_CONTA_1_dummy-signature.xml|xsd/local/pacs.008.spi.1.16+xmldsig.xsd": ("00038166", "20000000", "M0003816612345678901234567890123"),
        "samples/spi/derived_pacs.008_CONTA_1_strd-rmtinf_dummy-signature.xml|xsd/local/pacs.008.spi.1.16+xmldsig.xsd": ("00038166", "20000000", "M0003816612345678901234567890123"),
    ]

    /// Valid rows the hub rejects by design (docs/iso20022.md; ISO20022Tests' manifest test).
    static let rejectedByDesign: [String: (slug: String, detail: String)] = [
        "samples/iso/head.001.001.01/crafted_bicfi-minimal.AppHdr.xml": ("not-business-message", "AppHdr without a Document"),
        "samples/iso/head.001.001.01/crafted_pix-style-bah.AppHdr.xml": ("not-business-message", "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-example_y2025_pacs.008.max.AppHdr.xml": ("not-business-message", "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-example_y2025_pacs.008.min.AppHdr.xml": ("not-business-message", "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-example_y2025_pacs.008_stp.max.AppHdr.xml": ("not-business-message", "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-example_y2025_pacs.008_stp.min.AppHdr.xml": ("not-business-message", "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-example_y2026_pacs.008.max.AppHdr.xml": ("not-business-message", "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-testfile_2025_cbprplus_pacs008_2025.AppHdr.xml": ("not-business-message", "AppHdr without a Document"),
        "samples/iso/head.001.001.02/cbprur-testfile_2025_pacs008_credit_transfer_sample.AppHdr.xml": ("not-business-message", "AppHdr without a Document"),
        "samples/iso/head.001.001.02/fednow-sample-TxID.AppHdr.xml": ("not-business-message", "AppHdr without a Document"),
        "samples/iso/pacs.002.001.10/derived_bcb-ERRO_1-as-iso-pacs.002.001.10.Document.xml": ("sender-unresolved", "no sender"),
        "samples/iso/pacs.002.001.10/derived_bcb-SPI_1-as-iso-pacs.002.001.10.Document.xml": ("sender-unresolved", "no sender"),
        "samples/iso/pacs.008.001.09/derived_bcb-END_10-as-iso-pacs.008.001.09.Document.xml": ("sender-unresolved", "different DbtrAgt"),
        "samples/spi/derived_pacs.002_ERRO_1_dummy-signature.xml": ("recipient-unresolved", "no creditor agent"),
        "samples/spi/derived_pacs.002_SPI_1_dummy-signature.xml": ("recipient-unresolved", "no creditor agent"),
        "samples/spi/derived_pacs.008_END_10_dummy-signature.xml": ("recipient-ambiguous", "different CdtrAgt"),
    ]

    /// Invalid rows in a namespace their schema does not declare (xmllint forces the schema;
    /// the registry chooses by namespace).
    static let unknownNamespace: Set<String> = ["invalid/iso_pacs008_no-namespace.xml", "invalid/iso_pacs008_wrong-namespace-v09.xml"]

    /// The ISPB a rejected row is sent as: the sender it names when it names one with a test
    /// certificate (SPI AppHdr/Fr 00038166; the FedNow-derived ISO files' 111111111; the BCB
    /// Documents' DbtrAgt 10000000), otherwise 20000001 (the hub never gets as far as the sender).
    static func rejectedSender(_ path: String) -> String {
        if path.hasPrefix("samples/spi/") || path.hasPrefix("invalid/spi_") { return "00038166" }
        if path.hasPrefix("invalid/iso_") { return "11111111" }
        if path.contains("derived_bcb-END_10") { return "10000000" }
        return "20000001"
    }

    struct Row {
        let path: String
        let schema: String?
        let expected: String
        let errorSubstring: String
    }

    enum Expectation {
        case stored(sender: String, recipient: String, messageId: String)
        case rejected(sender: String, status: Int, slug: String, detail: String)
    }

    static func expectation(_ row: Row) -> Expectation {
        if let s = stored["\(row.path)|\(row.schema ?? "-")"] ?? (row.path.hasPrefix("samples/spi/") ? nil : stored[row.path]) {
            return .stored(sender: s.sender, recipient: s.recipient, messageId: s.messageId)
        }
        let sender = rejectedSender(row.path)
        switch row.expected {
        case "valid", "n/a":
            guard let r = rejectedByDesign[row.path] else { return .rejected(sender: sender, status: 0, slug: "unexpected row", detail: row.path) }
            return .rejected(sender: sender, status: 422, slug: r.slug, detail: r.detail)
        case "not-wellformed":
            return .rejected(sender: sender, status: 422, slug: "not-well-formed", detail: row.errorSubstring)
        default:
            if unknownNamespace.contains(row.path) {
                return .rejected(sender: sender, status: 422, slug: "unknown-namespace", detail: "no schema for root namespace")
            }
            return .rejected(sender: sender, status: 422, slug: "schema-invalid", detail: row.errorSubstring)
        }
    }

    static func manifest() throws -> [Row] {
        let text = String(decoding: try SendSupport.fixture("manifest.tsv"), as: UTF8.self)
        return text.split(separator: "\n").dropFirst().map { line in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Row(path: f[0], schema: f[1] == "-" ? nil : f[1], expected: f[2], errorSubstring: f.count > 3 ? f[3] : "")
        }
    }

    /// The schema files of a row's hub: its schema, or for the wrapper rows (no single XSD) the
    /// two their parts need.
    static func schemaSet(_ row: Row) -> [String] {
        row.schema.map { [$0] } ?? ["xsd/iso/head.001.001.02.xsd", "xsd/iso/pacs.008.001.08.xsd"]
    }

    func testEveryManifestRowThroughTheEndpoint() throws {
        let rows = try Self.manifest()
        XCTAssertEqual(rows.count, 66, "manifest changed; review the expectations")
        let work = TempDir("rtpstream-manifest")
        let directoryFile = work.path + "/participants.txt"
        try Self.directory.write(toFile: directoryFile, atomically: true, encoding: .utf8)
        let redis = try RedisServer()

        var groups: [[String]: [Row]] = [:]
        var order: [[String]] = []
        for row in rows {
            let set = Self.schemaSet(row)
            if groups[set] == nil { order.append(set) }
            groups[set, default: []].append(row)
        }
        XCTAssertEqual(order.count, 10, "one hub per schema set")
        var storedRows = 0
        var rejectedRows = 0
        for set in order {
            let (s, r) = try runGroup(schemas: set, rows: groups[set]!, redis: redis, directoryFile: directoryFile)
            storedRows += s
            rejectedRows += r
        }
        XCTAssertEqual(storedRows + rejectedRows, 66)
        XCTAssertEqual(storedRows, 20, "rows answered 201 (duplicates of an earlier row included)")
    }

    /// One hub with `schemas`: sends the rows, pulls every test ISPB, stops the hub, inspects
    /// the quarantine and partitions, reads the audit log. Returns (stored, rejected) row counts.
    private func runGroup(schemas: [String], rows: [Row], redis: RedisServer, directoryFile: String) throws -> (Int, Int) {
        let label = schemas.joined(separator: "+")
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "0", "--participants", directoryFile]
                                 + schemas.flatMap { ["--schema", "\(SendSupport.fixtures)/\($0)"] }, redis: redis)
        var clients: [String: HTTPClient] = [:]
        func client(_ ispb: String) throws -> HTTPClient {
            if let c = clients[ispb] { return c }
            let c = try SendSupport.client(hub, ispb)
            clients[ispb] = c
            return c
        }
        var idsByKey: [String: String] = [:]
        var expectedDelivery: [String: [SendSupport.Delivered]] = [:]
        var rejected: [(row: Row, sender: String, slug: String, detail: String)] = []
        var storedCount = 0
        for row in rows {
            let bytes = try SendSupport.fixture(row.path)
            let where_ = "\(row.path) [\(label)]"
            switch Self.expectation(row) {
            case .stored(let sender, let recipient, let messageId):
                let r = try SendSupport.post(try client(sender), sender, bytes)
                XCTAssertEqual(r.status, 201, "\(where_): \(r.problem.map { "\($0.type) \($0.detail)" } ?? "")")
                guard let id = r.header("PI-ResourceId") else { continue }
                storedCount += 1
                XCTAssertEqual(id.utf8.count, 32, where_)
                if let first = idsByKey["\(sender)/\(messageId)"] {
                    XCTAssertEqual(id, first, "\(where_): same sender and message id must get the same PI-ResourceId")
                } else {
                    idsByKey["\(sender)/\(messageId)"] = id
                    expectedDelivery[recipient, default: []].append(.init(id: id, body: bytes))
                }
            case .rejected(let sender, let status, let slug, let detail):
                let r = try SendSupport.post(try client(sender), sender, bytes)
                XCTAssertEqual(r.status, status, where_)
                XCTAssertNil(r.header("PI-ResourceId"), where_)
                XCTAssertEqual(r.problem?.slug, slug, "\(where_): \(r.problem.map { "\($0.type) \($0.detail)" } ?? "no problem")")
                XCTAssertTrue(r.problem?.detail.contains(detail) ?? false, "\(where_): expected '\(detail)' in \(r.problem?.detail ?? "-")")
                rejected.append((row, sender, slug, detail))
            }
        }
        for c in clients.values { c.close() }

        // Delivery: each recipient gets exactly its messages, in order; every other ISPB nothing.
        for ispb in TestCertificates.ispbs {
            let got = try SendSupport.pullAll(hub, ispb)
            let want = expectedDelivery[ispb] ?? []
            XCTAssertEqual(got.map(\.id), want.map(\.id), "\(label): delivered to \(ispb)")
            XCTAssertTrue(zip(got, want).allSatisfy { $0.body == $1.body }, "\(label): bodies delivered to \(ispb)")
        }

        // Audit: one line per rejected row, in order, with the path ISPB and the reason.
        let audit = try SendSupport.auditLines(hub)
        XCTAssertEqual(audit.count, rejected.count, "\(label): audit lines")
        for (line, r) in zip(audit, rejected) {
            XCTAssertEqual(line["event"] as? String, "message-rejected", r.row.path)
            XCTAssertEqual(line["reason"] as? String, r.slug, r.row.path)
            XCTAssertEqual(line["pathIspb"] as? String, r.sender, r.row.path)
            XCTAssertTrue((line["detail"] as? String)?.contains(r.detail) ?? false, r.row.path)
        }

        // Stopped: the quarantine holds every rejected row, the partitions only what was stored.
        _ = try SendSupport.stop(hub)
        let quarantine = try SendSupport.quarantine(dataDir: hub.data.path)
        XCTAssertEqual(quarantine.count, rejected.count, "\(label): quarantine entries")
        for (q, r) in zip(quarantine, rejected) {
            XCTAssertEqual(q.reason, r.slug, r.row.path)
            XCTAssertEqual(q.sender, r.sender, r.row.path)
            XCTAssertTrue(q.detail.contains(r.detail), "\(r.row.path): quarantine detail \(q.detail)")
        }
        let partitions = try SendSupport.partitions(dataDir: hub.data.path)
        XCTAssertEqual(Set(partitions.keys), Set(expectedDelivery.keys.map { "local:\($0)" }), "\(label): partitions")
        for (ispb, messages) in expectedDelivery {
            XCTAssertEqual(partitions["local:\(ispb)"]?.end, UInt64(messages.count), "\(label): records in \(ispb)")
            XCTAssertEqual(partitions["local:\(ispb)"]?.backlog, 0, "\(label): backlog of \(ispb) after pulling")
        }
        return (storedCount, rejected.count)
    }
}
