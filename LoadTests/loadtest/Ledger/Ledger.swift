/// The client-side model that checks the hub's delivery guarantees under load (DESIGN.md §1
/// "Pull semantics"). Pure logic: no sockets, no clock; times are passed in (milliseconds of
/// one monotonic clock).
///
/// What the client knows and when:
/// - a message was **sent** when its POST answered 201 with its `PI-ResourceId` (a pull may
///   deliver it before that answer arrives: such deliveries are reconciled when it does);
/// - it was **delivered** to a stream when a response of that stream carried its id;
/// - the stream **asked to acknowledge** it when it followed the pointer of that batch (GET
///   or DELETE); the acknowledgement is **confirmed** by a 200/204 answer to that request;
/// - the stream was **abandoned** when the client stopped using it without DELETE (the hub
///   may expire it `idleMs` after its last request, not earlier);
/// - the stream is **gone** when the hub answered 404/410 to one of its pointers.
///
/// Violations:
/// - `lost`: sent, never delivered by the end of the run;
/// - `deliveredAfterAck`: delivered again after its acknowledgement was requested and confirmed;
/// - `leasedTwice`: delivered to a stream while another stream held it (not acknowledged,
///   not released by abandonment + idle time, not released by the hub's 404/410);
/// - `unexplainedRedelivery`: delivered to the same stream again other than by a pointer retry;
/// - `retryMismatch`: a retried pointer did not return the same ids and pointer;
/// - `wrongRecipient`: delivered to a PSP that is not its recipient;
/// - `lengthMismatch`: the delivered body's size differs from the size sent under that id;
/// - `unknownID`: delivered but never sent in this run (only when `unknownIDsAreViolations`);
/// - `pointerGap`: a pointer of a live stream answered with something else than 200/204/429;
/// - `malformed`: a response the client could not read (no id in a part, bad multipart).
final class Ledger {
    struct Config {
        /// The hub's `--stream-idle-seconds`, in ms.
        var idleMs: UInt64
        /// Slack for the hub's cached loop time when judging an abandoned stream's expiry.
        var expiryToleranceMs: UInt64 = 1000
        /// Ids never sent in this run are violations (spawned hubs start empty).
        var unknownIDsAreViolations = true
        /// Sent messages never delivered are violations (false when the run does not drain).
        var lostAreViolations = true
        /// Ids listed per violation kind in the report.
        var sampleIDsMax = 50
    }

    enum Kind: String, CaseIterable {
        case lost, deliveredAfterAck, leasedTwice, unexplainedRedelivery, retryMismatch
        case wrongRecipient, lengthMismatch, unknownID, pointerGap, malformed
    }

    struct Violation: CustomStringConvertible {
        let kind: Kind
        let id: ResourceKey?
        let stream: UInt32
        let other: UInt32
        let atMs: UInt64
        let detail: String

        var description: String {
            var s = "\(kind.rawValue)"
            if let id { s += " id=\(id)" }
            if stream != 0 { s += " stream=\(stream)" }
            if other != 0 { s += " holder=\(other)" }
            if !detail.isEmpty { s += " (\(detail))" }
            return s
        }
    }

    private struct Flags: OptionSet {
        let rawValue: UInt8
        static let sent = Flags(rawValue: 1)
        static let acked = Flags(rawValue: 2)
        static let ackPending = Flags(rawValue: 4)
        /// Held by a stream the client abandoned (counted in `heldByAbandoned`).
        static let abandonedHold = Flags(rawValue: 8)
    }

    private struct Entry {
        var length: UInt32 = 0
        /// Recipient PSP when sent; before that, the PSP of the first delivery.
        var psp: UInt16 = .max
        var deliveries: UInt16 = 0
        var holder: UInt32 = 0
        var flags: Flags = []
    }

    private struct StreamRecord {
        let psp: UInt16
        var lastRequestMs: UInt64 = 0
        var abandoned = false
        var gone = false
    }

    private struct Suspect {
        let kind: Kind
        let id: ResourceKey
        let stream: UInt32
        let holder: UInt32
        let atMs: UInt64
    }

    let config: Config
    private var entries: [ResourceKey: Entry] = [:]
    private var streams: [StreamRecord] = []   // index = stream id - 1
    private var suspects: [Suspect] = []
    private(set) var violations: [Violation] = []
    private(set) var violationCounts: [Kind: Int] = [:]

    // Counters.
    private(set) var sentCount = 0
    private(set) var sentAgain = 0
    private(set) var deliveries = 0
    private(set) var firstDeliveries = 0
    private(set) var redeliveredByRetry = 0
    private(set) var redeliveredAfterAbandon = 0
    private(set) var redeliveredAfterGone = 0
    private(set) var ackedCount = 0
    /// Sent and not yet delivered.
    private(set) var sentUndelivered = 0
    /// Held by abandoned streams, waiting for the hub to expire them and redeliver.
    private(set) var heldByAbandoned = 0
    private(set) var unknownDelivered = 0

    init(config: Config) {
        self.config = config
    }

    /// Nothing is waiting to be delivered: every sent message was delivered and no batch of
    /// an abandoned stream awaits redelivery.
    var isDrained: Bool { sentUndelivered == 0 && heldByAbandoned == 0 }

