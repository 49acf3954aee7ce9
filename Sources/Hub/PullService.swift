import Coordination
import EventLoop
import HTTP
import HTTPServer
import LogStore
import Logging
import Metrics
import Streaming
import TLS

/// The pull path (DESIGN.md §1 "Pull semantics", docs/api.md, docs/pull.md): streams of
/// competing consumers per ISPB, pointers, durable acknowledgements, long polls woken by
/// appends, thread slots and cursors in Redis with local fallback. Loop thread only.
///
/// Effects are applied here; the state transitions are `PartitionConsumers`' (Streaming),
/// which the model test exercises without I/O. Every request of a live stream is bracketed by
/// `beginRequest`/`endRequest` while it waits (acknowledgement or long poll), so a stream with
/// a request in progress never expires under it.
final class PullService {
    /// Messages per response by representation.
    static let multipartBatchMax = 10
    /// Tombstones of closed streams (410 rather than 404) live at least this long.
    static let tombstoneTTLMsMin: UInt64 = 300_000
    static let sweepIntervalMs: UInt64 = 1000
    /// Redis sees a stream's lease slide and cursor at most this often.
    static let touchIntervalMs: UInt64 = 250
    /// gzip'd batches kept for retries (by stream) and their total size; compressions in flight.
    private var gzipped: [UInt64: CompressedBatch] = [:]
    private var gzippedBytes = 0
    private var compressing: [UInt64: PendingCompression] = [:]

    private let services: HubServices
    private var partitions: [String: PartitionState] = [:]
    private let sweepTimer: LoopTimer
    /// Loop time of the last sweep, to tell a sweep that ran late (below).
    private var lastSweepMs: UInt64 = 0
    /// A sweep this much later than its interval means the loop (or the whole process) was
    /// stalled: it expires nothing.
    static let sweepLateToleranceMs: UInt64 = 250
    private var nextStreamSalt: UInt64
    private let metrics = PullMetrics()
    private var draining = false
    /// Live streams and held requests over all partitions (kept, not recounted per request).
    private var openStreams = 0
    /// Partitions that have their own gauge series (at most `--ispb-metrics-max`).
    private var gaugedPartitions = 0
    private var waitingRequests = 0
    /// Streams closed while Redis could not be told; released again by the sweep once Redis
    /// answers, so that their slots do not stay taken there until their leases run out.
    private var unreleased: Set<StreamRef> = []
    /// Tokens issued per live stream, and when each stream last touched Redis.
    private var issued: [UInt64: IssuedTokens] = [:]
    private var lastTouchMs: [UInt64: UInt64] = [:]
    /// Streams answered since their last touch (stream -> ISPB), flushed by `touchTimer`.
    private var untouched: [UInt64: String] = [:]
    private let touchTimer: LoopTimer
    /// Whether Redis answered the last slot, touch or release call (else: local accounting).
    private var redisAnswering = false

    struct StreamRef: Hashable {
        let ispb: String
        let stream: UInt64
    }

    /// One ISPB's partition on this node: its consumers, the requests waiting for messages and
    /// its gauges.
    final class PartitionState {
        let key: PartitionKey
        let consumers: PartitionConsumers
        var waiters: [Waiter] = []
        /// nil beyond `--ispb-metrics-max` ISPBs: senders choose recipients, so the number of
        /// per-ISPB series must not be theirs to choose (the totals still count everything).
        let gauges: PartitionGauges?
        /// Timestamp of the record at the ack floor, for the lag gauge (read once per floor).
        var floorTimestamp: (offset: UInt64, ms: Int64)?

        init(key: PartitionKey, consumers: PartitionConsumers, gauged: Bool) {
            self.key = key
            self.consumers = consumers
            gauges = gauged ? PartitionGauges(ispb: key.ispb) : nil
        }
    }

    /// A request held until a message arrives or its long poll ends.
    final class Waiter {
        let stream: UInt64
        /// The pointer sequence the request followed (after its acknowledgement).
        let sequence: UInt32
        let ctx: RequestContext
        let shape: Shape
        let timer: LoopTimer

        init(stream: UInt64, sequence: UInt32, ctx: RequestContext, shape: Shape, timer: LoopTimer) {
            self.stream = stream
            self.sequence = sequence
            self.ctx = ctx
            self.shape = shape
            self.timer = timer
        }
    }

    /// How the client wants its messages.
    struct Shape {
        let representation: PullRepresentation
        let gzip: Bool
        var batchMax: Int { representation == .multipart ? PullService.multipartBatchMax : 1 }
    }

    init(services: HubServices) {
        self.services = services
        sweepTimer = LoopTimer(loop: services.loop)
        touchTimer = LoopTimer(loop: services.loop)
        touchTimer.unref()
        nextStreamSalt = UInt64(services.ids.nextWord())
        // Every partition with records now, so that leases in flight before a restart are
        // restored (and re-registered in Redis, expired when abandoned) and gauges exist.
        for key in services.store.partitions() where key.region == services.config.region {
            _ = state(for: key.ispb)
        }
        sweepTimer.unref()
        lastSweepMs = services.loop.nowMs
        sweepTimer.start(afterMs: Self.sweepIntervalMs, repeatMs: Self.sweepIntervalMs) { [unowned self] in sweep() }
    }

    // MARK: partitions

