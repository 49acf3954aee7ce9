import EventLoop
import Foundation
import HTTP
import HTTPServer
import ISO20022
import LogStore
import Logging
import Metrics

/// `POST /api/v1/in/{ispb}/msgs` (DESIGN.md §1 "Send semantics", docs/api.md):
/// decode (gzip, multipart) and validate on a worker thread; reject with a problem per part
/// (quarantine, audit line, metric); append the valid parts to their recipients' partitions and
/// answer only after fdatasync.
final class SendRoute {
    /// Parts a multipart request may carry.
    static let partsMax = 10

    private let services: HubServices
    /// Messages admitted per recipient ISPB whose appends have not completed: counted with the
    /// stored backlog against `--partition-backlog-max`, so that concurrent requests (and the
    /// parts of one request) cannot overshoot it.
    private var admittedInFlight: [String: Int] = [:]
    private var rejectedCounters: [String: Counter] = [:]
    private let acceptedCounter = Counter(label: "rtpstream_send_messages_total", dimensions: [("outcome", "stored")])
    private let duplicateCounter = Counter(label: "rtpstream_send_messages_total", dimensions: [("outcome", "duplicate")])

    /// Validation jobs waiting for, or running on, the worker pool.
    private var scheduler: ValidationScheduler<ScheduledValidation>
    private let abandonedWaitingCounter = Counter(label: "rtpstream_send_validations_abandoned_total")

    /// Validation jobs on the pool per worker thread (all senders), and of one sender per worker.
    /// More than one per worker keeps a job queued for each worker, so a worker that finishes
    /// takes its next job at once instead of idling for a loop round trip: with one per worker,
    /// `loadtest bench ingest` fell from 14.2k to 7.3k msg/s; with 8 it measured 11.3k. The
    /// per-sender share keeps one sender's burst from taking every slot.
    static let jobsPerWorker = 32
    static let jobsPerWorkerPerSender = 4

    init(services: HubServices) {
        self.services = services
        scheduler = ValidationScheduler(inFlightMax: services.config.workerThreads * Self.jobsPerWorker,
                                        perSenderMax: services.config.workerThreads * Self.jobsPerWorkerPerSender)
    }

    /// What the worker found in the body.
    enum Decoded: Sendable {
        case failed(Problem)
        case parts([DecodedPart])
    }

    struct DecodedPart: Sendable {
        let bytes: [UInt8]
        let outcome: Result<MessageInfo, Problem>
        let messageIdHint: String?
    }

    enum Form: Sendable {
        case single
        case multipart(boundary: String)
    }

    func handle(_ ctx: RequestContext) {
        guard let ispb = services.authorize(ctx) else { return }
        let request = ctx.request
        // Representation checks are cheap and run on the loop; the body work goes to a worker.
        let form: Form
        switch Self.form(contentType: request.header("content-type")) {
        case .failure(let p): return ctx.respond(problem: p)
        case .success(let f): form = f
        }
        let gzip: Bool
        switch request.header("content-encoding")?.lowercased() {
        case nil, "identity": gzip = false
        case "gzip", "x-gzip": gzip = true
        case let other?:
            return ctx.respond(problem: Problem(.unsupportedMediaType, detail: "Content-Encoding '\(other.prefix(40))' is not supported; use gzip"))
        }
        let body = request.body
        let validators = services.validators
        let limit = services.config.decompressedBytesMax
        let cpuMs = services.config.validationCPUMsMax
        let multipart = if case .multipart = form { true } else { false }
        let box = LoopBound(ctx)
        // Admitted to the worker pool by the fair scheduler: per-sender FIFO, round-robin, a
        // bounded number in flight in all and per sender (docs/send.md "Validation scheduling").
        let job = ScheduledValidation(ctx: ctx, sender: ispb) { [self] in
            WorkQueue.run(on: services.loop, {
                Self.decode(body: body, gzip: gzip, form: form, decompressedBytesMax: limit, validators: validators,
                            cpuMillisecondsMax: cpuMs)
            }, completion: { [self] decoded in
                launch(scheduler.finished(sender: ispb))
                let ctx = box.value
                if ctx.isCancelled {
                    // The client went away: nothing is stored and nobody is answered, but a
                    // rejected message is still quarantined, audited and counted.
                    return rejectAbandoned(ctx: ctx, ispb: ispb, decoded: decoded, body: body, multipart: multipart)
                }
                switch decoded {
                case .failed(let p):
                    reject(ctx: ctx, ispb: ispb, part: nil, bytes: body, sender: nil, messageId: nil, problem: p)
                    ctx.respond(problem: p)
                case .parts(let parts):
                    store(ctx: ctx, ispb: ispb, parts: parts, multipart: multipart)
                }
            })
        }
        launch(scheduler.submit(job, sender: ispb))
    }

