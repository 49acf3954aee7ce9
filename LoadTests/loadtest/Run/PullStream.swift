import Foundation

/// One pull stream of a PSP on its own keep-alive connection, as an ICOM client runs it:
/// `stream/start`, then follow each `PI-Pull-Next` (which acknowledges the batch received
/// with it), now and then retry the previous pointer (a lost response), and after a random
/// number of batches DELETE the pointer or abandon the stream. Obeys `Retry-After`.
/// Everything it sees goes to the run's ledger.
final class PullStream: PacedClient {
    private enum Pending { case none, start, next, retry, delete }
    /// Messages in a full multipart batch.
    static let batchMax = 10

    unowned let run: Run
    unowned let psp: PSPAgent
    let connection: ClientConnection
    private(set) var ledgerID: UInt32 = 0
    /// The current pointer (path); nil before `start` answered.
    private var pointer: [UInt8]?
    /// The pointer that was followed to get `held` (for retries).
    private var previous: [UInt8]?
    /// Ids delivered with `pointer`, not yet acknowledged.
    private var held: [ResourceKey] = []
    private var batchesLeft = Int.max
    private var pending = Pending.none
    /// The request in flight is a repeat after a failed attempt.
    private var repeating = false
    private var parts: [PartInfo] = []
    private(set) var stopped = true
    private var waiting = false
    /// When the stream last got a 200/204, and the 429s since (for pointer-gap reports).
    private var lastAnsweredMs: UInt64 = 0
    private var refusedSinceAnswer = 0

    init(run: Run, psp: PSPAgent, connection: ClientConnection) {
        self.run = run
        self.psp = psp
        self.connection = connection
        parts.reserveCapacity(16)
    }

    /// Holds a stream on the hub (has a pointer, or its start is in flight).
    var holdsServerStream: Bool { pointer != nil || pending == .start }

    /// Opens a new stream (the first one, or after DELETE / abandonment).
    func begin() {
        stopped = false
        ledgerID = run.ledger.openStream(psp: psp.index)
        pointer = nil
        previous = nil
        held = []
        batchesLeft = run.scenario.batchesPerStream.map { run.rng.int($0) } ?? Int.max
        awaitTicket()
    }

    private func awaitTicket() {
        waiting = true
        run.pullPacer.request(self)
    }

    private func after(seconds: Int) {
        waiting = true
        run.delays.after(ms: UInt64(max(1, seconds)) * 1000) { [self] in
            guard !stopped else { return }
            awaitTicket()
        }
    }

    private func afterMs(_ ms: UInt64, _ action: @escaping () -> Void) {
        waiting = true
        run.delays.after(ms: ms) { [self] in
            guard !stopped else { return }
            waiting = false
            action()
        }
    }

    func ticketGranted() {
        waiting = false
        guard !stopped else { return }
        if run.isClosing {
            return pointer == nil ? stop() : sendDelete()
        }
        if pointer == nil { sendStart() } else { sendNext() }
    }

    /// The run is closing: a stream that is idle acts now.
    func closeSoon() {
        guard !stopped, pending == .none, !waiting else { return }
        pointer == nil ? stop() : sendDelete()
    }

    private func stop() {
        stopped = true
        pending = .none
        run.streamStopped(self)
    }

    // MARK: requests

    private func issue(_ kind: Pending, _ method: String, _ target: [UInt8]) {
        pending = kind
        let nowMs = run.loop.nowMs
        run.ledger.requestSent(stream: ledgerID, nowMs: nowMs)
        let request = Requests.make(method, target: target, host: run.hostHeader,
                                    extra: run.scenario.multipart ? Requests.acceptMultipart : Requests.acceptXML)
        connection.send(request, timeoutMs: run.scenario.requestTimeoutMs) { [unowned self] result in
            pending = .none
            switch result {
            case .success(let response):
                handle(kind, response)
            case .failure(let failure):
                failed(kind, failure)
            }
        }
    }

    private func sendStart() {
        repeating = false
        issue(.start, "GET", run.startPath(psp))
    }

