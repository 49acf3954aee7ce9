import XCTest
@testable import ISO20022

/// Routing facts (sender, recipient, message id, type) for SPI, ISO and wrapped messages.
final class RoutingTests: XCTestCase {
    static let spi = "https://www.bcb.gov.br/pi/pacs.008/1.16"
    static let iso08 = "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08"
    static let signedConta = "samples/spi/derived_pacs.008_CONTA_1_dummy-signature.xml"

    private func spiValidator(hubISPB: String = "99999010") throws -> Validator {
        Validator(registry: try Fixtures.registry(Fixtures.spi008Signed), directory: .empty, hubISPB: hubISPB)
    }

    private func isoValidator(directory: ParticipantDirectory = Fixtures.isoDirectory) throws -> Validator {
        Validator(registry: try Fixtures.registry(Fixtures.head02, Fixtures.iso08, Fixtures.iso002), directory: directory)
    }

    func testSPIAddressedToTheHubGoesToTheCreditorAgent() throws {
        let outcome = try spiValidator().validate(try Fixtures.bytes(Self.signedConta))
        XCTAssertEqual(outcome.info, MessageInfo(senderISPB: "00038166", recipientISPB: "20000000",
                                                 messageId: "M0003816612345678901234567890123",
                                                 messageType: "pacs.008", namespace: Self.spi))
    }

    func testSPIAddressedDirectlyGoesToAppHdrTo() throws {
        let text = try Fixtures.text(Self.signedConta)
        let direct = text.replacingOccurrences(of: "<Id>99999010</Id>", with: "<Id>30000000</Id>")
        XCTAssertNotEqual(direct, text)
        XCTAssertEqual(try spiValidator().validate(direct).info?.recipientISPB, "30000000")
    }

    func testHubISPBIsConfigurable() throws {
        // With another hub ISPB, 99999010 is an ordinary participant.
        let outcome = try spiValidator(hubISPB: "12345678").validate(try Fixtures.bytes(Self.signedConta))
        XCTAssertEqual(outcome.info?.recipientISPB, "99999010")
    }

    func testSeveralCreditorAgentsAreAmbiguousUnlessTheyAgree() throws {
        let text = try Fixtures.text("samples/spi/derived_pacs.008_END_10_dummy-signature.xml")
        let v = try spiValidator()
        XCTAssertEqual(v.validate(text).rejection?.code, .recipientAmbiguous)
        var same = text
        for i in 1...9 { same = same.replacingOccurrences(of: "<MmbId>2000000\(i)</MmbId>", with: "<MmbId>20000000</MmbId>") }
        XCTAssertNotEqual(same, text)
        let outcome = v.validate(same)
        XCTAssertEqual(outcome.info?.recipientISPB, "20000000", "\(outcome)")
        XCTAssertEqual(outcome.info?.senderISPB, "00038166")
    }

    func testCreditorAgentThatIsTheHubIsUnusable() throws {
        let text = try Fixtures.text(Self.signedConta).replacingOccurrences(of: "<MmbId>20000000</MmbId>", with: "<MmbId>99999010</MmbId>")
        XCTAssertEqual(try spiValidator().validate(text).rejection?.code, .recipientUnresolved)
    }

    func testISODocumentUsesTransactionAgentsThroughTheDirectory() throws {
        let outcome = try isoValidator().validate(try Fixtures.bytes("samples/iso/pacs.008.001.08/mbanq-fednow_scenario1.xml"))
        XCTAssertEqual(outcome.info, MessageInfo(senderISPB: "11111111", recipientISPB: "33333333",
                                                 messageId: "20230604111111111Sc01Step1MsgId",
                                                 messageType: "pacs.008", namespace: Self.iso08))
    }

    func testUnknownIdentifierIsReportedNotGuessed() throws {
        let outcome = try isoValidator(directory: .empty).validate(try Fixtures.bytes("samples/iso/pacs.008.001.08/mbanq-fednow_scenario1.xml"))
        XCTAssertEqual(outcome.rejection?.code, .senderUnresolved)
        XCTAssertEqual(outcome.rejection?.detail, "InstgAgt '111111111' is not a known participant")
    }

