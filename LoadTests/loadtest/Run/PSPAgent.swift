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

    /// A `stream/start` got 429: expected only when our live streams plus the abandoned ones
    /// the hub may not have expired yet (idle time + its 1 s sweep + 1 s slack) fill the slots.
    func refusedStart(nowMs: UInt64) {
        slotRefusals += 1
        abandonedAtMs.removeAll { $0 + idleMs + 2000 < nowMs }
        let live = streams.filter(\.holdsServerStream).count
        if live + abandonedAtMs.count < slots { unexpectedSlotRefusals += 1 }
    }
}