    /// The partition state of an ISPB, created from the store's durable consumer state on first
    /// use; leases that were in flight before a restart are restored so that their clients'
    /// pointers keep working for another idle period.
    func state(for ispb: String) -> PartitionState {
        if let s = partitions[ispb] { return s }
        let key = PartitionKey(region: services.config.region, ispb: ispb)
        let durable = services.store.consumerState(key)
        let end = services.store.durableEndOffset(key)
        let consumers = PartitionConsumers(ispb: ispb, slotsMax: services.config.slotsPerISPB,
                                           ackFloor: min(max(durable.ackFloor, services.store.startOffset(key)), end),
                                           ackedAbove: Set(durable.ackedAboveFloor), endOffset: end)
        let now = services.loop.nowMs
        let gauged = gaugedPartitions < services.config.ispbMetricsMax
        if gauged { gaugedPartitions += 1 } else { metrics.ungaugedPartitions.increment() }
        let s = PartitionState(key: key, consumers: consumers, gauged: gauged)
        partitions[ispb] = s
        for lease in durable.leases where lease.sequence <= UInt64(UInt32.max) {
            if consumers.restore(id: lease.stream, sequence: UInt32(lease.sequence), batch: lease.offsets, nowMs: now) {
                streamOpened(s, restored: true)
            } else {
                // No slot left for it (the limit was lowered): its batch is simply available.
                services.store.releaseLease(key, stream: lease.stream)
            }
        }
        return s
    }

    func backlog(of ispb: String) -> UInt64 { state(for: ispb).consumers.backlog }

    /// Durable appends landed in `partition`: wake its long polls.
    /// The store made records durable (its event stream, on the loop): the partitions' consumers
    /// learn the new end and their long polls wake. Whoever appended — this node's send route
    /// or, in cluster mode, a replica applying another node's group — the path is the same.
    func committed(_ group: CommittedGroup) {
        for case .appended(let name, let records) in group.events {
            guard let key = PartitionKey(name), key.region == services.config.region, let last = records.last else { continue }
            let s = state(for: key.ispb)
            s.consumers.appended(endOffset: last.offset + 1)
            wake(s)
        }
    }

    // MARK: routes

    func start(_ ctx: RequestContext) {
        guard let ispb = services.authorize(ctx), let shape = shape(ctx) else { return }
        guard !draining else { return ctx.respond(problem: Problem(.shuttingDown, detail: "the hub is shutting down")) }
        withRateCheck(ctx, ispb: ispb) { [self] in
            let stream = newStreamID()
            let box = LoopBound(ctx)
            services.coordination.acquireSlot(ispb: ispb, stream: stream) { [self] decision in
                let ctx = box.value
                switch decision {
                case .denied(_, let used, let limit):
                    noteRedis(answering: true)
                    metrics.refused(.slots)
                    ctx.respond(problem: Problem(.slotsExhausted, detail: "\(used) of \(limit) streams of \(ispb) are open"),
                                headers: [HTTPHeader("Retry-After", String(decision.retryAfterSeconds ?? 1)),
                                          HTTPHeader("PI-Slots", "\(used)/\(limit)")])
                case .granted, .unavailable:
                    if decision == .unavailable { metrics.localSlotDecisions.increment() }
                    noteRedis(answering: decision != .unavailable)
                    guard !ctx.isCancelled else {
                        if decision != .unavailable { services.coordination.release(ispb: ispb, stream: stream) }
                        return
                    }
                    open(ctx, ispb: ispb, stream: stream, shape: shape, redisGranted: decision != .unavailable)
                }
            }
        }
    }

    private func open(_ ctx: RequestContext, ispb: String, stream: UInt64, shape: Shape, redisGranted: Bool) {
        let s = state(for: ispb)
        let now = services.loop.nowMs
        guard !draining, s.consumers.open(id: stream, nowMs: now) else {
            if redisGranted { services.coordination.release(ispb: ispb, stream: stream) }
            if draining { return ctx.respond(problem: Problem(.shuttingDown, detail: "the hub is shutting down")) }
            // This node's own accounting refuses (Redis unavailable, or Redis lost our leases).
            metrics.refused(.localSlots)
            let limit = s.consumers.slotsMax
            let retry = localRetryAfterSeconds(s, now: now)
            ctx.respond(problem: Problem(.slotsExhausted, detail: "\(limit) of \(limit) streams of \(ispb) are open"),
                        headers: [HTTPHeader("Retry-After", String(retry)), HTTPHeader("PI-Slots", "\(limit)/\(limit)")])
            return
        }
        streamOpened(s, restored: false)
        deliver(ctx, state: s, stream: stream, after: 0, shape: shape)
    }

    func next(_ ctx: RequestContext) {
        guard let ispb = services.authorize(ctx), let shape = shape(ctx) else { return }
        guard let token = pointer(ctx, ispb: ispb) else { return }
        withRateCheck(ctx, ispb: ispb, pointer: token) { [self] in
            withStream(ctx, ispb: ispb, token: token) { [self] s, resolution in
                switch resolution {
                case .previous:
                    // A retry after a lost response: the same batch again, nothing acknowledged.
                    metrics.retries.increment()
                    endWait(s, stream: token.stream)
                    s.consumers.touch(id: token.stream, nowMs: services.loop.nowMs)
                    respondBatch(ctx, state: s, stream: s.consumers.stream(token.stream)!, shape: shape, redelivery: true)
                case .current:
                    endWait(s, stream: token.stream)
                    acknowledge(ctx, state: s, stream: token.stream) { [self] in
                        deliver(ctx, state: s, stream: token.stream, after: token.sequence, shape: shape)
                    }
                default:
                    respondResolution(ctx, resolution)
                }
            }
        }
    }

    func delete(_ ctx: RequestContext) {
        guard let ispb = services.authorize(ctx) else { return }
        guard let token = pointer(ctx, ispb: ispb) else { return }
        withStream(ctx, ispb: ispb, token: token) { [self] s, resolution in
            switch resolution {
            case .current:
                endWait(s, stream: token.stream)
                acknowledge(ctx, state: s, stream: token.stream) { [self] in
                    // A concurrent DELETE of the same pointer may have closed it meanwhile.
                    guard s.consumers.stream(token.stream) != nil else { return respondResolution(ctx, .closed) }
                    close(s, stream: token.stream)
                    ctx.respond(HTTPResponse(status: 200))
                }
            case .previous:
                // The client never confirmed the current batch: it returns to the front.
                endWait(s, stream: token.stream)
                close(s, stream: token.stream)
                ctx.respond(HTTPResponse(status: 200))
            default:
                respondResolution(ctx, resolution)
            }
        }
    }

