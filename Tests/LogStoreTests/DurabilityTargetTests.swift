import Foundation
import Synchronization
import XCTest
@testable import LogStore

/// The commit group's second durability target (cluster mode's journal plugs in here) and the
/// durable-event stream: nothing of a group is published or completed before both the local
/// fdatasync and the target have it; a failed target fails the group (and the store); events
/// arrive in commit order with offsets and resource ids. No sleeps: the test holds the target's
/// answer and looks at the store while it is held.
final class DurabilityTargetTests: XCTestCase {
    var dir: TempDirectory!
    override func setUp() { dir = TempDirectory() }
    override func tearDown() { dir.cleanup() }

    struct TargetError: Error {}

    /// A target that records each group and answers only when the test says so.
    final class HeldTarget: DurabilityTarget {
        let groups = Mutex<[CommittedGroup]>([])
        private let answers = Mutex<(held: [@Sendable (Result<Void, any Error>) -> Void], auto: Bool)>(([], false))
        private let arrived = DispatchSemaphore(value: 0)

        func persist(_ group: CommittedGroup, done: @escaping @Sendable (Result<Void, any Error>) -> Void) {
            groups.withLock { $0.append(group) }
            let auto = answers.withLock { a in
                if !a.auto { a.held.append(done) }
                return a.auto
            }
            if auto { done(.success(())) } else { arrived.signal() }
        }

        /// From now on every group is answered at once (so that `close()` can drain).
        func answerEverything() {
            let held = answers.withLock { a in
                a.auto = true
                defer { a.held.removeAll() }
                return a.held
            }
            for done in held { done(.success(())) }
        }

        /// Waits for the next group to arrive (bounded; a missing group is a failure).
        func awaitGroup(file: StaticString = #filePath, line: UInt = #line) {
            if arrived.wait(timeout: .now() + 10) == .timedOut { XCTFail("no group reached the target", file: file, line: line) }
        }

        func answer(_ result: Result<Void, any Error>) {
            let done = answers.withLock { $0.held.removeFirst() }
            done(result)
        }
    }

    func open(target: (any DurabilityTarget)?, observer: (@Sendable (CommittedGroup) -> Void)? = nil,
              io: any FileIO = PosixFileIO(), directory: String? = nil) throws -> LogStore {
        var c = LogStoreConfig()
        c.durabilityTarget = target
        c.eventObserver = observer
        return try LogStore.open(directory: directory ?? dir.path, config: c, io: io,
                                 completions: InlineCompletionSink(), logger: LogCapture().logger)
    }

    func testNothingCompletesOrIsReadableBeforeTheSlowTargetAnswers() throws {
        let target = HeldTarget()
        let store = try open(target: target)
        defer {
            target.answerEverything()
            store.close()
        }
        let r = record("12345678/M1", payload(1, count: 300), ts: 7)
        let appended = Waiter<Result<[AppendOutcome], LogStoreError>>()
        store.append(partition(1), [r]) { appended.fulfil($0) }
        target.awaitGroup()
        // The writer waits for the target: the local fdatasync may be done, the group is not.
        XCTAssertNil(appended.wait(seconds: 0.2, expectingTimeout: true), "no completion before the target answered")
        XCTAssertEqual(store.durableEndOffset(partition(1)), 0, "nothing published to readers")
        XCTAssertEqual(try store.read(partition(1), from: 0, maxRecords: 10, maxBytes: 1 << 20), [])
        target.answer(.success(()))
        XCTAssertEqual(try appended.wait()?.get(), [.appended(offset: 0)])
        XCTAssertEqual(store.durableEndOffset(partition(1)), 1)
        XCTAssertEqual(target.groups.withLock { $0 }, [CommittedGroup(events: [
            .appended(partition: partition(1).description,
                      records: [Record(offset: 0, timestampMs: 7, id: r.id, key: r.key, payload: r.payload)]),
        ])])

        // A lease and an acknowledgement (one group or two, as the writer takes them): the ack
        // completes only after the target answered the group holding it.
        let acked = Waiter<Result<Void, LogStoreError>>()
        store.recordLease(partition(1), stream: 9, sequence: 1, offsets: [0])
        store.acknowledge(partition(1), offsets: [0]) { acked.fulfil($0) }
        var events: [StoreEvent] = []
        for _ in 0..<2 {
            target.awaitGroup()
            let group = target.groups.withLock { $0.last! }
            events += group.events
            if group.events.contains(where: { if case .acknowledged = $0 { true } else { false } }) {
                XCTAssertNil(acked.wait(seconds: 0.2, expectingTimeout: true), "no ack completion before the target answered")
                target.answer(.success(()))
                break
            }
            target.answer(.success(()))
        }
        XCTAssertNotNil(try acked.wait()?.get())
        XCTAssertEqual(Set(events.map { "\($0)" }), Set([
            StoreEvent.acknowledged(partition: partition(1).description, offsets: [0]),
            .leased(partition: partition(1).description, Lease(stream: 9, sequence: 1, offsets: [0])),
        ].map { "\($0)" }))
    }