    private func sendNext() {
        if !held.isEmpty { run.ledger.ackRequested(stream: ledgerID, ids: held) }
        issue(.next, "GET", pointer!)
    }

    private func sendRetry() {
        issue(.retry, "GET", previous!)
    }

    private func sendDelete() {
        if !held.isEmpty { run.ledger.ackRequested(stream: ledgerID, ids: held) }
        issue(.delete, "DELETE", pointer!)
    }

    // MARK: responses

    private func handle(_ kind: Pending, _ response: Response) {
        let status = response.head.status
        let route: Route
        switch kind {
        case .start: route = .start
        case .next: route = status == 204 ? .nextEmpty : .next
        case .retry: route = .retry
        case .delete: route = .delete
        case .none: preconditionFailure()
        }
        run.recorder.record(route, status: status, latencyNs: response.latencyNs)
        if status == 200 || status == 204 {
            lastAnsweredMs = run.loop.nowMs
            refusedSinceAnswer = 0
        } else if status == 429 {
            refusedSinceAnswer += 1
        }
        switch kind {
        case .start: startAnswered(response)
        case .next: nextAnswered(response)
        case .retry: retryAnswered(response)
        case .delete: deleteAnswered(response)
        case .none: break
        }
    }

    private func startAnswered(_ r: Response) {
        switch r.head.status {
        case 200, 204:
            guard let next = r.head.pullNext else { return malformed("no PI-Pull-Next on \(r.head.status)") }
            guard readBatch(r) else { return }
            pointer = next
            previous = nil
            held = parts.compactMap(\.resourceID)
            if r.head.status == 200 { batchesLeft -= 1 }
            proceed()
        case 429:
            run.tooMany(r.head)
            if r.head.slots { psp.refusedStart(nowMs: run.loop.nowMs, runStartMs: run.recorder.startMs, head: r.head) }
            after(seconds: r.head.retryAfterSeconds ?? 1)
        default:
            run.unexpectedStatus(.start, r.head.status)
            after(seconds: 1)
        }
    }

    private func nextAnswered(_ r: Response) {
        switch r.head.status {
        case 200, 204:
            guard let next = r.head.pullNext else { return malformed("no PI-Pull-Next on \(r.head.status)") }
            if !held.isEmpty { run.ledger.ackConfirmed(stream: ledgerID, ids: held) }
            guard readBatch(r) else { return }
            let followed = pointer
            pointer = next
            held = parts.compactMap(\.resourceID)
            if r.head.status == 200 {
                previous = followed
                batchesLeft -= 1
                if !run.isDraining && !run.isClosing && run.rng.chance(run.scenario.retryFraction) {
                    return sendRetry()
                }
            }
            proceed()
        case 429:
            // Refused before anything happened: the same pointer again after Retry-After.
            run.tooMany(r.head)
            after(seconds: r.head.retryAfterSeconds ?? 1)
        case 404, 410:
            pointerGone("GET of the current pointer", status: r.head.status)
            lost()
        default:
            run.unexpectedStatus(.next, r.head.status)
            after(seconds: 1)
        }
    }

    private func retryAnswered(_ r: Response) {
        switch r.head.status {
        case 200:
            guard readBatch(r, retry: true) else { return }
            let ids = parts.compactMap(\.resourceID)
            if ids != held || r.head.pullNext != pointer {
                run.ledger.record(.retryMismatch, id: ids.first, stream: ledgerID, other: 0, atMs: run.loop.nowMs,
                                  detail: "retried pointer returned \(ids.count) ids \(ids == held ? "(same)" : "(different)"), "
                                      + "pointer \(r.head.pullNext == pointer ? "same" : "different")")
            }
            run.retriesChecked += 1
            proceed()
        case 429:
            run.tooMany(r.head)
            proceed()
        case 404, 410:
            pointerGone("retry of the previous pointer", status: r.head.status)
            lost()
        default:
            run.unexpectedStatus(.retry, r.head.status)
            proceed()
        }
    }