    // MARK: steps

    private func shape(_ ctx: RequestContext) -> Shape? {
        let accept = ctx.request.header("accept")
        let acceptEncoding = ctx.request.header("accept-encoding")
        // The values pull clients send on every request, decided without parsing them.
        switch (accept, acceptEncoding) {
        case ("multipart/mixed", nil): return Shape(representation: .multipart, gzip: false)
        case ("application/xml", nil), (nil, nil): return Shape(representation: .single, gzip: false)
        case ("multipart/mixed", "gzip"): return Shape(representation: .multipart, gzip: true)
        default: break
        }
        guard let representation = PullRepresentation.negotiate(accept: accept) else {
            ctx.respond(problem: Problem(.notAcceptable, detail: "Accept application/xml (one message) or multipart/mixed (up to \(Self.multipartBatchMax))"))
            return nil
        }
        return Shape(representation: representation, gzip: acceptsGzip(acceptEncoding))
    }

    private func pointer(_ ctx: RequestContext, ispb: String) -> PullToken? {
        // A token equal to one this node issued (current or previous of its stream) is genuine
        // without recomputing its HMAC; any other is verified in full.
        if let text = ctx.params["token"], let claimed = PullToken.parseUnverified(text),
           let issuedTokens = issued[claimed.stream], issuedTokens.ispb == ispb,
           issuedTokens.matches(text, sequence: claimed.sequence) {
            return claimed
        }
        guard let text = ctx.params["token"], let token = PullToken.decode(text, ispb: ispb, mac: services.tokenMAC) else {
            metrics.unknownPointers.increment()
            ctx.respond(problem: Problem(.unknownPointer, detail: "no such pointer"))
            return nil
        }
        return token
    }

    /// Request-rate window per ISPB (off unless configured; then one Redis round trip).
    /// A refused request that follows a pointer of a live stream still slides its lease: the
    /// client is obeying `Retry-After`, not abandoning the stream, and a run of 429s longer
    /// than the idle time must not expire it (its batch would go to another stream).
    private func withRateCheck(_ ctx: RequestContext, ispb: String, pointer: PullToken? = nil,
                               _ body: @escaping () -> Void) {
        guard services.config.rateLimitPerSecond > 0 else { return body() }
        let box = LoopBound(ctx)
        services.coordination.checkRate(ispb: ispb) { [self] decision in
            let ctx = box.value
            guard !ctx.isCancelled else { return }
            if case .limited = decision {
                metrics.refused(.rate)
                if let pointer { keepAlive(ispb: ispb, pointer: pointer) }
                return ctx.respond(problem: Problem(.rateLimited, detail: "request rate of \(ispb) is over its limit"),
                                   headers: [HTTPHeader("Retry-After", String(decision.retryAfterSeconds ?? 1))])
            }
            body()
        }
    }

    /// Slides the lease of the stream a refused pointer belongs to, when it is live here and
    /// the pointer is its current or previous one (a stale or forged pointer proves nothing).
    private func keepAlive(ispb: String, pointer: PullToken) {
        guard let s = partitions[ispb], let st = s.consumers.stream(pointer.stream) else { return }
        switch s.consumers.resolve(id: pointer.stream, sequence: pointer.sequence) {
        case .current, .previous:
            s.consumers.touch(id: st.id, nowMs: services.loop.nowMs)
            touchRedis(s, st)
        default:
            return
        }
    }

    /// Resolves a pointer; a stream unknown here may be another node's (or ours, when the
    /// journal lost its lease): its cursor in Redis restores it.
    private func withStream(_ ctx: RequestContext, ispb: String, token: PullToken,
                            _ body: @escaping (PartitionState, PointerResolution) -> Void) {
        let s = state(for: ispb)
        let resolution = s.consumers.resolve(id: token.stream, sequence: token.sequence)
        guard resolution == .unknown else { return body(s, resolution) }
        let box = LoopBound(ctx)
        services.coordination.loadCursor(ispb: ispb, stream: token.stream) { [self] result in
            let ctx = box.value
            guard !ctx.isCancelled else { return }
            if case .success(let bytes?) = result, let cursor = StreamCursor(bytes: bytes),
               s.consumers.restore(id: token.stream, sequence: cursor.sequence, batch: cursor.batch, nowMs: services.loop.nowMs) {
                streamOpened(s, restored: true)
                let st = s.consumers.stream(token.stream)!
                services.store.recordLease(s.key, stream: st.id, sequence: UInt64(st.sequence), offsets: st.batch)
            }
            body(s, s.consumers.resolve(id: token.stream, sequence: token.sequence))
        }
    }

    private func respondResolution(_ ctx: RequestContext, _ resolution: PointerResolution) {
        switch resolution {
        case .closed:
            ctx.respond(problem: Problem(.streamGone, detail: "the stream was closed or expired"))
        default:
            metrics.unknownPointers.increment()
            ctx.respond(problem: Problem(.unknownPointer, detail: resolution == .stale ? "pointer is no longer current" : "no such pointer"))
        }
    }