    /// A validation waiting for a worker (loop thread only).
    struct ScheduledValidation {
        let ctx: RequestContext
        let sender: String
        let start: () -> Void
    }

    /// Starts the jobs the scheduler released. A job whose client went away while it waited is
    /// not started (no message was looked at, so there is nothing to audit); its turn passes on.
    private func launch(_ jobs: [ScheduledValidation]) {
        var jobs = jobs[...]
        while let job = jobs.popFirst() {
            if job.ctx.isCancelled {
                abandonedWaitingCounter.increment()
                jobs.append(contentsOf: scheduler.finished(sender: job.sender))
                continue
            }
            job.start()
        }
    }

    /// Rejections of a request whose connection closed while it was validated: audited,
    /// quarantined and counted as if answered; valid parts are not stored (no 201 was given,
    /// the client re-sends).
    private func rejectAbandoned(ctx: RequestContext, ispb: String, decoded: Decoded, body: [UInt8], multipart: Bool) {
        switch decoded {
        case .failed(let p):
            reject(ctx: ctx, ispb: ispb, part: nil, bytes: body, sender: nil, messageId: nil, problem: p)
        case .parts(let parts):
            for (i, part) in parts.enumerated() {
                let partNumber = multipart ? i + 1 : nil
                switch part.outcome {
                case .failure(let p):
                    reject(ctx: ctx, ispb: ispb, part: partNumber, bytes: part.bytes, sender: nil, messageId: nil, problem: p)
                case .success(let info) where info.senderISPB != ispb:
                    reject(ctx: ctx, ispb: ispb, part: partNumber, bytes: part.bytes, sender: info.senderISPB, messageId: info.messageId,
                           problem: Problem(.senderMismatch, detail: "message sender \(info.senderISPB) is not \(ispb)"))
                case .success:
                    break
                }
            }
        }
    }

    static func form(contentType: String?) -> Result<Form, Problem> {
        // The two spellings nearly every client sends, without parsing (this runs per request
        // on the loop thread).
        if contentType == "application/xml" || contentType == "application/xml; charset=utf-8" { return .success(.single) }
        guard let contentType, let media = MediaType(contentType) else {
            return .failure(Problem(.unsupportedMediaType, detail: "Content-Type must be application/xml or multipart/mixed"))
        }
        switch media.essence {
        case "application/xml":
            if let cs = media.parameters["charset"], cs.lowercased() != "utf-8" {
                return .failure(Problem(.unsupportedMediaType, detail: "charset must be utf-8"))
            }
            return .success(.single)
        case "multipart/mixed":
            guard let b = media.parameters["boundary"], !b.isEmpty else {
                return .failure(Problem(.malformedMultipart, detail: "multipart/mixed without a boundary"))
            }
            return .success(.multipart(boundary: b))
        default:
            return .failure(Problem(.unsupportedMediaType,
                                    detail: "Content-Type '\(media.essence.prefix(60))' is not accepted; use application/xml or multipart/mixed"))
        }
    }

    /// Worker thread: gunzip, split, validate. Pure function of its inputs.
    static func decode(body: [UInt8], gzip: Bool, form: Form, decompressedBytesMax: Int,
                       validators: ThreadLocalValidators, cpuMillisecondsMax: Int? = nil) -> Decoded {
        var bytes = body
        if gzip {
            do {
                bytes = try Gzip.decompress(body, maxBytes: decompressedBytesMax)
            } catch GzipError.tooLarge {
                return .failed(Problem(.bodyTooLarge, detail: "decompressed body exceeds \(decompressedBytesMax) bytes"))
            } catch {
                return .failed(Problem(.invalidEncoding, detail: "body is not valid gzip"))
            }
        }
        let raw: [(bytes: [UInt8], typeProblem: Problem?)]
        switch form {
        case .single:
            raw = [(bytes, nil)]
        case .multipart(let boundary):
            do {
                raw = try Multipart.parse(bytes, boundary: boundary, partsMax: partsMax).map { part in
                    guard let ct = part.header("content-type"), let m = MediaType(ct), m.essence == "application/xml",
                          (m.parameters["charset"]?.lowercased() ?? "utf-8") == "utf-8" else {
                        return (part.body, Problem(.unsupportedMediaType, detail: "each part must be application/xml; charset=utf-8"))
                    }
                    return (part.body, nil)
                }
            } catch let e as MultipartError {
                switch e.kind {
                case .tooManyParts: return .failed(Problem(.tooManyParts, detail: "a request carries at most \(partsMax) messages"))
                case .noParts: return .failed(Problem(.malformedMultipart, detail: "a multipart request carries at least one message"))
                case .malformed: return .failed(Problem(.malformedMultipart, detail: e.detail))
                }
            } catch {
                return .failed(Problem(.malformedMultipart, detail: "malformed multipart body"))
            }
        }
        let validator = validators.current()
        return .parts(raw.map { part in
            if let p = part.typeProblem { return DecodedPart(bytes: part.bytes, outcome: .failure(p), messageIdHint: nil) }
            switch validator.validate(part.bytes, cpuMillisecondsMax: cpuMillisecondsMax) {
            case .accepted(let info):
                return DecodedPart(bytes: part.bytes, outcome: .success(info), messageIdHint: info.messageId)
            case .rejected(let r):
                let type = ProblemType.forReject(r.code)
                var detail = r.detail
                if let line = r.line { detail += " (line \(line))" }
                return DecodedPart(bytes: part.bytes, outcome: .failure(Problem(type, detail: detail)), messageIdHint: nil)
            }
        })
    }

