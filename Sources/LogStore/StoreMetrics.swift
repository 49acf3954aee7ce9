import CoreMetrics

/// The store's metrics (names are documented in docs/storage.md).
struct StoreMetrics: Sendable {
    let appendedRecords: Counter
    let appendedBytes: Counter
    let duplicateRecords: Counter
    let rejectedOverloaded: Counter
    let rejectedInvalid: Counter
    let rejectedFailed: Counter
    let acknowledgedOffsets: Counter
    let journalFsync: CoreMetrics.Timer
    let segmentFsync: CoreMetrics.Timer
    let groupRecords: Recorder
    let groupBytes: Recorder
    let recoveryTruncations: Counter
    let recoveryTruncatedBytes: Counter
    let corruptReads: Counter
    let diskBytes: Gauge
    let partitions: Gauge
    let checkpoints: Counter
    let checkpointDuration: CoreMetrics.Timer
    let retentionSegmentsDeleted: Counter
    let retentionUnackedDropped: Counter
    let quarantined: Counter
    let idempotencyEntries: Gauge
    let idempotencyEvictedEarly: Counter
    let failures: Counter
    let openSegmentFiles: Gauge
    let segmentFilesEvicted: Counter

    init(factory: any MetricsFactory) {
        func counter(_ label: String, _ dims: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dims, factory: factory)
        }
        appendedRecords = counter("logstore_appended_records_total")
        appendedBytes = counter("logstore_appended_bytes_total")
        duplicateRecords = counter("logstore_duplicate_records_total")
        rejectedOverloaded = counter("logstore_append_rejected_total", [("reason", "overloaded")])
        rejectedInvalid = counter("logstore_append_rejected_total", [("reason", "invalid")])
        rejectedFailed = counter("logstore_append_rejected_total", [("reason", "failed")])
        acknowledgedOffsets = counter("logstore_acknowledged_offsets_total")
        journalFsync = CoreMetrics.Timer(label: "logstore_fsync_seconds", dimensions: [("file", "journal")], factory: factory)
        segmentFsync = CoreMetrics.Timer(label: "logstore_fsync_seconds", dimensions: [("file", "segment")], factory: factory)
        groupRecords = Recorder(label: "logstore_commit_group_records", dimensions: [], aggregate: true, factory: factory)
        groupBytes = Recorder(label: "logstore_commit_group_bytes", dimensions: [], aggregate: true, factory: factory)
        recoveryTruncations = counter("logstore_recovery_truncations_total")
        recoveryTruncatedBytes = counter("logstore_recovery_truncated_bytes_total")
        corruptReads = counter("logstore_corrupt_reads_total")
        diskBytes = Gauge(label: "logstore_disk_bytes", dimensions: [], factory: factory)
        partitions = Gauge(label: "logstore_partitions", dimensions: [], factory: factory)
        checkpoints = counter("logstore_checkpoints_total")
        checkpointDuration = CoreMetrics.Timer(label: "logstore_checkpoint_seconds", dimensions: [], factory: factory)
        retentionSegmentsDeleted = counter("logstore_retention_deleted_segments_total")
        retentionUnackedDropped = counter("logstore_retention_dropped_unacked_records_total")
        quarantined = counter("logstore_quarantined_total")
        idempotencyEntries = Gauge(label: "logstore_idempotency_entries", dimensions: [], factory: factory)
        idempotencyEvictedEarly = counter("logstore_idempotency_evicted_early_total")
        failures = counter("logstore_failures_total")
        openSegmentFiles = Gauge(label: "logstore_open_segment_files", dimensions: [], factory: factory)
        segmentFilesEvicted = counter("logstore_segment_files_closed_total")
    }
}