    /// Makes the stream's batch acknowledgement durable (fdatasync), then continues. The stream
    /// cannot expire meanwhile; a second request of the same pointer acknowledges the same
    /// batch again (idempotent) and `deliver` sorts out which of them leases.
    private func acknowledge(_ ctx: RequestContext, state s: PartitionState, stream: UInt64, then: @escaping () -> Void) {
        let offsets = s.consumers.batchToAcknowledge(id: stream)
        guard !offsets.isEmpty else { return then() }
        s.consumers.beginRequest(id: stream, nowMs: services.loop.nowMs)
        let box = LoopBound(PendingAcknowledgement(service: self, state: s, ctx: ctx, then: then))
        services.store.acknowledge(s.key, offsets: offsets) { result in
            let pending = box.value
            pending.service.acknowledgeCompleted(pending, stream: stream, offsets: offsets, result: result)
        }
    }

    /// What an acknowledgement in flight continues with (a class: the release compiler of
    /// Swift 6.3 crashes on a tuple of these carried through the closure).
    final class PendingAcknowledgement {
        let service: PullService
        let state: PartitionState
        let ctx: RequestContext
        let then: () -> Void

        init(service: PullService, state: PartitionState, ctx: RequestContext, then: @escaping () -> Void) {
            self.service = service
            self.state = state
            self.ctx = ctx
            self.then = then
        }
    }

    private func acknowledgeCompleted(_ pending: PendingAcknowledgement, stream: UInt64, offsets: [UInt64],
                                      result: Result<Void, LogStoreError>) {
        let s = pending.state
        let ctx = pending.ctx
        let then = pending.then
        s.consumers.endRequest(id: stream, nowMs: services.loop.nowMs)
        switch result {
        case .success:
            metrics.acknowledged.increment(by: s.consumers.acknowledged(id: stream, offsets: offsets))
            guard !ctx.isCancelled else { return }
            then()
        case .failure(let error):
            services.logger.error("acknowledgement failed", metadata: ["partition": "\(s.key)", "error": "\(error)"])
            guard !ctx.isCancelled else { return }
            ctx.respond(problem: Problem(.storageUnavailable, detail: "the acknowledgement could not be stored durably"),
                        headers: [HTTPHeader("Retry-After", "1")])
        }
    }

    /// For a request that followed pointer `sequence` (its acknowledgement durable): leases and
    /// sends the next batch, or holds the request until messages arrive.
    private func deliver(_ ctx: RequestContext, state s: PartitionState, stream: UInt64, after sequence: UInt32, shape: Shape) {
        let now = services.loop.nowMs
        let leasedAgain = s.consumers.leasedAgainCount
        switch s.consumers.leaseNext(id: stream, after: sequence, max: shape.batchMax, nowMs: now) {
        case .gone:
            respondResolution(ctx, .closed)
        case .answerCurrent:
            // A concurrent request of the same pointer was answered first: this one is its retry.
            let st = s.consumers.stream(stream)!
            respondBatch(ctx, state: s, stream: st, shape: shape, redelivery: !st.batch.isEmpty)
        case .leased(let offsets):
            let st = s.consumers.stream(stream)!
            services.store.recordLease(s.key, stream: stream, sequence: UInt64(st.sequence), offsets: offsets)
            metrics.delivered.increment(by: offsets.count)
            metrics.redelivered.increment(by: Int(s.consumers.leasedAgainCount - leasedAgain))
            respondBatch(ctx, state: s, stream: st, shape: shape, redelivery: false)
        case .nothingAvailable:
            let waitMs = UInt64(services.config.longPollSeconds) * 1000
            guard waitMs > 0, !draining else {
                return respondBatch(ctx, state: s, stream: s.consumers.stream(stream)!, shape: shape, redelivery: false)
            }
            hold(ctx, state: s, stream: stream, sequence: sequence, shape: shape, waitMs: waitMs)
        }
    }

    /// Long poll: the request waits for an append (`wake`) or its timer (204, same pointer).
    private func hold(_ ctx: RequestContext, state s: PartitionState, stream: UInt64, sequence: UInt32, shape: Shape, waitMs: UInt64) {
        endWait(s, stream: stream)   // at most one held request per stream
        s.consumers.beginRequest(id: stream, nowMs: services.loop.nowMs)
        let timer = LoopTimer(loop: services.loop)
        let waiter = Waiter(stream: stream, sequence: sequence, ctx: ctx, shape: shape, timer: timer)
        s.waiters.append(waiter)
        waitingRequests += 1
        metrics.longPolls.record(waitingRequests)
        timer.start(afterMs: waitMs) { [unowned self, unowned waiter] in
            finishWait(s, waiter, deliverIfAvailable: false)
        }
        ctx.onCancel = { [unowned self, unowned waiter] in
            removeWaiter(s, waiter)
        }
    }

