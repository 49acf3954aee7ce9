import CoreMetrics

/// Limits and defaults of the store: the one table (docs/storage.md mirrors it).
public struct LogStoreConfig: Sendable {
    // Segments and index
    /// A segment is rolled before a record would take it past this size.
    public var segmentBytesMax = 64 << 20
    /// One sparse index entry per this many bytes of log.
    public var indexIntervalBytes = 4096

    /// Newest durable records kept in memory per partition for readers of the tail (a pull of
    /// messages just sent costs no disk read and no checksum); 0 turns the cache off.
    public var tailCacheBytesMax = 1 << 20

    /// Segment files kept open at most, over all partitions: beyond it the least recently used
    /// idle ones close and reopen on their next use. Bounds the descriptors that partitions of
    /// many (or invented) recipients can take.
    public var openSegmentsMax = 1024

    /// A second durability target every commit group must reach before anything of it is
    /// acknowledged (cluster mode's journal); nil: the local journal's fdatasync alone.
    public var durabilityTarget: (any DurabilityTarget)?
    /// Called on the writer thread with each durable group's events, in commit order, before
    /// the group's completions run (replicas, long-poll wake-ups). Must not block.
    public var eventObserver: (@Sendable (CommittedGroup) -> Void)?

    // Group commit
    /// A commit group holds at most this many records...
    public var groupRecordsMax = 8192
    /// ...and at most this many journal bytes (one append is never split).
    public var groupBytesMax = 8 << 20
    /// Latency bound: how long the writer may wait for more work after the first queued
    /// operation before committing. 0 commits at once (batching then comes from the work that
    /// queued during the previous fdatasync).
    public var groupWaitMicros = 0

    // Back-pressure
    /// Appends beyond these queued totals fail with `.overloaded`.
    public var queueBytesMax = 64 << 20
    public var queueOpsMax = 100_000

    // Records
    public var keyBytesMax = 256
    public var payloadBytesMax = 4 << 20
    /// Records per `append` call.
    public var batchRecordsMax = 1024

    // Journal and checkpoints
    /// A checkpoint starts (and the journal rolls to a new file) when the journal reaches this
    /// size; also the size journal files are preallocated to. Bounds the replay at open.
    public var journalBytesMax = 64 << 20

    // Idempotency
    /// Keys are remembered for this long after their record's timestamp...
    public var dedupWindowMs: Int64 = 3_600_000
    /// ...and at most this many keys are remembered (the oldest are forgotten early, counted).
    public var idempotencyEntriesMax = 4_000_000

    // Retention
    /// Fully acknowledged segments whose last record is older than this are deleted.
    public var retentionAgeMs: Int64 = 7 * 86_400_000
    /// Per-partition size cap (last resort: drops the oldest segments even if unacknowledged).
    public var partitionBytesMax: Int64 = 16 << 30
    /// Store-wide size cap over all partitions; 0 disables it.
    public var storeBytesMax: Int64 = 0

    // Quarantine
    public var quarantineRetentionAgeMs: Int64 = 30 * 86_400_000
    public var quarantineBytesMax: Int64 = 1 << 30
    /// Rejected payloads are kept up to this size.
    public var quarantinePayloadBytesMax = 64 << 10

    /// Wall clock in milliseconds (dedup window, checkpoint interval). Injectable for tests.
    public var nowMs: @Sendable () -> Int64 = { Clock.wallMilliseconds() }
    /// Metrics go here; nil means the global `MetricsSystem.factory`.
    public var metricsFactory: (any MetricsFactory)?

    /// Deterministic mode for the simulation tests: no threads; the test calls `pump()`.
    var manualPumping = false

    public init() {}

    /// Largest body a segment frame can have under these limits.
    var frameBodyBytesMax: Int { RecordFrame.fixedBodyBytes + keyBytesMax + payloadBytesMax }

    func validate() throws(LogStoreError) {
        func check(_ ok: Bool, _ what: String) throws(LogStoreError) {
            if !ok { throw LogStoreError.invalidConfiguration(what) }
        }
        try check(segmentBytesMax >= 4096 && segmentBytesMax <= 1 << 30, "segmentBytesMax in 4 KiB...1 GiB")
        try check(indexIntervalBytes >= 64, "indexIntervalBytes >= 64")
        try check(groupRecordsMax >= 1 && groupBytesMax >= 4096, "group limits")
        try check(groupWaitMicros >= 0 && groupWaitMicros <= 1_000_000, "groupWaitMicros in 0...1s")
        try check(queueBytesMax >= groupBytesMax && queueOpsMax >= 1, "queue limits")
        try check(keyBytesMax >= 1 && keyBytesMax <= Int(UInt16.max), "keyBytesMax in 1...65535")
        try check(payloadBytesMax >= 0 && payloadBytesMax <= RecordFrame.payloadBytesLimit, "payloadBytesMax <= 64 MiB")
        try check(payloadBytesMax + keyBytesMax + 64 <= segmentBytesMax,
                  "a maximal record must fit a segment")
        try check(batchRecordsMax >= 1, "batchRecordsMax >= 1")
        try check(openSegmentsMax >= 1, "openSegmentsMax >= 1")
        try check(journalBytesMax >= 1 << 16, "journalBytesMax >= 64 KiB")
        try check(dedupWindowMs >= 0 && idempotencyEntriesMax >= 1, "idempotency limits")
        try check(retentionAgeMs >= 0 && partitionBytesMax >= Int64(segmentBytesMax) && storeBytesMax >= 0,
                  "retention limits")
        try check(quarantinePayloadBytesMax >= 0 && quarantinePayloadBytesMax + 4096 <= payloadBytesMax,
                  "quarantinePayloadBytesMax + 4 KiB (entry fields) must fit payloadBytesMax")
    }
}
