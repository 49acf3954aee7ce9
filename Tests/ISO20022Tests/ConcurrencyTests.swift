import Foundation
import Synchronization
import XCTest
@testable import ISO20022

/// One shared registry, one validator per thread: concurrent validation gives the same outcomes
/// as sequential validation.
final class ConcurrencyTests: XCTestCase {
    static let corpus = [
        "samples/spi/derived_pacs.008_CONTA_1_dummy-signature.xml",
        "samples/spi/derived_pacs.008_CONTA_1_strd-rmtinf_dummy-signature.xml",
        "samples/spi/derived_pacs.002_SPI_1_dummy-signature.xml",
        "samples/iso/pacs.008.001.08/mbanq-fednow_scenario1.xml",
        "samples/iso/pacs.008.001.08/cbprur-example_y2025_pacs.008.max.Document.xml",
        "samples/iso/pacs.002.001.10/cbprur-example_y2025_pacs.002.min.Document.xml",
        "samples/iso/business-messages/fednow-sample-message-TxID-pacs008.FedNowIncoming.xml",
        "invalid/spi_pacs008_duplicate-Rsn-xs-unique.xml",
        "invalid/iso_pacs008_missing-MsgId.xml",
        "invalid/iso_pacs008_truncated-not-wellformed.xml",
        "samples/iso/head.001.001.02/fednow-sample-TxID.AppHdr.xml",
    ]

    func testThreadsShareTheRegistryAndAgreeWithSequentialResults() throws {
        let registry = try Fixtures.registry(Fixtures.spi008Signed, Fixtures.spi002Signed, Fixtures.iso08,
                                             Fixtures.iso002, Fixtures.head02)
        let validators = ThreadLocalValidators(registry: registry, directory: Fixtures.isoDirectory)
        let messages = try Self.corpus.map(Fixtures.bytes)
        let sequential = Validator(registry: registry, directory: Fixtures.isoDirectory)
        let expected = messages.map { sequential.validate($0) }
        XCTAssertEqual(expected.filter { $0.info != nil }.count, 6)

        let threadCount = 4
        let rounds = 60
        let mismatches = Mutex<[String]>([])
        let instances = Mutex<Set<ObjectIdentifier>>([])
        let done = DispatchSemaphore(value: 0)
        for t in 0..<threadCount {
            let thread = Thread {
                let validator = validators.current()
                let sameAgain = validators.current() === validator
                instances.withLock { _ = $0.insert(ObjectIdentifier(validator)) }
                if !sameAgain { mismatches.withLock { $0.append("thread \(t) got two validators") } }
                for round in 0..<rounds {
                    for (i, message) in messages.enumerated() {
                        let index = (i + t + round) % messages.count  // threads interleave differently
                        let outcome = validators.current().validate(messages[index])
                        if outcome != expected[index] {
                            mismatches.withLock { $0.append("thread \(t) \(Self.corpus[index]): \(outcome)") }
                        }
                        _ = message
                    }
                }
                done.signal()
            }
            thread.start()
        }
        for _ in 0..<threadCount { XCTAssertEqual(done.wait(timeout: .now() + 120), .success) }
        XCTAssertEqual(mismatches.withLock { $0 }, [])
        XCTAssertEqual(instances.withLock { $0.count }, threadCount, "one validator per thread")
    }
}