    /// Answers with the stream's current batch (200) or nothing (204), and its pointer.
    ///
    /// gzip: a body of at most `inlineGzipBytesMax` is framed and compressed here (well under a
    /// millisecond); a larger one is framed and compressed on the worker pool and answered when
    /// it comes back, so the loop never spends more than a bounded time on one response (ten
    /// 4 MB messages took 1.1 s at level 1). The result is kept for retries of the same
    /// pointer (`gzipCacheBytesMax` over all streams, one batch per stream, dropped when the
    /// stream moves on or closes), and requests of a batch whose compression is in flight wait
    /// for it instead of compressing it again.
    private func respondBatch(_ ctx: RequestContext, state s: PartitionState, stream st: StreamState, shape: Shape,
                              redelivery: Bool) {
        let next = "/api/v1/out/\(s.key.ispb)/stream/" + issue(s, st)
        touchRedis(s, st)
        dropStaleGzip(st)
        guard !st.batch.isEmpty else {
            ctx.respond(HTTPResponse(status: 204, headers: [HTTPHeader("PI-Pull-Next", next)]))
            return
        }
        if shape.gzip {
            if let hit = gzipped[st.id], hit.sequence == st.sequence, hit.batch == st.batch,
               hit.representation == shape.representation {
                if redelivery { metrics.redelivered.increment(by: st.batch.count) }
                metrics.gzipReused.increment()
                ctx.respond(HTTPResponse(status: 200, headers: [HTTPHeader("PI-Pull-Next", next)] + hit.headers, body: [hit.body]))
                return
            }
            if let pending = compressing[st.id], pending.sequence == st.sequence, pending.batch == st.batch,
               pending.representation == shape.representation {
                if redelivery { metrics.redelivered.increment(by: st.batch.count) }
                metrics.gzipReused.increment()
                pending.waiters.append(ctx)
                return
            }
        }
        let records: [Record]
        do {
            records = try read(s.key, offsets: st.batch)
        } catch {
            services.logger.critical("leased messages cannot be read", metadata: [
                "partition": "\(s.key)", "offsets": "\(st.batch)", "error": "\(error)"])
            close(s, stream: st.id)
            ctx.respond(problem: Problem(.internalError, detail: "stored messages could not be read"))
            return
        }
        if redelivery { metrics.redelivered.increment(by: records.count) }
        var headers: [HTTPHeader] = []
        let framing: BatchFraming
        if shape.representation == .single {
            let r = records[0]
            headers.append(HTTPHeader("Content-Type", PullResponseBody.partContentType))
            headers.append(HTTPHeader("PI-ResourceId", PullResponseBody.resourceID(high: r.id.high, low: r.id.low)))
            framing = .single(r.payload)
        } else {
            let parts = records.map { PullResponseBody.Part(idHigh: $0.id.high, idLow: $0.id.low, payload: $0.payload) }
            let random = Crypto.randomBytes(16)
            let boundary = PullResponseBody.boundary(random: UInt64(bigEndianBytes: random[0..<8]),
                                                     UInt64(bigEndianBytes: random[8..<16]))
            headers.append(HTTPHeader("Content-Type", "multipart/mixed; boundary=" + boundary))
            framing = .multipart(parts, boundary: boundary)
        }
        guard shape.gzip else {
            ctx.respond(HTTPResponse(status: 200, headers: [HTTPHeader("PI-Pull-Next", next)] + headers, body: framing.body()))
            return
        }
        headers.append(HTTPHeader("Content-Encoding", "gzip"))
        let payloadBytes = shape.representation == .single ? records[0].payload.count : records.reduce(0) { $0 + $1.payload.count }
        guard payloadBytes > Self.inlineGzipBytesMax else {
            ctx.respond(HTTPResponse(status: 200, headers: [HTTPHeader("PI-Pull-Next", next)] + headers,
                                     body: [Gzip.compress(framing.body())]))
            return
        }
        let pending = PendingCompression(sequence: st.sequence, batch: st.batch, representation: shape.representation, first: ctx)
        let id = st.id
        if compressing[id] == nil { compressing[id] = pending }
        metrics.gzipOffLoop.increment()
        WorkQueue.run(on: services.loop, { Gzip.compress(framing.body()) }, completion: { [self] body in
            if compressing[id] === pending { compressing[id] = nil }
            if let now = s.consumers.stream(id), now.sequence == pending.sequence, now.batch == pending.batch {
                // Still the stream's batch: keep it for retries (within the budget), and count
                // the compression as activity of the stream.
                s.consumers.touch(id: id, nowMs: services.loop.nowMs)
                keepGzip(id, CompressedBatch(sequence: pending.sequence, batch: pending.batch,
                                             representation: pending.representation, headers: headers, body: body))
            }
            let response = HTTPResponse(status: 200, headers: [HTTPHeader("PI-Pull-Next", next)] + headers, body: [body])
            for ctx in pending.waiters where !ctx.isCancelled { ctx.respond(response) }
        })
    }

    /// Bodies up to this many payload bytes are gzip'd on the loop (level 1 runs at roughly
    /// 50-100 MB/s: at most about a millisecond); larger ones on the worker pool.
    static let inlineGzipBytesMax = 64 * 1024
    /// Compressed batches kept for retries, over all streams of this node.
    static let gzipCacheBytesMax = 64 << 20

    /// A batch's body before compression: built where it is compressed (on a worker for large
    /// batches), so that the loop does not copy tens of MB into the multipart framing either.
    enum BatchFraming: Sendable {
        case single([UInt8])
        case multipart([PullResponseBody.Part], boundary: String)

        func body() -> [[UInt8]] {
            switch self {
            case .single(let payload): return [payload]
            case .multipart(let parts, let boundary): return PullResponseBody.multipart(parts, boundary: boundary).chunks
            }
        }
    }

    /// A gzip'd batch kept for retries of its pointer: the headers after `PI-Pull-Next` and
    /// the body.
    struct CompressedBatch {
        let sequence: UInt32
        let batch: [UInt64]
        let representation: PullRepresentation
        let headers: [HTTPHeader]
        let body: [UInt8]
    }

    /// A compression in flight on the worker pool and the requests of the same batch waiting
    /// for it.
    final class PendingCompression {
        let sequence: UInt32
        let batch: [UInt64]
        let representation: PullRepresentation
        var waiters: [RequestContext]

        init(sequence: UInt32, batch: [UInt64], representation: PullRepresentation, first: RequestContext) {
            self.sequence = sequence
            self.batch = batch
            self.representation = representation
            waiters = [first]
        }
    }

    private func keepGzip(_ stream: UInt64, _ batch: CompressedBatch) {
        dropGzip(stream)
        guard gzippedBytes + batch.body.count <= Self.gzipCacheBytesMax else { return }
        gzipped[stream] = batch
        gzippedBytes += batch.body.count
    }