    private func deleteAnswered(_ r: Response) {
        switch r.head.status {
        case 200:
            if !held.isEmpty { run.ledger.ackConfirmed(stream: ledgerID, ids: held) }
            ended()
        case 410 where repeating:
            // The first DELETE was carried out; its answer was lost.
            if !held.isEmpty { run.ledger.ackConfirmed(stream: ledgerID, ids: held) }
            ended()
        case 404, 410:
            pointerGone("DELETE of the current pointer", status: r.head.status)
            ended()
        default:
            // Not closed as asked: the client gives up on it (the hub expires it).
            run.unexpectedStatus(.delete, r.head.status)
            run.ledger.abandoned(stream: ledgerID, held: held)
            psp.abandoned(lastRequestMs: run.loop.nowMs)
            ended()
        }
    }

    /// Reads the batch of a 200 into `parts` and the ledger; false (and the stream is
    /// abandoned) when the body cannot be read.
    private func readBatch(_ r: Response, retry: Bool = false) -> Bool {
        parts.removeAll(keepingCapacity: true)
        guard r.head.status == 200 else { return true }
        if let boundary = r.head.boundary {
            do {
                try PartScanner.scan(r.body, boundary: boundary, into: &parts)
            } catch {
                malformed("\(error)")
                return false
            }
        } else {
            parts.append(PartInfo(resourceID: r.head.resourceID, status: nil, bodyBytes: r.body.count))
        }
        if parts.isEmpty {
            malformed("200 without messages")
            return false
        }
        run.ledger.delivered(stream: ledgerID, parts: parts, retry: retry, nowMs: run.loop.nowMs)
        if !retry { run.batchReceived(r.body, parts: parts.count) }
        return true
    }

    /// "x.y s after the stream's last 200/204, n 429s since".
    private func sinceAnswer() -> String {
        String(format: "%.1f s after the stream's last 200/204, %d 429s since", Double(run.loop.nowMs - lastAnsweredMs) / 1000, refusedSinceAnswer)
    }

    private func malformed(_ detail: String) {
        run.ledger.record(.malformed, id: nil, stream: ledgerID, other: 0, atMs: run.loop.nowMs, detail: detail)
        run.ledger.abandoned(stream: ledgerID, held: held)
        psp.abandoned(lastRequestMs: run.loop.nowMs)
        lost()
    }

    private func failed(_ kind: Pending, _ failure: ConnectionFailure) {
        let route: Route = switch kind {
        case .start: .start
        case .next: .next
        case .retry: .retry
        case .delete: .delete
        case .none: .next
        }
        run.recorder.failure(route, failure.label)
        // Lost answer: the same request again on a new connection (a pointer retry for the hub).
        switch kind {
        case .start:
            afterMs(100) { [self] in awaitTicket() }
        case .next:
            afterMs(100) { [self] in
                repeating = true
                sendNext()
            }
        case .retry:
            proceed()
        case .delete:
            afterMs(100) { [self] in
                repeating = true
                sendDelete()
            }
        case .none:
            break
        }
    }

    // MARK: what next

    private func proceed() {
        repeating = false
        if run.isClosing {
            return pointer == nil ? stop() : sendDelete()
        }
        if batchesLeft <= 0 && !run.isDraining {
            if run.rng.chance(run.scenario.abandonFraction) {
                run.ledger.abandoned(stream: ledgerID, held: held)
                psp.abandoned(lastRequestMs: run.loop.nowMs)
                run.streamsAbandoned += 1
                return begin()
            }
            return sendDelete()
        }
        awaitTicket()
    }

    /// The hub answered 404/410 for a pointer it should still know: a pointer gap in the
    /// ledger, and what the stream held counts as gone.
    private func pointerGone(_ request: String, status: Int) {
        run.ledger.record(.pointerGap, id: nil, stream: ledgerID, other: 0, atMs: run.loop.nowMs,
                          detail: "\(request) answered \(status) \(sinceAnswer())")
        run.ledger.gone(stream: ledgerID, held: held)
    }

    /// The hub no longer knows the stream: open a new one.
    private func lost() {
        pointer = nil
        held = []
        if run.isClosing { return stop() }
        begin()
    }

    private func ended() {
        pointer = nil
        held = []
        run.streamsClosed += 1
        if run.isClosing { return stop() }
        begin()
    }
}
