/// A partition of the log: the messages addressed to one PSP in one region.
public struct PartitionKey: Hashable, Sendable, CustomStringConvertible {
    public let region: String
    public let ispb: String

    public init(region: String, ispb: String) {
        self.region = region
        self.ispb = ispb
    }

    /// Parses "<region>:<ispb>".
    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        self.init(region: String(text[..<colon]), ispb: String(text[text.index(after: colon)...]))
        guard isValid else { return nil }
    }

    /// "<region>:<ispb>": also the partition's directory name under `partitions/`.
    public var description: String { "\(region):\(ispb)" }

    /// Region: 1–32 of `a-z 0-9 - _`; ISPB: exactly 8 ASCII digits.
    public var isValid: Bool {
        let regionOK = (1...32).contains(region.utf8.count) && region.utf8.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x5f
        }
        let ispbOK = ispb.utf8.count == 8 && ispb.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        return regionOK && ispbOK
    }
}

/// The hub's 16-byte identifier of a stored message (the `PI-ResourceId`).
public struct ResourceID: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From 16 bytes, most significant first.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        var h: UInt64 = 0, l: UInt64 = 0
        for i in 0..<8 { h = h << 8 | UInt64(bytes[i]) }
        for i in 8..<16 { l = l << 8 | UInt64(bytes[i]) }
        self.init(high: h, low: l)
    }

    /// 16 bytes, most significant first.
    public var bytes: [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64($0))) }
    }

    /// 32 lower-case hex digits.
    public var description: String {
        func hex(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        return hex(high) + hex(low)
    }
}

/// A record to append.
public struct AppendRecord: Sendable {
    /// Idempotency key (the hub uses "<senderISPB>/<messageId>"); 1...`keyBytesMax` bytes.
    public var key: [UInt8]
    public var id: ResourceID
    public var payload: [UInt8]
    /// Receive time; also the clock of the dedup window and of age retention.
    public var timestampMs: Int64

    public init(key: [UInt8], id: ResourceID, payload: [UInt8], timestampMs: Int64) {
        self.key = key
        self.id = id
        self.payload = payload
        self.timestampMs = timestampMs
    }
}

/// A stored record, as read back.
public struct Record: Sendable, Equatable {
    public var offset: UInt64
    public var timestampMs: Int64
    public var id: ResourceID
    public var key: [UInt8]
    public var payload: [UInt8]

    public init(offset: UInt64, timestampMs: Int64, id: ResourceID, key: [UInt8], payload: [UInt8]) {
        self.offset = offset
        self.timestampMs = timestampMs
        self.id = id
        self.key = key
        self.payload = payload
    }
}

/// What happened to one record of an `append`.
public enum AppendOutcome: Sendable, Equatable {
    /// Stored durably at `offset`.
    case appended(offset: UInt64)
    /// The key was already stored (or pending): nothing new was stored.
    case duplicate(partition: PartitionKey, offset: UInt64, id: ResourceID)
}

/// Where a known idempotency key was stored.
public struct IdempotencyEntry: Sendable, Equatable {
    public var partition: PartitionKey
    public var offset: UInt64
    public var id: ResourceID
    public var timestampMs: Int64
}

/// Messages of one partition handed to a pull stream and not yet acknowledged.
public struct Lease: Sendable, Equatable {
    public var stream: UInt64
    public var sequence: UInt64
    public var offsets: [UInt64]

    public init(stream: UInt64, sequence: UInt64, offsets: [UInt64]) {
        self.stream = stream
        self.sequence = sequence
        self.offsets = offsets
    }
}

/// Durable consumer state of one partition.
public struct ConsumerState: Sendable, Equatable {
    /// Every offset below is acknowledged.
    public var ackFloor: UInt64
    /// Acknowledged offsets at or above the floor, ascending.
    public var ackedAboveFloor: [UInt64]
    /// Leases in flight, by stream, ascending.
    public var leases: [Lease]

    public init(ackFloor: UInt64 = 0, ackedAboveFloor: [UInt64] = [], leases: [Lease] = []) {
        self.ackFloor = ackFloor
        self.ackedAboveFloor = ackedAboveFloor
        self.leases = leases
    }

    public func isAcknowledged(_ offset: UInt64) -> Bool {
        offset < ackFloor || ackedAboveFloor.contains(offset)
    }
}

/// A rejected message kept for operators (`rtpstream inspect`).
public struct QuarantineEntry: Sendable, Equatable {
    public var timeMs: Int64
    /// Sender ISPB (or whatever identified the client).
    public var sender: String
    public var messageId: String?
    /// Stable reason code (the problem type).
    public var reasonCode: String
    public var detail: String
    /// The rejected bytes, capped at `quarantinePayloadBytesMax`.
    public var payload: [UInt8]
    /// Size of the payload before capping.
    public var payloadBytesOriginal: Int

    public init(timeMs: Int64, sender: String, messageId: String?, reasonCode: String,
                detail: String, payload: [UInt8]) {
        self.timeMs = timeMs
        self.sender = sender
        self.messageId = messageId
        self.reasonCode = reasonCode
        self.detail = detail
        self.payload = payload
        self.payloadBytesOriginal = payload.count
    }
}

/// A quarantine entry as read back, with its position in the quarantine log.
public struct QuarantineRecord: Sendable, Equatable {
    public var offset: UInt64
    public var entry: QuarantineEntry
}

/// What one `applyRetention` pass deleted.
public struct RetentionReport: Sendable, Equatable {
    public var segmentsDeleted = 0
    public var bytesDeleted: Int64 = 0
    /// Records deleted that were fully acknowledged and older than the retention age.
    public var recordsExpired: UInt64 = 0
    /// Unacknowledged records dropped because a size cap was exceeded (also logged at critical).
    public var unacknowledgedRecordsDropped: UInt64 = 0
    /// Partitions whose start offset moved.
    public var partitions: [String] = []

    public init() {}
}

/// Hands completions back to the caller's thread. The store calls user code only through
/// this (the server passes a libuv-async-backed sink).
public protocol CompletionSink: Sendable {
    func submit(_ work: @escaping @Sendable () -> Void)
}

/// Runs completions immediately on the store's writer thread. For tools and tests only.
public struct InlineCompletionSink: CompletionSink {
    public init() {}
    public func submit(_ work: @escaping @Sendable () -> Void) { work() }
}