    private func dropGzip(_ stream: UInt64) {
        guard let old = gzipped.removeValue(forKey: stream) else { return }
        gzippedBytes -= old.body.count
    }

    /// The kept body of an earlier batch of the stream is of no use any more.
    private func dropStaleGzip(_ st: StreamState) {
        if let kept = gzipped[st.id], kept.sequence != st.sequence || kept.batch != st.batch { dropGzip(st.id) }
    }

    /// The token of the stream's current pointer; the last two issued per stream are kept so
    /// that following them needs no HMAC computation.
    private func issue(_ s: PartitionState, _ st: StreamState) -> String {
        if let t = issued[st.id], t.current.sequence == st.sequence {
            return t.currentText
        }
        let text = PullToken(stream: st.id, sequence: st.sequence).encode(ispb: s.key.ispb, mac: services.tokenMAC)
        var t = issued[st.id] ?? IssuedTokens(ispb: s.key.ispb, current: (st.sequence, []), previous: nil, currentText: "")
        if !t.current.bytes.isEmpty { t.previous = t.current }
        t.current = (st.sequence, Array(text.utf8))
        t.currentText = text
        issued[st.id] = t
        return text
    }

    /// Tokens issued for one stream.
    struct IssuedTokens {
        let ispb: String
        var current: (sequence: UInt32, bytes: [UInt8])
        var previous: (sequence: UInt32, bytes: [UInt8])?
        var currentText: String

        func matches(_ text: Substring, sequence: UInt32) -> Bool {
            if sequence == current.sequence { return PullToken.sameToken(text, current.bytes) }
            if let previous, sequence == previous.sequence { return PullToken.sameToken(text, previous.bytes) }
            return false
        }
    }

    /// Slides the stream's slot lease in Redis and caches its cursor there (no waiting: the
    /// answer does not depend on it). At most once per `touchIntervalMs` per stream: the
    /// lease lasts the idle time, and a cursor at most that old is what another node sees.
    private func touchRedis(_ s: PartitionState, _ st: StreamState) {
        let now = services.loop.nowMs
        if let last = lastTouchMs[st.id], now &- last < Self.touchIntervalMs {
            // Written by the next flush instead: Redis is at most one interval behind.
            if untouched.isEmpty { touchTimer.start(afterMs: Self.touchIntervalMs) { [unowned self] in flushTouches() } }
            untouched[st.id] = s.key.ispb
            return
        }
        lastTouchMs[st.id] = now
        untouched[st.id] = nil
        services.coordination.touch(ispb: s.key.ispb, stream: st.id,
                                    cursor: StreamCursor(sequence: st.sequence, batch: st.batch).bytes) { [unowned self] result in
            if case .success = result { noteRedis(answering: true) } else { noteRedis(answering: false) }
        }
    }

    /// Touches the streams whose last answer was not yet reflected in Redis.
    private func flushTouches() {
        let pending = untouched
        untouched = [:]
        for (id, ispb) in pending {
            guard let s = partitions[ispb], let st = s.consumers.stream(id) else { continue }
            lastTouchMs[id] = nil
            touchRedis(s, st)
        }
    }

    /// The fallback gauge follows the last answer (a breaker that is not closed also counts):
    /// a Redis that stops answering may take several deadlines to open the breaker.
    private func noteRedis(answering: Bool) {
        guard answering != redisAnswering else { return }
        redisAnswering = answering
        metrics.redisFallback.record(answering ? 0 : 1)
        if !answering { services.logger.warning("Redis not answering: pull slots and cursors are accounted locally") }
    }