    /// Loop thread: per-part checks, appends grouped by recipient, one response when every
    /// append is durable.
    private func store(ctx: RequestContext, ispb: String, parts: [DecodedPart], multipart: Bool) {
        var results = [PartResult?](repeating: nil, count: parts.count)
        var groups: [PartitionKey: [(index: Int, record: AppendRecord)]] = [:]
        let nowMs = services.wallClockMs()
        for (i, part) in parts.enumerated() {
            let partNumber = multipart ? i + 1 : nil
            switch part.outcome {
            case .failure(let p):
                reject(ctx: ctx, ispb: ispb, part: partNumber, bytes: part.bytes, sender: nil, messageId: nil, problem: p)
                results[i] = .rejected(p)
            case .success(let info):
                if info.senderISPB != ispb {
                    let p = Problem(.senderMismatch, detail: "message sender \(info.senderISPB) is not \(ispb)")
                    reject(ctx: ctx, ispb: ispb, part: partNumber, bytes: part.bytes, sender: info.senderISPB,
                           messageId: info.messageId, problem: p)
                    results[i] = .rejected(p)
                    continue
                }
                let partition = PartitionKey(region: services.config.region, ispb: info.recipientISPB)
                let admitted = admittedInFlight[info.recipientISPB, default: 0]
                if services.pull.backlog(of: info.recipientISPB) + UInt64(admitted) >= UInt64(services.config.partitionBacklogMax) {
                    results[i] = .rejected(Problem(.backlogFull, detail: "recipient \(info.recipientISPB) has too many undelivered messages"))
                    continue
                }
                admittedInFlight[info.recipientISPB] = admitted + 1
                let record = AppendRecord(key: Self.idempotencyKey(sender: info.senderISPB, messageId: info.messageId),
                                          id: services.ids.make(), payload: part.bytes, timestampMs: nowMs)
                groups[partition, default: []].append((i, record))
            }
        }
        let batch = PendingSend(ctx: ctx, results: results, pending: groups.count, multipart: multipart)
        if batch.pending == 0 { return respond(batch) }
        let box = LoopBound((self, batch))
        for (partition, entries) in groups {
            let records = entries.map(\.record)
            let indexes = entries.map(\.index)
            services.store.append(partition, records) { result in
                // Runs on the loop: the store's completion sink is the loop's executor.
                let (route, batch) = box.value
                route.appendCompleted(batch, partition: partition, records: records, indexes: indexes, result: result)
            }
        }
    }

    private func appendCompleted(_ batch: PendingSend, partition: PartitionKey, records: [AppendRecord], indexes: [Int],
                                 result: Result<[AppendOutcome], LogStoreError>) {
        let left = admittedInFlight[partition.ispb, default: 0] - records.count
        assert(left >= 0, "admitted count of \(partition.ispb) went negative")
        admittedInFlight[partition.ispb] = left > 0 ? left : nil
        switch result {
        case .success(let outcomes):
            for (i, (index, outcome)) in zip(indexes, outcomes).enumerated() {
                switch outcome {
                case .appended:
                    acceptedCounter.increment()
                    batch.results[index] = .stored(records[i].id, duplicate: false)
                case .duplicate(_, _, let id):
                    duplicateCounter.increment()
                    batch.results[index] = .stored(id, duplicate: true)
                }
            }
        case .failure(let error):
            let p = Self.problem(for: error)
            if p.type == .storageUnavailable {
                services.logger.error("append failed", metadata: ["partition": "\(partition)", "error": "\(error)"])
            }
            for index in indexes { batch.results[index] = .rejected(p) }
        }
        batch.pending -= 1
        if batch.pending == 0 { respond(batch) }
    }

    /// One request's parts while their appends are in flight (loop thread only).
    final class PendingSend {
        let ctx: RequestContext
        var results: [PartResult?]
        var pending: Int
        let multipart: Bool