    func testISODocumentWithOnlyDebtorAndCreditorAgents() throws {
        // BCB data re-homed into ISO .08: no AppHdr, no Instg/InstdAgt, 8-digit clearing ids.
        let outcome = try isoValidator(directory: .empty).validate(
            try Fixtures.bytes("samples/iso/pacs.008.001.08/derived_bcb-CONTA_1-as-iso-pacs.008.001.08.Document.xml"))
        XCTAssertEqual(outcome.info?.senderISPB, "10000000")
        XCTAssertEqual(outcome.info?.recipientISPB, "20000000")
        XCTAssertEqual(outcome.info?.messageId, "M0003816612345678901234567890123")
    }

    func testISOStatusReport() throws {
        let outcome = try isoValidator().validate(try Fixtures.bytes("samples/iso/pacs.002.001.10/cbprur-example_y2025_pacs.002.min.Document.xml"))
        XCTAssertEqual(outcome.info, MessageInfo(senderISPB: "10000015", recipientISPB: "10000016", messageId: "EXMsgId",
                                                 messageType: "pacs.002", namespace: "urn:iso:std:iso:20022:tech:xsd:pacs.002.001.10"))
    }

    func testFedNowWrapperRoutesByAppHdr() throws {
        let outcome = try isoValidator().validate(
            try Fixtures.bytes("samples/iso/business-messages/fednow-sample-message-TxID-pacs008.FedNowIncoming.xml"))
        XCTAssertEqual(outcome.info, MessageInfo(senderISPB: "11111111", recipientISPB: "02115070",
                                                 messageId: "20230604111111111Sc01Step1MsgId",
                                                 messageType: "pacs.008", namespace: Self.iso08))
    }

    func testSwiftEnvelopeWithPrefixedPartsRoutesByAppHdrBICs() throws {
        let outcome = try isoValidator().validate(
            try Fixtures.bytes("samples/iso/business-messages/cbprur-testfile_2025_cbprplus_pacs008_2025.SwiftEnvelope.xml"))
        XCTAssertEqual(outcome.info?.senderISPB, "10000001")
        XCTAssertEqual(outcome.info?.recipientISPB, "10000002")
        XCTAssertEqual(outcome.info?.messageId, "pcs008bzmsgidr-1")
    }

    func testAppHdrWithoutInstitutionFallsBackToTransactionAgents() throws {
        // Fr/To are empty <OrgId/>: the transaction's InstgAgt / InstdAgt BICs decide, and an
        // 8-character directory entry matches an 11-character BIC ending in XXX.
        let directory = ParticipantDirectory(entries: ["YZABGBKL": "40000001", "NOPQUSTUXXX": "40000002"])
        let outcome = try isoValidator(directory: directory).validate(
            try Fixtures.bytes("samples/iso/business-messages/cbprur-example_y2025_pacs.008.min.Envelope.xml"))
        XCTAssertEqual(outcome.info?.senderISPB, "40000001", "\(outcome)")
        XCTAssertEqual(outcome.info?.recipientISPB, "40000002")
    }

    func testLaterIdentifiersOfOneInstitutionAreTried() throws {
        // The max sample's agents carry ClrSysMmbId "EXMmbId" (unknown) and a BICFI (known).
        let outcome = try isoValidator().validate(try Fixtures.bytes("samples/iso/pacs.008.001.08/cbprur-example_y2025_pacs.008.max.Document.xml"))
        XCTAssertEqual(outcome.info?.senderISPB, "10000007", "\(outcome)")
        XCTAssertEqual(outcome.info?.recipientISPB, "10000008")
    }

    func testWrapperNeedsBothPartsRegisteredAndValid() throws {
        let wrapper = try Fixtures.bytes("samples/iso/business-messages/fednow-sample-message-TxID-pacs008.FedNowIncoming.xml")
        let headOnly = Validator(registry: try Fixtures.registry(Fixtures.head02), directory: Fixtures.isoDirectory)
        let outcome = headOnly.validate(wrapper)
        XCTAssertEqual(outcome.rejection?.code, .unknownNamespace)
        XCTAssertEqual(outcome.rejection?.detail, "no schema for Document namespace '\(Self.iso08)'")

        let text = String(decoding: wrapper, as: UTF8.self).replacingOccurrences(of: "<NbOfTxs>1</NbOfTxs>", with: "<NbOfTxs>one</NbOfTxs>")
        let invalid = try isoValidator().validate(text)
        XCTAssertEqual(invalid.rejection?.code, .schemaInvalid)
        XCTAssertTrue(invalid.rejection?.detail.contains("NbOfTxs") ?? false)

        let broken = String(decoding: wrapper, as: UTF8.self).replacingOccurrences(of: "<BizMsgIdr>", with: "<Foo/><BizMsgIdr>")
        XCTAssertEqual(try isoValidator().validate(broken).rejection?.code, .schemaInvalid, "the AppHdr part is validated too")
    }