    /// Reads the records at `offsets`, in batch order. A batch of fresh offsets is one
    /// ascending run: one read; returned offsets may be scattered: one read per run.
    private func read(_ p: PartitionKey, offsets: [UInt64]) throws -> [Record] {
        let first = offsets[0]
        if offsets.count == 1 || zip(offsets, offsets.dropFirst()).allSatisfy({ $0 + 1 == $1 }) {
            let run = try services.store.read(p, from: first, maxRecords: offsets.count, maxBytes: Int.max)
            guard run.count == offsets.count, run.first?.offset == first else {
                throw PullError.missingRecord(run.count < offsets.count ? first + UInt64(run.count) : first)
            }
            return run
        }
        var byOffset: [UInt64: Record] = [:]
        let sorted = offsets.sorted()
        var i = 0
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count && sorted[j + 1] == sorted[j] + 1 { j += 1 }
            let run = try services.store.read(p, from: sorted[i], maxRecords: j - i + 1, maxBytes: Int.max)
            for r in run { byOffset[r.offset] = r }
            i = j + 1
        }
        return try offsets.map { o in
            guard let r = byOffset[o] else { throw PullError.missingRecord(o) }
            return r
        }
    }

    enum PullError: Error { case missingRecord(UInt64) }

    // MARK: waiting

    /// Hands available messages to waiting requests, first come first served.
    private func wake(_ s: PartitionState) {
        while let waiter = s.waiters.first, s.consumers.hasAvailable {
            finishWait(s, waiter, deliverIfAvailable: true)
        }
    }

    private func finishWait(_ s: PartitionState, _ waiter: Waiter, deliverIfAvailable: Bool) {
        removeWaiter(s, waiter)
        let ctx = waiter.ctx
        ctx.onCancel = nil
        guard !ctx.isCancelled else { return }
        guard let st = s.consumers.stream(waiter.stream) else { return respondResolution(ctx, .closed) }
        if deliverIfAvailable {
            deliver(ctx, state: s, stream: waiter.stream, after: waiter.sequence, shape: waiter.shape)
        } else {
            respondBatch(ctx, state: s, stream: st, shape: waiter.shape, redelivery: false)
        }
    }

    /// Takes a held request off the list (answered, timed out or cancelled) and ends it.
    private func removeWaiter(_ s: PartitionState, _ waiter: Waiter) {
        waiter.timer.stop()
        guard let i = s.waiters.firstIndex(where: { $0 === waiter }) else { return }
        s.waiters.remove(at: i)
        s.consumers.endRequest(id: waiter.stream, nowMs: services.loop.nowMs)
        waitingRequests -= 1
        metrics.longPolls.record(waitingRequests)
    }

    /// A new request of a stream ends the one still waiting (answered 204, same pointer).
    private func endWait(_ s: PartitionState, stream: UInt64) {
        guard let waiter = s.waiters.first(where: { $0.stream == stream }) else { return }
        finishWait(s, waiter, deliverIfAvailable: false)
    }

    // MARK: opening, closing and expiry

    private func streamOpened(_ s: PartitionState, restored: Bool) {
        openStreams += 1
        if restored { metrics.restoredStreams.increment() } else { metrics.streamsOpened.increment() }
        metrics.streamsOpen.record(openStreams)
        s.gauges?.slotsInUse.record(s.consumers.streams.count)
    }

    private func streamClosed(_ s: PartitionState, stream: UInt64, expired: Bool) {
        openStreams -= 1
        issued[stream] = nil
        dropGzip(stream)
        lastTouchMs[stream] = nil
        untouched[stream] = nil
        services.store.releaseLease(s.key, stream: stream)
        releaseInRedis(StreamRef(ispb: s.key.ispb, stream: stream))
        if expired { metrics.streamsExpired.increment() } else { metrics.streamsClosed.increment() }
        metrics.streamsOpen.record(openStreams)
        s.gauges?.slotsInUse.record(s.consumers.streams.count)
    }

    /// Closes a live stream (DELETE, unreadable batch). A request of it still held (one that
    /// raced the DELETE) is answered 410; its batch returns to the front and wakes waiters.
    private func close(_ s: PartitionState, stream: UInt64) {
        guard s.consumers.stream(stream) != nil else { return }
        let returned = s.consumers.close(id: stream, nowMs: services.loop.nowMs)
        streamClosed(s, stream: stream, expired: false)
        while let waiter = s.waiters.first(where: { $0.stream == stream }) { finishWait(s, waiter, deliverIfAvailable: false) }
        if returned { wake(s) }
    }

    private func releaseInRedis(_ ref: StreamRef) {
        services.coordination.release(ispb: ref.ispb, stream: ref.stream) { [self] result in
            if case .failure = result {
                unreleased.insert(ref)
                noteRedis(answering: false)
            } else {
                noteRedis(answering: true)
            }
        }
    }

    /// Once a second: abandoned streams expire (their batches return to the front and wake
    /// waiters), tombstones age out, gauges refresh.
    /// Expires idle streams, prunes tombstones, refreshes gauges, re-sends failed releases.
    ///
    /// libuv runs timers before it reads sockets in each turn. After a stall (a long turn, or
    /// the whole process descheduled: the soak at 3,250 pulls/s saw seconds with the hub at 1%
    /// CPU), this sweep would run before the requests that arrived meanwhile are read, and
    /// expire streams whose clients were asking all along (their pointers then answered 410 and
    /// their batches went to other streams). So a sweep that runs more than
    /// `sweepLateToleranceMs` late expires nothing; the next one, after a turn that read the
    /// waiting requests, decides.
    private func sweep() {
        let now = services.loop.nowMs
        let late = now &- lastSweepMs > Self.sweepIntervalMs + Self.sweepLateToleranceMs
        lastSweepMs = now
        if late { metrics.lateSweeps.increment() }
        let idleMs = UInt64(services.config.streamIdleSeconds) * 1000
        let wallMs = services.wallClockMs()
        var backlogTotal: UInt64 = 0
        for s in partitions.values {
            let expired = late ? [] : s.consumers.expire(nowMs: now, idleMs: idleMs)
            for id in expired { streamClosed(s, stream: id, expired: true) }
            if !expired.isEmpty { wake(s) }
            s.consumers.pruneTombstones(nowMs: now, ttlMs: max(idleMs * 10, Self.tombstoneTTLMsMin))
            backlogTotal += s.consumers.backlog
            s.gauges?.backlog.record(Int64(s.consumers.backlog))
            s.gauges?.leased.record(s.consumers.leasedCount)
            s.gauges?.lag.record(lagSeconds(s, wallMs: wallMs))
        }
        metrics.streamsOpen.record(openStreams)
        metrics.backlogTotal.record(Int64(backlogTotal))
        if services.redis.state != .closed {
            noteRedis(answering: false)
        } else if !unreleased.isEmpty {
            retryReleases()
        }
    }

    /// Age of the oldest unacknowledged message (the one at the ack floor), 0 when none.
    private func lagSeconds(_ s: PartitionState, wallMs: Int64) -> Double {
        let floor = s.consumers.ackFloor
        guard floor < s.consumers.endOffset else { return 0 }
        if s.floorTimestamp?.offset != floor {
            guard let r = try? services.store.read(s.key, from: floor, maxRecords: 1, maxBytes: 0).first else { return 0 }
            s.floorTimestamp = (r.offset, r.timestampMs)
        }
        return Double(max(0, wallMs - s.floorTimestamp!.ms)) / 1000
    }

    private func localRetryAfterSeconds(_ s: PartitionState, now: UInt64) -> Int {
        let idleMs = UInt64(services.config.streamIdleSeconds) * 1000
        let earliest = s.consumers.earliestExpiryMs(idleMs: idleMs) ?? now + idleMs
        return Coordination.retryAfterSeconds(ms: Int(earliest > now ? earliest - now : 0))
    }

    private func newStreamID() -> UInt64 {
        nextStreamSalt &+= 0x9E37_79B9_7F4A_7C15
        var z = nextStreamSalt
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Redis came back (or answered for the first time): register this node's live streams
    /// (slots and cursors) again and release the ones closed while it was away.
    func reregister() {
        noteRedis(answering: true)
        var entries: [(ispb: String, stream: UInt64, cursor: [UInt8])] = []
        for s in partitions.values {
            for st in s.consumers.streams.values {
                entries.append((s.key.ispb, st.id, StreamCursor(sequence: st.sequence, batch: st.batch).bytes))
            }
        }
        retryReleases()
        guard !entries.isEmpty else { return }
        services.logger.notice("Redis available; re-registering streams", metadata: ["streams": "\(entries.count)"])
        services.coordination.reregister(entries)
    }

    /// Releases the streams whose release Redis missed. Idempotent there; also undoes a lease
    /// that a timed-out touch re-added when a paused Redis resumed.
    private func retryReleases() {
        let stale = unreleased
        unreleased = []
        for ref in stale where partitions[ref.ispb]?.consumers.stream(ref.stream) == nil { releaseInRedis(ref) }
    }

    /// Shutdown: answer every long poll now (204, same pointer) and refuse new streams.
    func drain() {
        draining = true
        for s in partitions.values {
            while let w = s.waiters.first { finishWait(s, w, deliverIfAvailable: false) }
        }
    }
}