        init(ctx: RequestContext, results: [PartResult?], pending: Int, multipart: Bool) {
            self.ctx = ctx
            self.results = results
            self.pending = pending
            self.multipart = multipart
        }
    }

    enum PartResult {
        case stored(ResourceID, duplicate: Bool)
        case rejected(Problem)
    }

    static func problem(for error: LogStoreError) -> Problem {
        if case .overloaded = error {
            return Problem(.commitQueueFull, detail: "storage commit queue is full")
        }
        return Problem(.storageUnavailable, detail: "the message could not be stored durably")
    }

    /// Single message: 201 + PI-ResourceId, or the problem. Multipart: a `multipart/mixed` body
    /// with one part per request part (`PI-Part-Status`, `PI-ResourceId` or a problem); status
    /// 201 when every part was stored, the common status when every part failed alike, else 207.
    private func respond(_ batch: PendingSend) {
        let ctx = batch.ctx
        guard !ctx.isCancelled else { return }
        let results = batch.results.map { $0! }
        if !batch.multipart, let only = results.first {
            switch only {
            case .stored(let id, _):
                ctx.respond(HTTPResponse(status: 201, headers: [HTTPHeader("PI-ResourceId", Self.hex(id))]))
            case .rejected(let p):
                ctx.respond(problem: p, headers: Self.retryAfter(p))
            }
            return
        }
        var parts: [(headers: [HTTPHeader], body: [UInt8])] = []
        var statuses = Set<Int>()
        for r in results {
            switch r {
            case .stored(let id, _):
                statuses.insert(201)
                parts.append(([HTTPHeader("PI-Part-Status", "201"), HTTPHeader("PI-ResourceId", Self.hex(id))], []))
            case .rejected(let p):
                statuses.insert(p.status)
                parts.append(([HTTPHeader("Content-Type", Problem.contentType), HTTPHeader("PI-Part-Status", String(p.status))],
                              Array(p.xmlElement.utf8)))
            }
        }
        let status = statuses.count == 1 ? statuses.first! : 207
        let (chunks, contentType) = Multipart.build(parts: parts, boundary: "rtp-parts-\(services.boundaryToken())")
        var headers = [HTTPHeader("Content-Type", contentType)]
        if statuses.contains(429) { headers.append(HTTPHeader("Retry-After", "1")) }
        ctx.respond(HTTPResponse(status: status, headers: headers, body: chunks))
    }

    /// The store's idempotency key: "<sender ISPB>/<message id>".
    static func idempotencyKey(sender: String, messageId: String) -> [UInt8] {
        var key: [UInt8] = []
        key.reserveCapacity(sender.utf8.count + 1 + messageId.utf8.count)
        key.append(contentsOf: sender.utf8)
        key.append(UInt8(ascii: "/"))
        key.append(contentsOf: messageId.utf8)
        return key
    }

    /// `PI-ResourceId`: the id as 32 lower-case hex digits (`ResourceID.description`, without
    /// its two intermediate strings; this runs per stored message on the loop thread).
    static func hex(_ id: ResourceID) -> String {
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: 32) { buffer in
            digits.withUTF8Buffer { d in
                for i in 0..<16 {
                    buffer[i] = d[Int(truncatingIfNeeded: id.high >> (60 - 4 * UInt64(i))) & 15]
                    buffer[16 + i] = d[Int(truncatingIfNeeded: id.low >> (60 - 4 * UInt64(i))) & 15]
                }
            }
            return 32
        }
    }

    static func retryAfter(_ p: Problem) -> [HTTPHeader] {
        p.status == 429 ? [HTTPHeader("Retry-After", "1")] : []
    }

    /// Quarantine (durable, not awaited), audit line, metric, for a rejected message.
    private func reject(ctx: RequestContext, ispb: String, part: Int?, bytes: [UInt8], sender: String?,
                        messageId: String?, problem: Problem) {
        let reason = problem.type.slug
        if rejectedCounters[reason] == nil {
            rejectedCounters[reason] = Counter(label: "rtpstream_send_rejected_total", dimensions: [("reason", reason)])
        }
        rejectedCounters[reason]!.increment()
        let nowMs = services.wallClockMs()
        services.audit.rejected(timeMs: nowMs, peer: ctx.peer.address, pathISPB: ispb, sender: sender ?? ispb,
                                messageId: messageId, part: part, reason: reason, detail: problem.detail)
        let entry = QuarantineEntry(timeMs: nowMs, sender: sender ?? ispb, messageId: messageId, reasonCode: reason,
                                    detail: problem.detail, payload: bytes)
        let logger = services.logger
        services.store.quarantine(entry) { result in
            if case .failure(let e) = result {
                logger.error("quarantine write failed", metadata: ["reason": "\(reason)", "error": "\(e)"])
            }
        }
    }
}