    func testAFailedTargetFailsTheGroupAndTheStore() throws {
        let target = HeldTarget()
        let store = try open(target: target)
        defer {
            target.answerEverything()
            store.close()
        }
        let appended = Waiter<Result<[AppendOutcome], LogStoreError>>()
        store.append(partition(1), [record("12345678/M1", payload(1, count: 100))]) { appended.fulfil($0) }
        target.awaitGroup()
        target.answer(.failure(TargetError()))
        guard case .failure(.storeFailed(let why))? = appended.wait() else { return XCTFail("the append must fail") }
        XCTAssertTrue(why.contains("durability target failed"), why)
        XCTAssertEqual(store.durableEndOffset(partition(1)), 0, "never published")
        XCTAssertNotNil(store.failure)
        guard case .failure(.storeFailed) = store.appendAndWait(partition(1), [record("12345678/M2", payload(2, count: 10))]) else {
            return XCTFail("later appends are refused until reopen")
        }
    }

    func testAFailedLocalSyncFailsTheGroupEvenWhenTheTargetHasIt() throws {
        let fs = SimulatedFileIO(seed: 0x5EED)
        let target = HeldTarget()
        let store = try open(target: target, io: fs, directory: "/store")
        defer {
            target.answerEverything()
            store.close()
        }
        fs.faults.syncErrorProbability = 1
        let appended = Waiter<Result<[AppendOutcome], LogStoreError>>()
        store.append(partition(1), [record("12345678/M1", payload(1, count: 100))]) { appended.fulfil($0) }
        target.awaitGroup()
        target.answer(.success(()))
        guard case .failure(.storeFailed(let why))? = appended.wait() else { return XCTFail("the append must fail") }
        XCTAssertTrue(why.contains("fdatasync"), why)
        XCTAssertEqual(store.durableEndOffset(partition(1)), 0)
    }

    /// Observers get every durable group's events in commit order, partitions and kinds as
    /// committed, with the offsets and resource ids the appends were answered with.
    func testObserverSeesDurableEventsInCommitOrder() throws {
        let seen = Mutex<[StoreEvent]>([])
        let store = try open(target: nil, observer: { group in seen.withLock { $0 += group.events } })
        defer { store.close() }
        var expected: [StoreEvent] = []
        for i in 0..<5 {
            let p = partition(1 + i % 2)
            let r = record("12345678/E\(i)", payload(i, count: 50 + i))
            guard case .appended(let offset) = try store.appendAndWait(p, [r]).get()[0] else { return XCTFail() }
            expected.append(.appended(partition: p.description,
                                      records: [Record(offset: offset, timestampMs: r.timestampMs, id: r.id, key: r.key, payload: r.payload)]))
        }
        XCTAssertNoThrow(try store.acknowledgeAndWait(partition(2), [0, 1]).get())
        expected.append(.acknowledged(partition: partition(2).description, offsets: [0, 1]))
        // A duplicate is not an event: nothing new became durable.
        _ = try store.appendAndWait(partition(1), [record("12345678/E0", payload(0, count: 50))]).get()
        XCTAssertEqual(seen.withLock { $0 }, expected)
    }
}