    func testWrapperMustHoldExactlyOneAppHdrAndOneDocument() throws {
        let appHdr = try Fixtures.text("samples/iso/head.001.001.02/fednow-sample-TxID.AppHdr.xml").replacingOccurrences(of: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", with: "")
        let document = try Fixtures.text("samples/iso/pacs.008.001.08/fednow-sample-TxID.Document.xml").replacingOccurrences(of: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", with: "")
        let v = try isoValidator()
        XCTAssertNotNil(v.validate("<Envelope>\(appHdr)\(document)</Envelope>").info)
        let two = v.validate("<Envelope>\(appHdr)\(document)\(document)</Envelope>")
        XCTAssertEqual(two.rejection?.code, .notBusinessMessage)
        XCTAssertEqual(v.validate("<Envelope>\(document)</Envelope>").rejection?.code, .notBusinessMessage)
        XCTAssertEqual(v.validate("<Envelope><Other/></Envelope>").rejection?.code, .unknownNamespace)
        XCTAssertEqual(v.validate("<Document xmlns=\"urn:unknown\"/>").rejection?.code, .unknownNamespace)
    }

    func testSchemaValidRootThatIsNotABusinessMessage() throws {
        // The official SPI XSD declares RfrdDocAmt globally, so this root is schema-valid.
        let xml = "<RfrdDocAmt xmlns=\"\(Self.spi)\"><AdjstmntAmtAndRsn><Amt Ccy=\"BRL\">1.00</Amt><Rsn>VLCP</Rsn></AdjstmntAmtAndRsn></RfrdDocAmt>"
        let outcome = try spiValidator().validate(xml)
        XCTAssertEqual(outcome.rejection?.code, .notBusinessMessage)
        XCTAssertEqual(outcome.rejection?.detail, "root element 'RfrdDocAmt' is not a business message")
    }

    func testBlankMessageIdIsRejectedEvenThoughSchemaValid() throws {
        // G6: ISO Max35Text accepts "   ".
        let text = try Fixtures.text("samples/iso/pacs.008.001.08/mbanq-fednow_scenario1.xml")
            .replacingOccurrences(of: "<MsgId>20230604111111111Sc01Step1MsgId</MsgId>", with: "<MsgId>   </MsgId>")
        let outcome = try isoValidator().validate(text)
        XCTAssertEqual(outcome.rejection?.code, .messageIdInvalid)
        XCTAssertEqual(outcome.rejection?.detail, "GrpHdr/MsgId is empty")
    }

    func testMessageTypeFromNamespace() {
        XCTAssertEqual(Router.messageType(fromNamespace: Self.iso08), "pacs.008")
        XCTAssertEqual(Router.messageType(fromNamespace: Self.spi), "pacs.008")
        XCTAssertEqual(Router.messageType(fromNamespace: "https://www.bcb.gov.br/pi/pacs.002/1.17"), "pacs.002")
        XCTAssertEqual(Router.messageType(fromNamespace: "urn:iso:std:iso:20022:tech:xsd:camt.056.001.08"), "camt.056")
        XCTAssertNil(Router.messageType(fromNamespace: "urn:example:envelope"))
        XCTAssertNil(Router.messageType(fromNamespace: "urn:xpacs.0081"))
    }

    func testMessageIdRules() {
        XCTAssertNil(Router.messageIdProblem("M0003816612345678901234567890123", bytesMax: 35))
        XCTAssertNil(Router.messageIdProblem("MSG 1", bytesMax: 35))
        XCTAssertEqual(Router.messageIdProblem("", bytesMax: 35), "is empty")
        XCTAssertEqual(Router.messageIdProblem(String(repeating: "x", count: 36), bytesMax: 35), "is longer than 35 bytes")
        XCTAssertEqual(Router.messageIdProblem(" x", bytesMax: 35), "has leading or trailing spaces")
        XCTAssertEqual(Router.messageIdProblem("a\tb", bytesMax: 35), "has characters outside printable ASCII")
        XCTAssertEqual(Router.messageIdProblem("pagamento-ç", bytesMax: 35), "has characters outside printable ASCII")
    }
}