/// A stream's state as cached in Redis: sequence, then the current batch's offsets.
struct StreamCursor {
    let sequence: UInt32
    let batch: [UInt64]

    init(sequence: UInt32, batch: [UInt64]) {
        self.sequence = sequence
        self.batch = batch
    }

    init?(bytes: [UInt8]) {
        guard bytes.count >= 4, (bytes.count - 4) % 8 == 0, (bytes.count - 4) / 8 <= PullService.multipartBatchMax else { return nil }
        sequence = bytes[0..<4].reduce(0) { $0 << 8 | UInt32($1) }
        batch = stride(from: 4, to: bytes.count, by: 8).map { i in bytes[i..<i + 8].reduce(0) { $0 << 8 | UInt64($1) } }
    }

    var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 4 + 8 * batch.count)
        var v = sequence
        for i in (0..<4).reversed() { out[i] = UInt8(truncatingIfNeeded: v); v >>= 8 }
        for (n, o) in batch.enumerated() {
            var w = o
            for i in (0..<8).reversed() { out[4 + 8 * n + i] = UInt8(truncatingIfNeeded: w); w >>= 8 }
        }
        return out
    }
}

/// Gauges of one ISPB's partition on this node.
final class PartitionGauges {
    let slotsInUse: Gauge
    let backlog: Gauge
    let leased: Gauge
    let lag: Gauge

    init(ispb: String) {
        let d = [("ispb", ispb)]
        slotsInUse = Gauge(label: "rtpstream_pull_slots_in_use", dimensions: d)
        backlog = Gauge(label: "rtpstream_pull_backlog_messages", dimensions: d)
        leased = Gauge(label: "rtpstream_pull_leased_messages", dimensions: d)
        lag = Gauge(label: "rtpstream_pull_lag_seconds", dimensions: d)
    }
}

/// The pull path's metrics (docs/pull.md).
final class PullMetrics {
    enum Refusal: String { case slots, localSlots = "local_slots", rate }
    let streamsOpened = Counter(label: "rtpstream_pull_streams_opened_total")
    let streamsClosed = Counter(label: "rtpstream_pull_streams_closed_total")
    let streamsExpired = Counter(label: "rtpstream_pull_streams_expired_total")
    let lateSweeps = Counter(label: "rtpstream_pull_late_sweeps_total")
    let restoredStreams = Counter(label: "rtpstream_pull_streams_restored_total")
    let streamsOpen = Gauge(label: "rtpstream_pull_streams_open")
    let longPolls = Gauge(label: "rtpstream_pull_long_polls_waiting")
    let delivered = Counter(label: "rtpstream_pull_messages_delivered_total")
    let redelivered = Counter(label: "rtpstream_pull_messages_redelivered_total")
    let acknowledged = Counter(label: "rtpstream_pull_messages_acknowledged_total")
    let retries = Counter(label: "rtpstream_pull_pointer_retries_total")
    let gzipOffLoop = Counter(label: "rtpstream_pull_gzip_worker_total")
    let gzipReused = Counter(label: "rtpstream_pull_gzip_reused_total")
    let unknownPointers = Counter(label: "rtpstream_pull_unknown_pointers_total")
    let localSlotDecisions = Counter(label: "rtpstream_pull_local_slot_decisions_total")
    let redisFallback = Gauge(label: "rtpstream_pull_redis_fallback")
    let backlogTotal = Gauge(label: "rtpstream_pull_backlog_messages_total")
    /// Partitions beyond `--ispb-metrics-max` (no per-ISPB series of their own).
    let ungaugedPartitions = Counter(label: "rtpstream_pull_partitions_without_gauges_total")
    private let refusals: [Refusal: Counter] = [
        .slots: Counter(label: "rtpstream_pull_refused_total", dimensions: [("reason", Refusal.slots.rawValue)]),
        .localSlots: Counter(label: "rtpstream_pull_refused_total", dimensions: [("reason", Refusal.localSlots.rawValue)]),
        .rate: Counter(label: "rtpstream_pull_refused_total", dimensions: [("reason", Refusal.rate.rawValue)]),
    ]

    init() {
        streamsOpen.record(0)
        longPolls.record(0)
        backlogTotal.record(0)
        redisFallback.record(1)   // until Redis first answers
    }

    func refused(_ r: Refusal) { refusals[r]!.increment() }
}

extension UInt64 {
    init(bigEndianBytes bytes: ArraySlice<UInt8>) {
        self = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }
}
