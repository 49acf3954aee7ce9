import Logging

/// Recovery: replaying the journals since the checkpoint.
extension Recovery {
    /// What `replayJournals` found.
    struct Replay {
        /// Journal files replayed, in order.
        var seqs: [UInt64] = []
        /// Where the last one's intact entries end, and whether a torn entry follows there.
        var endOfLast: Int64?
        var lastTorn = false
    }

    /// Replays journals from the checkpoint's sequence, in order, up to the first entry that is
    /// not intact (reported; later journal files are removed).
    mutating func replayJournals() throws(LogStoreError) -> Replay {
        let io = core.io
        let paths = core.paths
        let names: [String]
        do { names = try io.list(paths.journalDirectory) } catch { throw ioError(error) }
        var seqs: [UInt64] = []
        var spare = false
        for name in names {
            if name == "spare.wal" { spare = true; continue }
            if let seq = JournalFormat.seq(fromFileName: name) { seqs.append(seq) } else {
                try? io.remove("\(paths.journalDirectory)/\(name)")
            }
        }
        core.spareJournal.withLock { $0 = spare }
        seqs.sort()
        let start = checkpoint?.journalSeq ?? seqs.first ?? 1
        for seq in seqs where seq < start { try? io.remove(paths.journal(seq)) }
        var expectedSeq = start
        var result = Replay()
        var stopped = false
        for seq in seqs where seq >= start {
            let path = paths.journal(seq)
            if stopped || seq != expectedSeq {
                let bytes = (try? io.size(atPath: path)) ?? 0
                recordJournalCut(file: path, position: 0, bytes: bytes,
                                 reason: stopped ? "journal after a cut" : "journal sequence gap (expected \(expectedSeq))")
                try? io.remove(path)
                stopped = true
                continue
            }
            result.seqs.append(seq)
            expectedSeq = seq + 1
            let fd: FileDescriptor
            let size: Int64
            do {
                fd = try io.open(path, create: false)
                size = try io.size(fd)
            } catch { throw ioError(error) }
            defer { io.close(fd) }
            var scanner = FileScanner(io: io, file: fd, from: 0, limit: size)
            var failure: LogStoreError?
            let stop: FileScanner.Stop
            do {
                stop = try scanner.scan { buffer, at, _ in
                    switch JournalFormat.decode(buffer, at: at, seq: seq) {
                    case .entry(let entry, let total):
                        do { try apply(entry, buffer: buffer) } catch {
                            failure = error as? LogStoreError ?? .io("\(error)")
                            return .invalid("apply failed")
                        }
                        report.journalEntriesReplayed += 1
                        return .frame(totalBytes: total)
                    case .end:
                        return .invalid("end")
                    case .incomplete(let total):
                        return .incomplete(totalBytes: total)
                    case .invalid(let why):
                        return .invalid(why)
                    }
                }
            } catch { throw ioError(error) }
            if let failure { throw failure }
            // These entries are trusted from here on (the segments past the checkpoint are not
            // fsynced until the next checkpoint): make sure they are on disk, not only in the page
            // cache, where a failed fdatasync of the previous process may have left them "clean".
            if journalIsTruth && stop.position > 0 {
                try rewrite(fd, from: 0, to: stop.position)
                do { try io.sync(fd) } catch { throw ioError(error) }
            }
            switch stop.reason {
            case .invalid("end"), .end:
                result.endOfLast = stop.position
                result.lastTorn = false
            case .tornFrame, .invalid:
                result.endOfLast = stop.position
                result.lastTorn = true
                let why: String
                if case .invalid(let w) = stop.reason { why = w } else { why = "torn entry" }
                recordJournalCut(file: path, position: stop.position, bytes: size - stop.position,
                                 reason: "\(why): the commit group there was never acknowledged")
                stopped = true
            }
        }
        return result
    }

    mutating func recordJournalCut(file: String, position: Int64, bytes: Int64, reason: String) {
        report.cuts.append(RecoveryCut(log: "journal", file: file, position: position, bytes: bytes, firstOffset: nil, reason: reason))
        core.metrics.recoveryTruncations.increment()
        core.logger.error("recovery stopped the journal replay", metadata: [
            "file": "\(file)", "position": "\(position)", "bytesAfter": "\(bytes)", "reason": "\(reason)",
        ])
    }

    mutating func apply(_ entry: JournalFormat.Entry, buffer: UnsafeRawBufferPointer) throws(LogStoreError) {
        switch entry {
        case .append(let name, let count, let frames):
            guard name == StorePaths.quarantineName || PartitionKey(name) != nil,
                  let p = core.partition(named: name, create: true) else {
                core.logger.error("journal entry for an invalid partition name skipped", metadata: ["name": "\(name)"])
                return
            }
            guard p.failure == nil else { return }
            var next = p.writer.value.nextOffset
            var layout: [(offset: UInt64, bytes: Int, timestampMs: Int64)] = []
            var first: Int?
            var at = frames.lowerBound
            for _ in 0..<count {
                guard case .frame(let v) = RecordFrame.decode(UnsafeRawBufferPointer(rebasing: buffer[..<frames.upperBound]), at: at,
                                                              bodyBytesMax: RecordFrame.bodyBytesLimit) else {
                    throw LogStoreError.io("journal entry for \(name) holds an invalid record frame despite its checksum")
                }
                defer { at += v.totalBytes }
                journaled[p.number] = max(journaled[p.number] ?? 0, v.offset + 1)
                if v.offset < next, let known = scannedFrames[p.number], v.offset >= known.first,
                   v.offset - known.first < UInt64(known.frames.count) {
                    let seen = known.frames[Int(v.offset - known.first)]
                    if seen.crc != buffer.u32LE(at: at) || seen.id != v.id {
                        // A stale record (a cut that a power loss undid) where the journal has
                        // another: the journal wins.
                        try truncate(p, to: v.offset, reason: "differs from the journal's record at this offset (stale)")
                        scannedFrames[p.number]?.frames.removeLast(Int(next - v.offset))
                        next = v.offset
                    }
                }
                if v.offset < next {
                    if journalIsTruth {
                        rememberKey(UnsafeRawBufferPointer(rebasing: buffer[v.keyRange]), partition: p, offset: v.offset,
                                    timestampMs: v.timestampMs)
                    }
                    continue
                }
                if v.offset > next {
                    failPartition(p, "journal continues at offset \(v.offset) but the log ends at \(next)", end: v.offset)
                    return
                }
                first = first ?? at
                layout.append((v.offset, v.totalBytes, v.timestampMs))
                rememberKey(UnsafeRawBufferPointer(rebasing: buffer[v.keyRange]), partition: p, offset: v.offset, timestampMs: v.timestampMs)
                next += 1
            }
            guard let first, !layout.isEmpty else { return }
            do {
                try p.writeFrames(UnsafeRawBufferPointer(rebasing: buffer[first..<frames.upperBound]), layout: layout,
                                  segmentBytesMax: core.config.segmentBytesMax, indexIntervalBytes: core.config.indexIntervalBytes)
            } catch { throw ioError(error) }
            p.publish()
            report.recordsReplayed += layout.count
        case .ack(let name, let offsets):
            core.consumers.withLock { $0[name, default: AckTracker()].acknowledge(offsets) }
        case .lease(let name, let lease):
            core.consumers.withLock { $0[name, default: AckTracker()].recordLease(lease) }
        case .release(let name, let stream):
            core.consumers.withLock { $0[name, default: AckTracker()].releaseLease(stream: stream) }
        }
    }
}
