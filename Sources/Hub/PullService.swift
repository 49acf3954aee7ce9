import Coordination
import EventLoop
import HTTP
import HTTPServer
import LogStore
import Logging
import Metrics
import Streaming

/// The pull path (DESIGN.md §1 "Pull semantics", docs/api.md): streams of competing consumers
/// per ISPB, pointers, durable acknowledgements, long polls woken by appends, thread slots and
/// cursors in Redis with local fallback. Loop thread only.
///
/// Effects are applied here; the state transitions are `PartitionConsumers`' (Streaming),
/// which the model test exercises without I/O.
final class PullService {
    /// Messages per response by representation.
    static let multipartBatchMax = 10

    private let services: HubServices
    private var partitions: [String: PartitionState] = [:]
    private let sweepTimer: LoopTimer
    private var nextStreamSalt: UInt64
    private let metrics = PullMetrics()
    private var draining = false

    /// One ISPB's partition on this node: its consumers and the requests waiting for messages.
    final class PartitionState {
        let key: PartitionKey
        let consumers: PartitionConsumers
        var waiters: [Waiter] = []

        init(key: PartitionKey, consumers: PartitionConsumers) {
            self.key = key
            self.consumers = consumers
        }
    }

    /// A request held until a message arrives or its long poll ends.
    final class Waiter {
        let stream: UInt64
        let ctx: RequestContext
        let shape: Shape
        let timer: LoopTimer

        init(stream: UInt64, ctx: RequestContext, shape: Shape, timer: LoopTimer) {
            self.stream = stream
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
        nextStreamSalt = UInt64(services.ids.nextWord())
        sweepTimer.unref()
        sweepTimer.start(afterMs: 1000, repeatMs: 1000) { [unowned self] in sweep() }
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
                                           ackFloor: max(durable.ackFloor, services.store.startOffset(key)),
                                           ackedAbove: Set(durable.ackedAboveFloor), endOffset: end)
        let now = services.loop.nowMs
        for lease in durable.leases where lease.sequence <= UInt64(UInt32.max) {
            if consumers.restore(id: lease.stream, sequence: UInt32(lease.sequence), batch: lease.offsets, nowMs: now) {
                metrics.restoredStreams.increment()
            }
        }
        let s = PartitionState(key: key, consumers: consumers)
        partitions[ispb] = s
        return s
    }

    func backlog(of ispb: String) -> UInt64 { state(for: ispb).consumers.backlog }

    /// Durable appends landed in `partition`: wake its long polls.
    func appended(partition: PartitionKey) {
        let s = state(for: partition.ispb)
        s.consumers.appended(endOffset: services.store.durableEndOffset(partition))
        wake(s)
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
                    metrics.refused(.slots)
                    ctx.respond(problem: Problem(.slotsExhausted, detail: "\(used) of \(limit) streams of \(ispb) are open"),
                                headers: [HTTPHeader("Retry-After", String(decision.retryAfterSeconds ?? 1)),
                                          HTTPHeader("PI-Slots", "\(used)/\(limit)")])
                case .granted, .unavailable:
                    if decision == .unavailable { metrics.fallbackSlots.increment() }
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
        guard s.consumers.open(id: stream, nowMs: now) else {
            // This node's own accounting refuses (Redis unavailable, or it lost our leases).
            if redisGranted { services.coordination.release(ispb: ispb, stream: stream) }
            metrics.refused(.slots)
            let retry = localRetryAfterSeconds(s, now: now)
            ctx.respond(problem: Problem(.slotsExhausted, detail: "\(s.consumers.slotsMax) of \(s.consumers.slotsMax) streams of \(ispb) are open"),
                        headers: [HTTPHeader("Retry-After", String(retry)),
                                  HTTPHeader("PI-Slots", "\(s.consumers.slotsMax)/\(s.consumers.slotsMax)")])
            return
        }
        metrics.streamsOpened.increment()
        metrics.streamsOpen.record(openStreamCount())
        deliver(ctx, state: s, stream: stream, shape: shape)
    }

