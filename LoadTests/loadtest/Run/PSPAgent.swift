import Foundation
import TLS

/// One PSP: its certificate, its pull streams and its producers.
final class PSPAgent {
    let index: Int
    let ispb: String
    let tls: TLSContext?
    var streams: [PullStream] = []
    var producers: [Producer] = []
    /// Last request times of streams this PSP abandoned (the hub frees their slots
    /// `idleSeconds` later).
    private var abandonedAtMs: [UInt64] = []
    /// 429s on `stream/start` while fewer than the slot limit could have been in use.
    private(set) var unexpectedSlotRefusals = 0
    private(set) var slotRefusals = 0
    private let idleMs: UInt64
    private let slots: Int

    init(index: Int, ispb: String, tls: TLSContext?, idleSeconds: Int, slots: Int) {
        self.index = index
        self.ispb = ispb
        self.tls = tls
        idleMs = UInt64(idleSeconds) * 1000
        self.slots = slots
    }

    func abandoned(lastRequestMs: UInt64) { abandonedAtMs.append(lastRequestMs) }

    /// Details of refusals below the limit (the first few), for the report.
    private(set) var refusalSamples: [String] = []

    /// A `stream/start` got 429: expected only when our live streams plus the abandoned ones
    /// the hub may not have expired yet (idle time + its 1 s sweep + 1 s slack) fill the slots.
    func refusedStart(nowMs: UInt64, runStartMs: UInt64, head: ResponseHead) {
        slotRefusals += 1
        abandonedAtMs.removeAll { $0 + idleMs + 2000 < nowMs }
        let live = streams.filter(\.holdsServerStream).count
        if live + abandonedAtMs.count < slots {
            unexpectedSlotRefusals += 1
            if refusalSamples.count < 5 {
                refusalSamples.append("PSP \(ispb) at \(String(format: "%.1f", Double(nowMs - runStartMs) / 1000)) s: \(live) live + \(abandonedAtMs.count) recently abandoned streams; "
                                      + "hub says \(head.slotsUsed.map(String.init) ?? "?")/\(slots) used, Retry-After \(head.retryAfterSeconds ?? -1)")
            }
        }
    }
}
