import XCTest
@testable import ISO20022

/// Generated pacs.008 messages validate against the shipped profile and the official SPI XSD +
/// XMLDSig driver, carry unique ids, and route to the requested recipient.
final class GeneratorTests: XCTestCase {
    func testGeneratedMessagesValidateEverywhereAndRoute() throws {
        let shipped = Validator(registry: try SchemaRegistry.shipped(), directory: .empty)
        let official = Validator(registry: try Fixtures.registry(Fixtures.spi008Signed), directory: .empty)
        let generator = Pacs008Generator(runTag: "RUN0TAG1")
        var messageIds = Set<String>()
        var endToEndIds = Set<String>()
        for sequence: UInt64 in [0, 1, 2, 99, 100, 12_345, 99_999, 100_000, Pacs008Generator.sequenceMax] {
            let bytes = generator.make(sender: "00038166", recipient: "20000000", sequence: sequence)
            let expected = MessageInfo(senderISPB: "00038166", recipientISPB: "20000000",
                                       messageId: generator.messageId(sender: "00038166", sequence: sequence),
                                       messageType: "pacs.008", namespace: ShippedSchema.namespace)
            XCTAssertEqual(shipped.validate(bytes), .accepted(expected), "sequence \(sequence)")
            XCTAssertEqual(official.validate(bytes), .accepted(expected), "sequence \(sequence)")
            messageIds.insert(expected.messageId)
            let text = String(decoding: bytes, as: UTF8.self)
            let e2e = text.range(of: "<EndToEndId>").map { text[$0.upperBound...].prefix(32) }
            endToEndIds.insert(String(e2e ?? ""))
        }
        XCTAssertEqual(messageIds.count, 9)
        XCTAssertEqual(endToEndIds.count, 9)
    }

    func testDirectAddressingAndOtherRuns() throws {
        let shipped = Validator(registry: try SchemaRegistry.shipped(), directory: .empty)
        let direct = Pacs008Generator(runTag: "abcdEFGH", addressing: .direct)
        let text = String(decoding: direct.make(sender: "11111111", recipient: "22222222", sequence: 7), as: UTF8.self)
        XCTAssertTrue(text.contains("<To><FIId><FinInstnId><Othr><Id>22222222</Id>"))
        XCTAssertEqual(shipped.validate(text).info?.recipientISPB, "22222222")
        let other = Pacs008Generator(runTag: "abcdEFGI", addressing: .direct)
        XCTAssertNotEqual(direct.messageId(sender: "11111111", sequence: 7), other.messageId(sender: "11111111", sequence: 7))
        XCTAssertEqual(Pacs008Generator.randomRunTag().count, 8)
    }

    func testTimestampsAndDeterminism() {
        let generator = Pacs008Generator(runTag: "RUN0TAG1")
        let a = generator.make(sender: "00038166", recipient: "20000000", sequence: 5, createdAtMillis: 1_700_000_000_123)
        let b = generator.make(sender: "00038166", recipient: "20000000", sequence: 5, createdAtMillis: 1_700_000_000_123)
        XCTAssertEqual(a, b)
        let text = String(decoding: a, as: UTF8.self)
        XCTAssertTrue(text.contains("<CreDt>2023-11-14T22:13:20.123Z</CreDt>"))
        XCTAssertTrue(text.contains("<EndToEndId>E00038166202311142213RUN00000005</EndToEndId>"), text)
        XCTAssertTrue(text.contains("<IntrBkSttlmAmt Ccy=\"BRL\">0.06</IntrBkSttlmAmt>"))
        XCTAssertEqual(generator.messageId(sender: "00038166", sequence: 5), "M00038166RUN0TAG1000000000000005")
    }
}