    func next(_ ctx: RequestContext) {
        guard let ispb = services.authorize(ctx), let shape = shape(ctx) else { return }
        guard let token = pointer(ctx, ispb: ispb) else { return }
        withRateCheck(ctx, ispb: ispb) { [self] in
            withStream(ctx, ispb: ispb, token: token) { [self] s, resolution in
                switch resolution {
                case .previous:
                    // A retry after a lost response: the same batch again, nothing acknowledged.
                    metrics.retries.increment()
                    cancelWaiter(s, stream: token.stream)
                    let st = s.consumers.stream(token.stream)!
                    s.consumers.setBusy(id: token.stream, false, nowMs: services.loop.nowMs)
                    respondBatch(ctx, state: s, stream: st, shape: shape, redelivery: true)
                case .current:
                    cancelWaiter(s, stream: token.stream)
                    acknowledge(ctx, state: s, stream: token.stream) { [self] in
                        deliver(ctx, state: s, stream: token.stream, shape: shape)
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
                cancelWaiter(s, stream: token.stream)
                acknowledge(ctx, state: s, stream: token.stream) { [self] in
                    close(s, stream: token.stream)
                    ctx.respond(HTTPResponse(status: 200))
                }
            case .previous:
                // The client never confirmed the current batch: it returns to the front.
                cancelWaiter(s, stream: token.stream)
                close(s, stream: token.stream)
                wake(s)
                ctx.respond(HTTPResponse(status: 200))
            default:
                respondResolution(ctx, resolution)
            }
        }
    }

    // MARK: steps

    private func shape(_ ctx: RequestContext) -> Shape? {
        guard let representation = PullRepresentation.negotiate(accept: ctx.request.header("accept")) else {
            ctx.respond(problem: Problem(.notAcceptable, detail: "Accept application/xml (one message) or multipart/mixed (up to \(Self.multipartBatchMax))"))
            return nil
        }
        return Shape(representation: representation, gzip: acceptsGzip(ctx.request.header("accept-encoding")))
    }

    private func pointer(_ ctx: RequestContext, ispb: String) -> PullToken? {
        guard let text = ctx.params["token"], let token = PullToken.decode(text, ispb: ispb, mac: services.tokenMAC) else {
            metrics.unknownPointers.increment()
            ctx.respond(problem: Problem(.unknownPointer, detail: "no such pointer"))
            return nil
        }
        return token
    }

    /// Request-rate window per ISPB (off unless configured; then one Redis round trip).
    private func withRateCheck(_ ctx: RequestContext, ispb: String, _ body: @escaping () -> Void) {
        guard services.config.rateLimitPerSecond > 0 else { return body() }
        let box = LoopBound(ctx)
        services.coordination.checkRate(ispb: ispb) { [self] decision in
            let ctx = box.value
            guard !ctx.isCancelled else { return }
            if case .limited = decision {
                metrics.refused(.rate)
                return ctx.respond(problem: Problem(.rateLimited, detail: "request rate of \(ispb) is over its limit"),
                                   headers: [HTTPHeader("Retry-After", String(decision.retryAfterSeconds ?? 1))])
            }
            body()
        }
    }

    /// Resolves a pointer; a stream unknown here may be another node's (or ours before a
    /// restart without its journal): its cursor in Redis restores it.
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
                metrics.restoredStreams.increment()
                return body(s, s.consumers.resolve(id: token.stream, sequence: token.sequence))
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

    /// Makes the stream's batch acknowledgement durable (fdatasync), then continues.
    private func acknowledge(_ ctx: RequestContext, state s: PartitionState, stream: UInt64, then: @escaping () -> Void) {
        let offsets = s.consumers.batchToAcknowledge(id: stream)
        guard !offsets.isEmpty else { return then() }
        s.consumers.setBusy(id: stream, true, nowMs: services.loop.nowMs)
        let box = LoopBound((self, s, ctx, then))
        services.store.acknowledge(s.key, offsets: offsets) { result in
            let (me, s, ctx, then) = box.value
            me.acknowledgeCompleted(s, stream: stream, offsets: offsets, ctx: ctx, result: result, then: then)
        }
    }

    private func acknowledgeCompleted(_ s: PartitionState, stream: UInt64, offsets: [UInt64], ctx: RequestContext,
                                      result: Result<Void, LogStoreError>, then: () -> Void) {
        let now = services.loop.nowMs
        switch result {
        case .success:
            s.consumers.acknowledged(id: stream, offsets: offsets)
            s.consumers.setBusy(id: stream, false, nowMs: now)
            metrics.acknowledged.increment(by: offsets.count)
            guard !ctx.isCancelled else { return }
            then()
        case .failure(let error):
            s.consumers.setBusy(id: stream, false, nowMs: now)
            services.logger.error("acknowledgement failed", metadata: ["partition": "\(s.key)", "error": "\(error)"])
            guard !ctx.isCancelled else { return }
            ctx.respond(problem: Problem(.storageUnavailable, detail: "the acknowledgement could not be stored durably"),
                        headers: [HTTPHeader("Retry-After", "1")])
        }
    }

    /// Leases and sends the next batch, or holds the request until messages arrive.
    private func deliver(_ ctx: RequestContext, state s: PartitionState, stream: UInt64, shape: Shape) {
        let now = services.loop.nowMs
        if s.consumers.hasAvailable {
            lease(ctx, state: s, stream: stream, shape: shape)
            return
        }
        let waitMs = UInt64(services.config.longPollSeconds) * 1000
        guard waitMs > 0, !draining, let st = s.consumers.stream(stream) else {
            if let st = s.consumers.stream(stream) { respondBatch(ctx, state: s, stream: st, shape: shape, redelivery: false) }
            return
        }
        s.consumers.setBusy(id: stream, true, nowMs: now)
        let timer = LoopTimer(loop: services.loop)
        let waiter = Waiter(stream: stream, ctx: ctx, shape: shape, timer: timer)
        s.waiters.append(waiter)
        metrics.longPolls.record(waitingCount())
        timer.start(afterMs: waitMs) { [unowned self, unowned waiter] in
            finishWait(s, waiter, deliverIfAvailable: false)
        }
        ctx.onCancel = { [unowned self, unowned waiter] in
            removeWaiter(s, waiter)
            s.consumers.setBusy(id: stream, false, nowMs: services.loop.nowMs)
        }
        _ = st
    }

    private func lease(_ ctx: RequestContext, state s: PartitionState, stream: UInt64, shape: Shape) {
        let offsets = s.consumers.leaseNext(id: stream, max: shape.batchMax, nowMs: services.loop.nowMs)
        guard let st = s.consumers.stream(stream) else { return }
        services.store.recordLease(s.key, stream: stream, sequence: UInt64(st.sequence), offsets: offsets)
        metrics.delivered.increment(by: offsets.count)
        respondBatch(ctx, state: s, stream: st, shape: shape, redelivery: false)
    }

    /// Answers with the stream's current batch (200) or nothing (204), and its pointer.
    private func respondBatch(_ ctx: RequestContext, state s: PartitionState, stream st: StreamState, shape: Shape,
                              redelivery: Bool) {
        let next = "/api/v1/out/\(s.key.ispb)/stream/" + PullToken(stream: st.id, sequence: st.sequence)
            .encode(ispb: s.key.ispb, mac: services.tokenMAC)
        services.coordination.touch(ispb: s.key.ispb, stream: st.id,
                                    cursor: StreamCursor(sequence: st.sequence, batch: st.batch).bytes, completion: nil)
        guard !st.batch.isEmpty else {
            ctx.respond(HTTPResponse(status: 204, headers: [HTTPHeader("PI-Pull-Next", next)]))
            return
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
        var headers = [HTTPHeader("PI-Pull-Next", next)]
        var body: [[UInt8]]
        if shape.representation == .single {
            headers.append(HTTPHeader("Content-Type", "application/xml; charset=utf-8"))
            headers.append(HTTPHeader("PI-ResourceId", records[0].id.description))
            body = [records[0].payload]
        } else {
            let (chunks, contentType) = Multipart.build(
                parts: records.map { ([HTTPHeader("Content-Type", "application/xml; charset=utf-8"),
                                       HTTPHeader("PI-ResourceId", $0.id.description)], $0.payload) },
                boundary: "rtp-\(services.boundaryToken())")
            headers.append(HTTPHeader("Content-Type", contentType))
            body = chunks
        }
        if shape.gzip {
            body = [Gzip.compress(body)]
            headers.append(HTTPHeader("Content-Encoding", "gzip"))
        }
        ctx.respond(HTTPResponse(status: 200, headers: headers, body: body))
    }

    /// Reads the records at `offsets` (contiguous runs read together), in batch order.
    private func read(_ p: PartitionKey, offsets: [UInt64]) throws -> [Record] {
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
        s.consumers.setBusy(id: waiter.stream, false, nowMs: services.loop.nowMs)
        guard !ctx.isCancelled, let st = s.consumers.stream(waiter.stream) else { return }
        if deliverIfAvailable && s.consumers.hasAvailable {
            lease(ctx, state: s, stream: waiter.stream, shape: waiter.shape)
        } else {
            respondBatch(ctx, state: s, stream: st, shape: waiter.shape, redelivery: false)
        }
    }

    private func removeWaiter(_ s: PartitionState, _ waiter: Waiter) {
        waiter.timer.stop()
        s.waiters.removeAll { $0 === waiter }
        metrics.longPolls.record(waitingCount())
    }

    /// A new request of a stream ends the one still waiting (answered 204, same pointer).
    private func cancelWaiter(_ s: PartitionState, stream: UInt64) {
        guard let waiter = s.waiters.first(where: { $0.stream == stream }) else { return }
        finishWait(s, waiter, deliverIfAvailable: false)
    }

    private func waitingCount() -> Int { partitions.values.reduce(0) { $0 + $1.waiters.count } }

    private func openStreamCount() -> Int { partitions.values.reduce(0) { $0 + $1.consumers.streams.count } }

    // MARK: closing and expiry

    private func close(_ s: PartitionState, stream: UInt64) {
        s.consumers.close(id: stream, nowMs: services.loop.nowMs)
        services.store.releaseLease(s.key, stream: stream)
        services.coordination.release(ispb: s.key.ispb, stream: stream)
        metrics.streamsClosed.increment()
        metrics.streamsOpen.record(openStreamCount())
    }

    /// Once a second: abandoned streams expire (their batches return to the front and wake
    /// waiters), tombstones age out, gauges refresh.
    private func sweep() {
        let now = services.loop.nowMs
        let idleMs = UInt64(services.config.streamIdleSeconds) * 1000
        var backlogTotal: UInt64 = 0
        for s in partitions.values {
            let expired = s.consumers.expire(nowMs: now, idleMs: idleMs)
            for id in expired {
                services.store.releaseLease(s.key, stream: id)
                services.coordination.release(ispb: s.key.ispb, stream: id)
                metrics.streamsExpired.increment()
            }
            if !expired.isEmpty { wake(s) }
            s.consumers.pruneTombstones(nowMs: now, ttlMs: max(idleMs * 10, 300_000))
            backlogTotal += s.consumers.backlog
            metrics.backlog(ispb: s.key.ispb, s.consumers.backlog, leased: s.consumers.leasedCount)
        }
        metrics.streamsOpen.record(openStreamCount())
        metrics.backlogTotal.record(Int64(backlogTotal))
    }

    private func localRetryAfterSeconds(_ s: PartitionState, now: UInt64) -> Int {
        let idleMs = UInt64(services.config.streamIdleSeconds) * 1000
        let earliest = s.consumers.streams.values.map { $0.lastActivityMs + idleMs }.min() ?? now
        return Coordination.retryAfterSeconds(ms: Int(earliest > now ? earliest - now : 0))
    }

    private func newStreamID() -> UInt64 {
        nextStreamSalt &+= 0x9E37_79B9_7F4A_7C15
        var z = nextStreamSalt
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Redis came back: register this node's live streams (slots and cursors) again.
    func reregister() {
        var entries: [(ispb: String, stream: UInt64, cursor: [UInt8])] = []
        for s in partitions.values {
            for st in s.consumers.streams.values {
                entries.append((s.key.ispb, st.id, StreamCursor(sequence: st.sequence, batch: st.batch).bytes))
            }
        }
        guard !entries.isEmpty else { return }
        services.logger.notice("Redis available again; re-registering streams", metadata: ["streams": "\(entries.count)"])
        services.coordination.reregister(entries)
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
        var out = withUnsafeBytes(of: sequence.bigEndian) { Array($0) }
        for o in batch { out.append(contentsOf: withUnsafeBytes(of: o.bigEndian) { Array($0) }) }
        return out
    }
}

/// The pull path's metrics (docs/operations.md).
final class PullMetrics {
    enum Refusal: String { case slots, rate }
    let streamsOpened = Counter(label: "rtpstream_pull_streams_opened_total")
    let streamsClosed = Counter(label: "rtpstream_pull_streams_closed_total")
    let streamsExpired = Counter(label: "rtpstream_pull_streams_expired_total")
    let restoredStreams = Counter(label: "rtpstream_pull_streams_restored_total")
    let streamsOpen = Gauge(label: "rtpstream_pull_streams_open")
    let longPolls = Gauge(label: "rtpstream_pull_long_polls_waiting")
    let delivered = Counter(label: "rtpstream_pull_messages_delivered_total")
    let redelivered = Counter(label: "rtpstream_pull_messages_redelivered_total")
    let acknowledged = Counter(label: "rtpstream_pull_messages_acknowledged_total")
    let retries = Counter(label: "rtpstream_pull_pointer_retries_total")
    let unknownPointers = Counter(label: "rtpstream_pull_unknown_pointers_total")
    let fallbackSlots = Counter(label: "rtpstream_pull_local_slot_decisions_total")
    let backlogTotal = Gauge(label: "rtpstream_pull_backlog_messages_total")
    private var refusals: [Refusal: Counter] = [:]
    private var backlogs: [String: (Gauge, Gauge)] = [:]

    func refused(_ r: Refusal) {
        if refusals[r] == nil {
            refusals[r] = Counter(label: "rtpstream_pull_refused_total", dimensions: [("reason", r.rawValue)])
        }
        refusals[r]!.increment()
    }

    func backlog(ispb: String, _ backlog: UInt64, leased: Int) {
        if backlogs[ispb] == nil {
            backlogs[ispb] = (Gauge(label: "rtpstream_pull_backlog_messages", dimensions: [("ispb", ispb)]),
                              Gauge(label: "rtpstream_pull_leased_messages", dimensions: [("ispb", ispb)]))
        }
        backlogs[ispb]!.0.record(Int64(backlog))
        backlogs[ispb]!.1.record(leased)
    }
}
