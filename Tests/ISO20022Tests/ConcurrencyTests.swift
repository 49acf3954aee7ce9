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
        // Joined pthreads: every thread has exited (and released its validator) before the end.
        runJoinedThreads(threadCount) { t in
            let validator = validators.current()
            instances.withLock { _ = $0.insert(ObjectIdentifier(validator)) }
            if validators.current() !== validator { mismatches.withLock { $0.append("thread \(t) got two validators") } }
            for round in 0..<rounds {
                for i in messages.indices {
                    let index = (i + t + round) % messages.count  // threads interleave differently
                    let outcome = validators.current().validate(messages[index])
                    if outcome != expected[index] {
                        mismatches.withLock { $0.append("thread \(t) \(Self.corpus[index]): \(outcome)") }
                    }
                }
            }
        }
        XCTAssertEqual(mismatches.withLock { $0 }, [])
        XCTAssertEqual(instances.withLock { $0.count }, threadCount, "one validator per thread")
    }
}

extension ConcurrencyTests {
    func testAThreadsValidatorIsReleasedWhenTheThreadExits() throws {
        final class WeakValidator: @unchecked Sendable { weak var value: Validator? }
        let validators = ThreadLocalValidators(registry: try SchemaRegistry.shipped(), directory: .empty)
        let observed = WeakValidator()
        runJoinedThreads(1) { _ in
            let validator = validators.current()
            observed.value = validator
            XCTAssertNotNil(validator.validate(Pacs008Generator(runTag: "THREAD01").make(sender: "11111111", recipient: "22222222", sequence: 1)).info)
        }
        XCTAssertNil(observed.value, "the pthread key destructor released the exited thread's validator")
    }
}

/// Runs `body(index)` on `count` new pthreads and joins them all.
func runJoinedThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Job: @unchecked Sendable {
        let index: Int
        let body: @Sendable (Int) -> Void
        init(_ index: Int, _ body: @escaping @Sendable (Int) -> Void) { self.index = index; self.body = body }
    }
    var threads: [pthread_t] = []
    for index in 0..<count {
        var thread = pthread_t()
        let job = Unmanaged.passRetained(Job(index, body)).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
            job.body(job.index)
            return nil
        }, job)
        precondition(rc == 0, "pthread_create: \(rc)")
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}
