import Logging

/// Retention: deletes whole sealed, checkpointed segments from the front of each log.
/// 1. Age: a segment whose records are all acknowledged and whose last record is older than
///    the retention age (quarantine: age only).
/// 2. Size caps (last resort): per partition, then store-wide (oldest first across partitions),
///    even when the segment holds unacknowledged records — counted and logged at critical.
struct Retention {
    let core: StoreCore
    let nowMs: Int64

    private struct Candidate {
        let partition: Partition
        var segments: [SegmentInfo]
        var bytes: Int64
        let floor: UInt64
        let isQuarantine: Bool
    }

    func apply() -> RetentionReport {
        var report = RetentionReport()
        let config = core.config
        var candidates: [Candidate] = core.allPartitions.map { p in
            let isQuarantine = p.key == nil
            let floor = isQuarantine ? UInt64.max : core.consumers.withLock { $0[p.name]?.floor ?? 0 }
            return p.state.withLock { s in
                Candidate(partition: p, segments: Array(s.segments.prefix { $0.sealed && $0.checkpointed }),
                          bytes: s.bytes, floor: floor, isQuarantine: isQuarantine)
            }
        }

        for i in candidates.indices {
            let c = candidates[i]
            let age = c.isQuarantine ? config.quarantineRetentionAgeMs : config.retentionAgeMs
            var expired = 0
            for info in c.segments {
                guard info.endOffset <= c.floor, let ts = lastTimestamp(c.partition, info), ts < nowMs - age else { break }
                expired += 1
            }
            for _ in 0..<expired where !candidates[i].segments.isEmpty { delete(&candidates[i], reason: "age", into: &report) }
            let cap = c.isQuarantine ? config.quarantineBytesMax : config.partitionBytesMax
            while candidates[i].bytes > cap, !candidates[i].segments.isEmpty {
                delete(&candidates[i], reason: "partition size cap", into: &report)
            }
        }
        if config.storeBytesMax > 0 {
            while candidates.reduce(0, { $0 + $1.bytes }) > config.storeBytesMax {
                var oldest: (index: Int, ts: Int64)?
                for (i, c) in candidates.enumerated() {
                    guard let first = c.segments.first else { continue }
                    let ts = lastTimestamp(c.partition, first) ?? Int64.min
                    if oldest.map({ ts < $0.ts }) ?? true { oldest = (i, ts) }
                }
                guard let victim = oldest else { break }
                delete(&candidates[victim.index], reason: "store size cap", into: &report)
            }
        }
        if report.segmentsDeleted > 0 {
            core.updateGauges()
            core.logger.info("retention deleted segments", metadata: [
                "segments": "\(report.segmentsDeleted)", "bytes": "\(report.bytesDeleted)",
                "unacknowledgedDropped": "\(report.unacknowledgedRecordsDropped)",
            ])
        }
        return report
    }

    /// Timestamp of the segment's last record (read once and remembered).
    private func lastTimestamp(_ p: Partition, _ info: SegmentInfo) -> Int64? {
        if let ts = info.lastTimestampMs { return ts }
        guard info.endOffset > info.base else { return nil }
        do {
            let records = try p.read(from: info.endOffset - 1, maxRecords: 1, maxBytes: 0,
                                     indexIntervalBytes: core.config.indexIntervalBytes)
            guard let last = records.first, last.offset == info.endOffset - 1 else { return nil }
            p.state.withLock { s in
                if let i = s.segments.firstIndex(where: { $0.segment === info.segment }) { s.segments[i].lastTimestampMs = last.timestampMs }
            }
            return last.timestampMs
        } catch {
            core.logger.error("retention cannot read a segment's last record; keeping it",
                              metadata: ["partition": "\(p.name)", "segment": "\(info.segment.logPath)", "error": "\(error)"])
            return nil
        }
    }

    /// Deletes the first candidate segment of `c`.
    private func delete(_ c: inout Candidate, reason: String, into report: inout RetentionReport) {
        guard !c.segments.isEmpty else { return }
        let info = c.segments.removeFirst()
        let removed = c.partition.state.withLock { s -> Bool in
            guard s.segments.count > 1, s.segments[0].segment === info.segment else { return false }
            s.segments.removeFirst()
            return true
        }
        guard removed else {
            c.segments.removeAll()
            return
        }
        c.bytes -= info.bytes
        try? core.io.remove(info.segment.logPath)
        try? core.io.remove(info.segment.indexPath)
        try? core.io.syncDirectory(c.partition.directory)
        report.segmentsDeleted += 1
        report.bytesDeleted += info.bytes
        if !report.partitions.contains(c.partition.name) { report.partitions.append(c.partition.name) }
        core.metrics.retentionSegmentsDeleted.increment()
        let records = info.endOffset - info.base
        let unacked = info.endOffset > c.floor ? info.endOffset - max(info.base, c.floor) : 0
        report.recordsExpired += records - unacked
        if unacked > 0 {
            report.unacknowledgedRecordsDropped += unacked
            core.metrics.retentionUnackedDropped.increment(by: Int(unacked))
            core.logger.critical("RETENTION DROPPED UNACKNOWLEDGED MESSAGES: size cap exceeded", metadata: [
                "partition": "\(c.partition.name)", "segment": "\(info.segment.logPath)", "reason": "\(reason)",
                "unacknowledged": "\(unacked)", "offsets": "\(max(info.base, c.floor))..<\(info.endOffset)",
            ])
        }
    }
}
