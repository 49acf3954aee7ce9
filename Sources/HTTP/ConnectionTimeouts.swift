/// Deadlines for one connection, named with units. See docs/configuration.md.
public struct TimeoutPolicy: Sendable, Equatable {
    /// Keep-alive connection with nothing buffered: closed silently after this.
    public var idleMs: UInt64 = 60_000
    /// From the first byte of a request to its last header byte (defeats trickled headers).
    public var headMs: UInt64 = 10_000
    /// From the end of the headers to the last body byte (defeats trickled bodies).
    public var bodyMs: UInt64 = 30_000
    /// Queued response bytes with no write progress for this long: the peer stopped reading.
    public var writeStallMs: UInt64 = 30_000
    /// TLS handshake from accept to completion.
    public var handshakeMs: UInt64 = 10_000

    public init() {}
}

public enum TimeoutKind: String, Sendable, Equatable {
    case idle, head, body, writeStall = "write-stall", handshake
}

/// The timeout state machine of a connection: a pure function of what the connection is doing
/// and the time, so that tests drive it with a manual clock. The connection reports its
/// situation after every event with `observe`, then arms its one timer at `deadlineMs`.
public struct ConnectionTimeouts: Sendable {
    public let policy: TimeoutPolicy
    public private(set) var deadlineMs: UInt64?
    public private(set) var kind: TimeoutKind?

    private var phase: HTTPRequestParser.Phase = .idle
    private var phaseSinceMs: UInt64
    private var lastWriteProgressMs: UInt64
    private var handshakeSinceMs: UInt64?
    private var handlerWasBusy = false
    private var writeWasPending = false
    /// A late timer already got its one turn of grace (below).
    private var lateGraceTaken = false

    /// A timer that fires this much after its deadline ran after a stall of the loop or of the
    /// whole process.
    public static let lateToleranceMs: UInt64 = 250

    /// `handshaking` is true for TLS connections, whose first deadline is the handshake's.
    public init(policy: TimeoutPolicy, nowMs: UInt64, handshaking: Bool = false) {
        self.policy = policy
        phaseSinceMs = nowMs
        lastWriteProgressMs = nowMs
        handshakeSinceMs = handshaking ? nowMs : nil
        recompute(handlerBusy: false, writePending: false)
    }

    /// The connection's situation now.
    /// - readPhase: what the request parser holds (idle, part of a head, part of a body).
    /// - handlerBusy: a request is being handled (no read deadline; the handler has its own).
    /// - writePending: response bytes wait in the queue or in flight.
    /// - wroteBytes: bytes were handed to the kernel since the last observation.
    /// - wroteAtMs: when they last were (at most `nowMs`); nil: now. Without it, progress made
    ///   just after one observation and reported by the next counts from the later one, and
    ///   a stalled connection is reset up to one allowance late.
    /// - handshakeDone: the TLS handshake has completed (ignored for plaintext).
    public mutating func observe(nowMs: UInt64, readPhase: HTTPRequestParser.Phase, handlerBusy: Bool,
                                 writePending: Bool, wroteBytes: Bool, wroteAtMs: UInt64? = nil,
                                 handshakeDone: Bool = true) {
        if handshakeDone, handshakeSinceMs != nil {
            handshakeSinceMs = nil
            phaseSinceMs = nowMs
        }
        if readPhase != phase || (handlerWasBusy && !handlerBusy) {
            // A trickling head keeps its original start: the deadline covers the whole head.
            // The end of a handler restarts the clock of whatever the parser holds.
            phase = readPhase
            phaseSinceMs = nowMs
        }
        handlerWasBusy = handlerBusy
        // The stall clock starts when output becomes pending, not at the last observation
        // before it: a response queued after a long handler (a long poll, a compression) into
        // a full socket gets the whole allowance, not a deadline already in the past.
        if !writePending || !writeWasPending {
            lastWriteProgressMs = nowMs
        } else if wroteBytes {
            lastWriteProgressMs = max(lastWriteProgressMs, min(wroteAtMs ?? nowMs, nowMs))
        }
        writeWasPending = writePending
        recompute(handlerBusy: handlerBusy, writePending: writePending)
    }

    private mutating func recompute(handlerBusy: Bool, writePending: Bool) {
        if let since = handshakeSinceMs {
            set(since + policy.handshakeMs, .handshake)
        } else if writePending {
            set(lastWriteProgressMs + policy.writeStallMs, .writeStall)
        } else if handlerBusy {
            deadlineMs = nil
            kind = nil
        } else {
            switch phase {
            case .idle: set(phaseSinceMs + policy.idleMs, .idle)
            case .head: set(phaseSinceMs + policy.headMs, .head)
            case .body: set(phaseSinceMs + policy.bodyMs, .body)
            }
        }
    }

    private mutating func set(_ deadline: UInt64, _ k: TimeoutKind) {
        deadlineMs = deadline
        kind = k
    }

    /// The timeout that has expired at `nowMs`, if any.
    public func expired(nowMs: UInt64) -> TimeoutKind? {
        guard let d = deadlineMs, nowMs >= d else { return nil }
        return kind
    }

    /// `expired` for the connection's timer firing at `nowMs`. libuv runs timers before it
    /// polls sockets, so a timer that fires more than `lateToleranceMs` after its deadline (the
    /// loop or the process stalled meanwhile) has not seen the write progress or the request
    /// bytes that arrived during the stall: it reports nothing once, and the connection asks
    /// again after one loop turn (its sockets polled). Only once in a row: a loop that stays
    /// stalled still ends its connections. (Without it, one long turn reset a connection whose
    /// client was reading all along.)
    public mutating func expiredAtTimer(nowMs: UInt64) -> TimeoutKind? {
        guard let d = deadlineMs, nowMs >= d else {
            lateGraceTaken = false
            return nil
        }
        if nowMs - d > Self.lateToleranceMs && !lateGraceTaken {
            lateGraceTaken = true
            return nil
        }
        lateGraceTaken = false
        return kind
    }
}
