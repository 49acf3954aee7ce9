/// Sends pacs.008 messages as one PSP through the send path: `multipart/mixed` POSTs of up to
/// `messagesPerPost` messages, each to a random other PSP (weighted by its stream count, so
/// that every partition drains at the same pace). Every id answered 201 goes to the
/// ledger. A refused or failed POST is sent again unchanged (idempotent: same message ids).
final class Producer: PacedClient {
    private struct Post {
        let request: [UInt8]
        let recipients: [Int]
        let lengths: [Int]
    }

    unowned let run: Run
    unowned let psp: PSPAgent
    let connection: ClientConnection
    private var post: Post?
    private var busy = false
    private var parts: [PartInfo] = []

    init(run: Run, psp: PSPAgent, connection: ClientConnection) {
        self.run = run
        self.psp = psp
        self.connection = connection
    }

    var isIdle: Bool { !busy }

    /// Starts sending if the phase wants messages and this producer is idle.
    func activate() {
        guard !busy else { return }
        busy = true
        run.sendPacer.request(self)
    }

    func ticketGranted() {
        if post == nil {
            let count = run.messagesToSend()
            guard count > 0 else {
                busy = false
                return
            }
            post = makePost(count)
            run.postsOutstanding += 1
        }
        send()
    }

    private func makePost(_ count: Int) -> Post {
        var messages: [[UInt8]] = []
        var recipients: [Int] = []
        messages.reserveCapacity(count)
        recipients.reserveCapacity(count)
        for _ in 0..<count {
            let r = run.randomRecipient(excluding: psp.index)
            recipients.append(r)
            messages.append(run.generator.make(sender: psp.ispb, recipient: run.psps[r].ispb,
                                               sequence: run.nextSequence(), createdAtMillis: run.wallClockMs))
        }
        let boundary = "lg\(run.nextSequence())"
        let body = Requests.multipartBody(messages, boundary: boundary)
        let request = Requests.make("POST", target: run.sendPath(psp), host: run.hostHeader,
                                    extra: Array("Content-Type: multipart/mixed; boundary=\(boundary)\r\n".utf8), body: body)
        return Post(request: request, recipients: recipients, lengths: messages.map(\.count))
    }

    private func send() {
        guard let post else { return }
        connection.send(post.request, timeoutMs: run.scenario.requestTimeoutMs) { [unowned self] result in
            switch result {
            case .success(let r):
                run.recorder.record(.send, status: r.head.status, latencyNs: r.latencyNs)
                answered(r)
            case .failure(let f):
                run.recorder.failure(.send, f.label)
                run.delays.after(ms: 100) { [self] in send() }
            }
        }
    }

    private func answered(_ r: Response) {
        guard let post else { return }
        switch r.head.status {
        case 201, 207:
            parts.removeAll(keepingCapacity: true)
            if let boundary = r.head.boundary {
                do {
                    try PartScanner.scan(r.body, boundary: boundary, into: &parts)
                } catch {
                    run.sendProblem("unreadable send response: \(error)")
                }
            }
            guard parts.count == post.recipients.count else {
                run.sendProblem("send response with \(parts.count) parts for \(post.recipients.count) messages")
                return finished(stored: 0, of: post.recipients.count)
            }
            var stored = 0
            let now = run.loop.nowMs
            for (i, part) in parts.enumerated() {
                if part.status == 201, let id = part.resourceID {
                    run.ledger.sent(id, recipient: post.recipients[i], length: post.lengths[i], nowMs: now)
                    stored += 1
                } else {
                    run.sendRefused(status: part.status ?? 0)
                }
            }
            finished(stored: stored, of: post.recipients.count)
        case 429, 503:
            run.sendRefusedWhole(r.head)
            run.delays.after(ms: UInt64(max(1, r.head.retryAfterSeconds ?? 1)) * 1000) { [self] in send() }
        default:
            run.unexpectedStatus(.send, r.head.status)
            finished(stored: 0, of: post.recipients.count)
        }
    }

    private func finished(stored: Int, of count: Int) {
        post = nil
        run.postsOutstanding -= 1
        run.messagesStored(stored, of: count)
        busy = false
        activate()
    }
}