    func reserve(messages: Int) { entries.reserveCapacity(messages) }

    // MARK: streams

    /// Registers a new stream of PSP `psp`; returns its id (≥ 1).
    func openStream(psp: Int) -> UInt32 {
        streams.append(StreamRecord(psp: UInt16(psp)))
        return UInt32(streams.count)
    }

    var streamCount: Int { streams.count }

    /// The stream sent a request (slides its lease on the hub).
    func requestSent(stream: UInt32, nowMs: UInt64) {
        streams[Int(stream) - 1].lastRequestMs = nowMs
    }

    /// The client stops using the stream without DELETE; `held` is its unacknowledged batch.
    func abandoned(stream: UInt32, held: [ResourceKey]) {
        streams[Int(stream) - 1].abandoned = true
        for id in held {
            guard var e = entries[id], e.holder == stream, !e.flags.contains(.acked) else { continue }
            e.flags.remove(.ackPending)
            if !e.flags.contains(.abandonedHold) {
                e.flags.insert(.abandonedHold)
                heldByAbandoned += 1
            }
            entries[id] = e
        }
    }

    /// The hub answered 404/410 to a pointer of the stream: the stream is closed there and its
    /// batch `held` went back to the queue (nothing of it was acknowledged).
    func gone(stream: UInt32, held: [ResourceKey]) {
        streams[Int(stream) - 1].gone = true
        for id in held {
            guard var e = entries[id], e.holder == stream else { continue }
            e.flags.remove(.ackPending)
            entries[id] = e
        }
    }

    // MARK: messages

    /// A POST answered 201 for a message of `length` bytes addressed to PSP `recipient`.
    func sent(_ id: ResourceKey, recipient: Int, length: Int, nowMs: UInt64) {
        var e = entries[id] ?? Entry()
        if e.flags.contains(.sent) {
            // Idempotent resend: the same id again.
            sentAgain += 1
            if Int(e.psp) != recipient || Int(e.length) != length {
                record(.wrongRecipient, id: id, stream: 0, other: 0, atMs: nowMs,
                       detail: "resend returned an id already used for another message")
            }
            return
        }
        sentCount += 1
        if e.deliveries > 0 {
            // Delivered before its 201 arrived: check what the delivery saw.
            unknownDelivered -= 1
            if Int(e.psp) != recipient {
                record(.wrongRecipient, id: id, stream: e.holder, other: 0, atMs: nowMs,
                       detail: "delivered to PSP #\(e.psp), addressed to PSP #\(recipient)")
            }
            if Int(e.length) != length {
                record(.lengthMismatch, id: id, stream: e.holder, other: 0, atMs: nowMs,
                       detail: "delivered \(e.length) bytes, sent \(length)")
            }
        } else {
            sentUndelivered += 1
        }
        e.flags.insert(.sent)
        e.psp = UInt16(recipient)
        e.length = UInt32(length)
        entries[id] = e
    }

    /// A response of `stream` carried `parts`; `retry` when it answered a retried pointer.
    func delivered(stream: UInt32, parts: [PartInfo], retry: Bool, nowMs: UInt64) {
        for part in parts {
            guard let id = part.resourceID else {
                record(.malformed, id: nil, stream: stream, other: 0, atMs: nowMs, detail: "part without a PI-ResourceId")
                continue
            }
            delivered(stream: stream, id: id, bodyBytes: part.bodyBytes, retry: retry, nowMs: nowMs)
        }
    }

    func delivered(stream: UInt32, id: ResourceKey, bodyBytes: Int, retry: Bool, nowMs: UInt64) {
        deliveries += 1
        let psp = streams[Int(stream) - 1].psp
        var e = entries[id] ?? Entry()
        if e.flags.contains(.sent) {
            if e.psp != psp {
                record(.wrongRecipient, id: id, stream: stream, other: 0, atMs: nowMs,
                       detail: "delivered to PSP #\(psp), addressed to PSP #\(e.psp)")
            }
            if Int(e.length) != bodyBytes {
                record(.lengthMismatch, id: id, stream: stream, other: 0, atMs: nowMs,
                       detail: "delivered \(bodyBytes) bytes, sent \(e.length)")
            }
        } else if e.deliveries == 0 {
            unknownDelivered += 1
            e.psp = psp
            e.length = UInt32(bodyBytes)
        }

        if e.flags.contains(.acked) {
            record(.deliveredAfterAck, id: id, stream: stream, other: e.holder, atMs: nowMs,
                   detail: "acknowledged before (delivery #\(e.deliveries + 1))")
        } else if e.holder != 0 {
            let h = streams[Int(e.holder) - 1]
            if e.holder == stream {
                if retry {
                    redeliveredByRetry += 1
                } else {
                    record(.unexplainedRedelivery, id: id, stream: stream, other: stream, atMs: nowMs,
                           detail: "same stream again without a pointer retry")
                }
            } else if e.flags.contains(.ackPending) {
                // Its holder asked to acknowledge it; only the hub's 404/410 to that request
                // (seen later, maybe) can explain this.
                suspects.append(Suspect(kind: .deliveredAfterAck, id: id, stream: stream, holder: e.holder, atMs: nowMs))
            } else if h.abandoned && nowMs + config.expiryToleranceMs >= h.lastRequestMs + config.idleMs {
                redeliveredAfterAbandon += 1
            } else if h.gone {
                redeliveredAfterGone += 1
            } else {
                suspects.append(Suspect(kind: .leasedTwice, id: id, stream: stream, holder: e.holder, atMs: nowMs))
            }
        } else if e.deliveries > 0 {
            record(.unexplainedRedelivery, id: id, stream: stream, other: 0, atMs: nowMs,
                   detail: "delivered again after being released")
        }
        if e.deliveries == 0 && e.flags.contains(.sent) { sentUndelivered -= 1 }
        if e.flags.contains(.abandonedHold) && e.holder != stream {
            e.flags.remove(.abandonedHold)
            heldByAbandoned -= 1
        }
        if e.deliveries == 0 { firstDeliveries += 1 }
        e.deliveries &+= 1
        e.holder = stream
        e.flags.remove(.ackPending)
        entries[id] = e
    }

    /// `stream` followed the pointer of the batch `ids` (GET next or DELETE).
    func ackRequested(stream: UInt32, ids: [ResourceKey]) {
        for id in ids {
            guard var e = entries[id], e.holder == stream, !e.flags.contains(.acked) else { continue }
            e.flags.insert(.ackPending)
            entries[id] = e
        }
    }

    /// The hub answered 200/204 to that request: the batch is acknowledged durably.
    func ackConfirmed(stream: UInt32, ids: [ResourceKey]) {
        for id in ids {
            guard var e = entries[id], !e.flags.contains(.acked) else { continue }
            if e.holder != stream && e.holder != 0 { continue }  // redelivered elsewhere meanwhile (a suspect)
            e.flags.remove(.ackPending)
            e.flags.insert(.acked)
            if e.flags.contains(.abandonedHold) {
                e.flags.remove(.abandonedHold)
                heldByAbandoned -= 1
            }
            e.holder = 0
            ackedCount += 1
            entries[id] = e
        }
    }

    /// A violation observed outside the per-id rules (retry mismatch, pointer gap, malformed).
    func record(_ kind: Kind, id: ResourceKey?, stream: UInt32, other: UInt32, atMs: UInt64, detail: String) {
        violationCounts[kind, default: 0] += 1
        if violationCounts[kind]! <= config.sampleIDsMax {
            violations.append(Violation(kind: kind, id: id, stream: stream, other: other, atMs: atMs, detail: detail))
        }
    }

    // MARK: the verdict

    struct Report {
        var sent = 0
        var sentAgain = 0
        var deliveries = 0
        var delivered = 0
        var redeliveredByRetry = 0
        var redeliveredAfterAbandon = 0
        var redeliveredAfterGone = 0
        var acknowledged = 0
        /// Delivered but not acknowledged when the run ended (held by abandoned streams that
        /// had not expired yet, or by streams whose last DELETE failed).
        var unacknowledgedAtEnd = 0
        var unknownDelivered = 0
        var streams = 0
        var violationCounts: [Kind: Int] = [:]
        var violations: [Violation] = []

        var violationTotal: Int { violationCounts.values.reduce(0, +) }
    }

    /// Resolves the suspects and checks every sent message; call once at the end. `complete`:
    /// the run ended normally (otherwise undelivered messages are not counted as lost).
    func finish(nowMs: UInt64, complete: Bool = true) -> Report {
        for s in suspects {
            let h = streams[Int(s.holder) - 1]
            if h.gone {
                redeliveredAfterGone += 1
            } else {
                record(s.kind, id: s.id, stream: s.stream, other: s.holder, atMs: s.atMs,
                       detail: s.kind == .leasedTwice ? "holder neither acknowledged, abandoned nor gone"
                                                      : "holder's acknowledgement was confirmed")
            }
        }
        suspects.removeAll()
        var unacked = 0
        for (id, e) in entries {
            if !e.flags.contains(.sent) {
                if config.unknownIDsAreViolations {
                    record(.unknownID, id: id, stream: e.holder, other: 0, atMs: nowMs, detail: "never sent in this run")
                }
                continue
            }
            if e.deliveries == 0 {
                guard config.lostAreViolations && complete else { continue }
                record(.lost, id: id, stream: 0, other: 0, atMs: nowMs, detail: "sent (201), never delivered")
            } else if !e.flags.contains(.acked) {
                unacked += 1
            }
        }
        var r = Report()
        r.sent = sentCount
        r.sentAgain = sentAgain
        r.deliveries = deliveries
        r.delivered = firstDeliveries
        r.redeliveredByRetry = redeliveredByRetry
        r.redeliveredAfterAbandon = redeliveredAfterAbandon
        r.redeliveredAfterGone = redeliveredAfterGone
        r.acknowledged = ackedCount
        r.unacknowledgedAtEnd = unacked
        r.unknownDelivered = unknownDelivered
        r.streams = streams.count
        r.violationCounts = violationCounts
        r.violations = violations
        return r
    }
}
