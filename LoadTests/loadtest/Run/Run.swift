import EventLoop
import Foundation
import Glibc
import ISO20022

/// Drives one scenario on one libuv loop (the calling thread): connects every PSP's
/// streams and producers, preloads messages through the send path, runs the segments at
/// their rates, drains until every sent message was delivered, closes the streams, and
/// returns what was measured and checked. Stops by itself at `scenario.capSeconds` at the
/// latest, or on SIGINT/SIGTERM.
final class Run {
    enum Phase: Equatable {
        case connecting, preload, segment(Int), drain, closing, done
    }

    let loop: Loop
    let scenario: Scenario
    let target: Target
    let ledger: Ledger
    let recorder: Recorder
    let counters = ConnectionCounters()
    let pullPacer: Pacer
    let sendPacer: Pacer
    let delays: Delays
    let generator: Pacs008Generator
    var rng: SplitMix64
    private(set) var psps: [PSPAgent] = []
    private(set) var phase = Phase.connecting
    let hostHeader: [UInt8]
    private var startPaths: [[UInt8]] = []
    private var sendPaths: [[UInt8]] = []
    private var sequence: UInt64 = 0
    private(set) var wallClockMs: Int64 = Pacs008Generator.nowMillis()

    // Progress of the phases.
    private var phaseStartMs: UInt64 = 0
    private(set) var preloadQuota = 0
    private(set) var preloadStored = 0
    private var preloadStartMs: UInt64 = 0
    private(set) var preloadSeconds = 0.0
    /// POSTs built and not yet answered for good (in flight or waiting to be sent again).
    var postsOutstanding = 0
    private var allStreams: [PullStream] = []
    private var allProducers: [Producer] = []
    private var sendRateNow = 0.0

    // Counts for the summary.
    var retriesChecked = 0
    var streamsAbandoned = 0
    var streamsClosed = 0
    private(set) var messagesRefused: [Int: Int] = [:]
    private(set) var unexpectedStatuses: [String: Int] = [:]
    private(set) var sendProblems: [String] = []
    /// Loop time of the first 429 that was not a slot refusal (rate limit, back-pressure).
    private(set) var firstRateLimitedMs: UInt64?
    /// Bodies of 200 answers to GET next (bytes, count) and one multipart body kept as a sample.
    private(set) var batchBodyBytes = 0
    private(set) var batchBodies = 0
    private(set) var sampleBatch: [UInt8]?
    private(set) var rateLimited = 0
    private(set) var tooManyWithoutRetryAfter = 0
    private(set) var sendBackPressure = 0
    private(set) var firstSendBackPressureMs: UInt64?
    private(set) var interrupted = false
    private(set) var stopReason = ""
    private(set) var drained = false

    // Per-second sampling.
    private var secondTimer: LoopTimer?
    private var sweepTimer: LoopTimer?
    private var capTimer: LoopTimer?
    private var signalWatchers: [SignalWatcher] = []
    private var cpu: [ProcessCPU] = []
    private var last = (sent: 0, deliveries: 0, acked: 0, missed: 0.0)
    private let progress: Progress?
    private let log: (String) -> Void
    /// Checked every second: why the target can no longer serve (a spawned process exited).
    var watchdog: (() -> String?)?

    init(loop: Loop, scenario: Scenario, target: Target, processes: [(String, Int32)],
         progress: Progress?, log: @escaping (String) -> Void) throws {
        precondition(scenario.ispbs.count >= 2, "at least two PSPs (messages go to another PSP)")
        self.loop = loop
        self.scenario = scenario
        self.target = target
        self.progress = progress
        self.log = log
        ledger = Ledger(config: .init(idleMs: UInt64(scenario.idleSeconds) * 1000,
                                      unknownIDsAreViolations: scenario.unknownIDsAreViolations,
                                      lostAreViolations: scenario.lostAreViolations))
        recorder = Recorder(startMs: loop.nowMs)
        pullPacer = Pacer(loop: loop)
        sendPacer = Pacer(loop: loop)
        delays = Delays(loop: loop)
        rng = SplitMix64(seed: scenario.seed)
        generator = Pacs008Generator(addressing: .viaHub(scenario.hubISPB))
        hostHeader = Array(target.hostHeader.utf8)
        cpu = processes.map { ProcessCPU(name: $0.0, pid: $0.1) } + [ProcessCPU(name: "loadtest", pid: getpid())]
        ledger.reserve(messages: scenario.preloadMessages + Int(scenario.segments.reduce(0) { $0 + $1.seconds * max($1.sendRateFrom, $1.sendRateTo) }))
        for (i, ispb) in scenario.ispbs.enumerated() {
            let psp = PSPAgent(index: i, ispb: ispb, tls: try target.clientContext(ispb: ispb),
                               idleSeconds: scenario.idleSeconds, slots: scenario.slotsPerISPB)
            startPaths.append(Array("/api/v1/out/\(ispb)/stream/start".utf8))
            sendPaths.append(Array("/api/v1/in/\(ispb)/msgs".utf8))
            let streamCount = rng.int(scenario.streamsMin...scenario.streamsMax)
            for _ in 0..<streamCount {
                let s = PullStream(run: self, psp: psp, connection: makeConnection(psp))
                psp.streams.append(s)
                allStreams.append(s)
            }
            if scenario.preloadMessages > 0 || scenario.segments.contains(where: { $0.sendRateFrom > 0 || $0.sendRateTo > 0 }) {
                for _ in 0..<scenario.producersPerPSP {
                    let p = Producer(run: self, psp: psp, connection: makeConnection(psp))
                    psp.producers.append(p)
                    allProducers.append(p)
                }
            }
            psps.append(psp)
        }
    }

    private func makeConnection(_ psp: PSPAgent) -> ClientConnection {
        ClientConnection(loop: loop, host: target.host, port: target.port, tls: psp.tls, counters: counters)
    }

    func startPath(_ psp: PSPAgent) -> [UInt8] { startPaths[psp.index] }
    func sendPath(_ psp: PSPAgent) -> [UInt8] { sendPaths[psp.index] }

    /// A recipient PSP other than `sender`, chosen with probability proportional to its number
    /// of streams (PSPs with more streams pull faster).
    func randomRecipient(excluding sender: Int) -> Int {
        while true {
            let psp = allStreams[rng.int(0...(allStreams.count - 1))].psp.index
            if psp != sender { return psp }
        }
    }

    func nextSequence() -> UInt64 {
        sequence += 1
        return sequence
    }

    var isClosing: Bool { phase == .closing || phase == .done }
    var isDraining: Bool { phase == .drain }
    var streamCount: Int { allStreams.count }
    var producerCount: Int { allProducers.count }

    // MARK: running

    /// Runs the loop until the scenario finished; the connections are closed afterwards.
    func execute() {
        for sig in [SIGINT, SIGTERM] {
            if let w = try? SignalWatcher(loop: loop, signal: sig, { [unowned self] _ in interrupt() }) {
                signalWatchers.append(w)
            }
        }
        let second = LoopTimer(loop: loop)
        second.start(afterMs: 1000, repeatMs: 1000) { [unowned self] in everySecond() }
        secondTimer = second
        let sweep = LoopTimer(loop: loop)
        sweep.start(afterMs: 100, repeatMs: 100) { [unowned self] in everyTenth() }
        sweepTimer = sweep
        let cap = LoopTimer(loop: loop)
        cap.start(afterMs: UInt64(scenario.capSeconds * 1000)) { [unowned self] in
            stopReason = "duration cap of \(Int(scenario.capSeconds)) s reached"
            finish()
        }
        capTimer = cap
        connectAll()
        loop.run()
        for c in allStreams.map(\.connection) + allProducers.map(\.connection) { c.close() }
        secondTimer = nil
        sweepTimer = nil
        capTimer = nil
        signalWatchers.removeAll()
        pullPacer.stop()
        sendPacer.stop()
        delays.stop()
        progress?.finish()
    }

    private func interrupt() {
        if interrupted || phase == .closing {
            stopReason = "interrupted twice"
            return finish()
        }
        interrupted = true
        stopReason = "interrupted"
        log("interrupted: closing streams (again to stop at once)")
        beginClosing()
    }

    /// Opens the producers' connections, preloads, then opens the streams' connections (an
    /// idle connection would be closed by the hub's idle timeout during a long preload).
    private func connectAll() {
        connect(allProducers.map(\.connection), what: "producer") { [unowned self] in beginPreload() }
    }

    /// Opens `connections` (TLS handshakes `connectConcurrency` at a time), then `then`.
    private func connect(_ connections: [ClientConnection], what: String, then: @escaping () -> Void) {
        guard !connections.isEmpty else { return then() }
        var next = 0
        var done = 0
        var failures = 0
        let t0 = Loop.hrtimeNs
        let handshakes0 = counters.fullHandshakes + counters.resumedHandshakes
        func launch() {
            guard next < connections.count else { return }
            let c = connections[next]
            next += 1
            c.warmUp(timeoutMs: 30_000) { [unowned self] failure in
                done += 1
                if let failure {
                    failures += 1
                    if failures <= 3 { log("connect failed: \(failure)") }
                }
                if done == connections.count {
                    log(String(format: "%d %@ connections open in %.1f s (%d failed; %llu TLS handshakes)", connections.count - failures,
                               what as NSString, Double(Loop.hrtimeNs - t0) / 1e9, failures,
                               counters.fullHandshakes + counters.resumedHandshakes - handshakes0))
                    guard phase == .connecting else { return }
                    if failures == connections.count {
                        stopReason = "no connection could be opened"
                        return finish()
                    }
                    then()
                } else {
                    launch()
                }
            }
        }
        for _ in 0..<min(LoadDefaults.connectConcurrency, connections.count) { launch() }
    }

    private func beginPreload() {
        guard phase == .connecting else { return }
        guard scenario.preloadMessages > 0 else { return connectStreams() }
        phase = .preload
        phaseStartMs = loop.nowMs
        preloadStartMs = loop.nowMs
        preloadQuota = scenario.preloadMessages
        recorder.beginPhase("preload", nowMs: loop.nowMs)
        log("preload: \(scenario.preloadMessages) messages through the send path …")
        sendPacer.setRate(0)
        for p in allProducers { p.activate() }
    }

    private func preloadFinished() {
        guard phase == .preload else { return }
        preloadSeconds = Double(loop.nowMs - preloadStartMs) / 1000
        log(String(format: "preload: %d messages stored in %.1f s (%.0f messages/s)", preloadStored, preloadSeconds,
                   Double(preloadStored) / max(0.001, preloadSeconds)))
        connectStreams()
    }

    private func connectStreams() {
        phase = .connecting
        connect(allStreams.map(\.connection), what: "stream") { [unowned self] in beginSegment(0) }
    }

    private func beginSegment(_ i: Int) {
        guard i < scenario.segments.count else { return beginDrain() }
        let s = scenario.segments[i]
        phase = .segment(i)
        phaseStartMs = loop.nowMs
        recorder.beginPhase(s.name, nowMs: loop.nowMs)
        applyRates(s, fraction: 0)
        if i == 0 {
            for st in allStreams { st.begin() }
        }
        for p in allProducers { p.activate() }
    }

    private func applyRates(_ s: Segment, fraction: Double) {
        let pull = s.pullRate(at: fraction)
        if pull != pullPacer.ratePerSecond { pullPacer.setRate(pull) }
        sendRateNow = s.sendRate(at: fraction)
        let posts = sendRateNow / Double(scenario.messagesPerPost)
        if sendRateNow > 0 {
            if abs(posts - sendPacer.ratePerSecond) > 1e-9 { sendPacer.setRate(posts) }
        } else if sendPacer.ratePerSecond != 0 {
            sendPacer.setRate(0)
        }
    }

    private func beginDrain() {
        guard scenario.drainSecondsMax > 0 else { return beginClosing() }
        enterQuietPhase(.drain, "drain")
    }

    /// Drain and closing: no new pulls or sends are paced from here on.
    private func enterQuietPhase(_ next: Phase, _ name: String) {
        phase = next
        phaseStartMs = loop.nowMs
        sendRateNow = 0
        recorder.beginPhase(name, nowMs: loop.nowMs)
        pullPacer.setRate(0)
        sendPacer.setRate(0)
    }

    private func beginClosing() {
        guard phase != .closing && phase != .done else { return }
        if phase == .connecting || phase == .preload {
            // Nothing was pulled yet: nothing to close.
            phase = .closing
            recorder.beginPhase("closing", nowMs: loop.nowMs)
            return maybeFinishClosing()
        }
        enterQuietPhase(.closing, "closing")
        for s in allStreams { s.closeSoon() }
        maybeFinishClosing()
    }

    func streamStopped(_ s: PullStream) {
        maybeFinishClosing()
    }

    private func maybeFinishClosing() {
        guard phase == .closing else { return }
        let streamsDone = allStreams.allSatisfy(\.stopped)
        if streamsDone && postsOutstanding == 0 {
            if stopReason.isEmpty { stopReason = "completed" }
            finish()
        }
    }

    private func finish() {
        guard phase != .done else { return }
        phase = .done
        recorder.end(nowMs: loop.nowMs)
        secondTimer?.stop()
        sweepTimer?.stop()
        capTimer?.stop()
        pullPacer.stop()
        sendPacer.stop()
        delays.stop()
        for c in allStreams.map(\.connection) + allProducers.map(\.connection) { c.close() }
        loop.stop()
    }

    // MARK: producers

    /// How many messages the next POST carries (0: none now).
    func messagesToSend() -> Int {
        switch phase {
        case .preload:
            let n = min(scenario.messagesPerPost, preloadQuota)
            preloadQuota -= n
            return n
        case .segment:
            return sendRateNow > 0 ? scenario.messagesPerPost : 0
        default:
            return 0
        }
    }

    func messagesStored(_ stored: Int, of count: Int) {
        if phase == .preload {
            preloadStored += stored
            preloadQuota += count - stored
            if preloadQuota <= 0 && postsOutstanding == 0 { preloadFinished() }
        }
        if phase == .closing { maybeFinishClosing() }
    }

    func sendRefused(status: Int) { messagesRefused[status, default: 0] += 1 }

    func sendProblem(_ detail: String) {
        if sendProblems.count < 20 { sendProblems.append(detail) }
    }

    func unexpectedStatus(_ route: Route, _ status: Int) {
        unexpectedStatuses["\(route.rawValue) \(status)", default: 0] += 1
    }

    func batchReceived(_ body: UnsafeRawBufferPointer, parts: Int) {
        batchBodyBytes += body.count
        batchBodies += 1
        if sampleBatch == nil && parts == (scenario.multipart ? PullStream.batchMax : 1) { sampleBatch = Array(body) }
    }

    /// A 429 on a pull route: slot refusals carry `PI-Slots`; the others are the rate window.
    func tooMany(_ head: ResponseHead) {
        if head.retryAfterSeconds == nil { tooManyWithoutRetryAfter += 1 }
        guard !head.slots else { return }
        rateLimited += 1
        if firstRateLimitedMs == nil { firstRateLimitedMs = loop.nowMs }
    }

    /// A 429 (or 503) on the send path: back-pressure from the store or a full recipient.
    func sendRefusedWhole(_ head: ResponseHead) {
        if head.retryAfterSeconds == nil { tooManyWithoutRetryAfter += 1 }
        sendBackPressure += 1
        if firstSendBackPressureMs == nil { firstSendBackPressureMs = loop.nowMs }
    }

    /// Loop time at which `phase` began (nil if it never did).
    func phaseStartMs(_ name: String) -> UInt64? { recorder.phase(name)?.startMs }

    // MARK: timers

    private func everyTenth() {
        let now = loop.nowMs
        for c in allStreams { c.connection.checkDeadline(nowMs: now) }
        for p in allProducers { p.connection.checkDeadline(nowMs: now) }
        wallClockMs = Pacs008Generator.nowMillis()
        let elapsed = Double(now - phaseStartMs) / 1000
        switch phase {
        case .preload:
            if elapsed > Double(scenario.preloadSecondsMax) {
                log("preload: time cap reached")
                preloadQuota = 0
                preloadFinished()
            }
        case .segment(let i):
            let s = scenario.segments[i]
            if elapsed >= s.seconds {
                beginSegment(i + 1)
            } else {
                applyRates(s, fraction: elapsed / max(0.001, s.seconds))
            }
        case .drain:
            if ledger.isDrained && postsOutstanding == 0 {
                drained = true
                beginClosing()
            } else if elapsed > Double(scenario.drainSecondsMax) {
                log("drain: time cap reached with \(ledger.sentUndelivered) messages undelivered, \(ledger.heldByAbandoned) held by abandoned streams")
                beginClosing()
            }
        case .closing:
            if elapsed > Double(LoadDefaults.closingSecondsMax) {
                stopReason = stopReason.isEmpty ? "closing took too long" : stopReason
                finish()
            }
        default:
            break
        }
    }

    private func everySecond() {
        let now = loop.nowMs
        if let reason = watchdog?() {
            stopReason = reason
            log("stopping: \(reason)")
            return finish()
        }
        var gauges: [String: Double] = [:]
        for i in cpu.indices { gauges["cpu_\(cpu[i].name)"] = cpu[i].percentSinceLast() }
        gauges["messages_sent"] = Double(ledger.sentCount - last.sent)
        gauges["messages_delivered"] = Double(ledger.deliveries - last.deliveries)
        gauges["messages_acked"] = Double(ledger.ackedCount - last.acked)
        gauges["backlog"] = Double(ledger.sentCount - ledger.ackedCount)
        gauges["pull_target"] = pullPacer.ratePerSecond
        gauges["send_target"] = sendRateNow
        gauges["tickets_missed"] = pullPacer.ticketsMissed - last.missed
        last = (ledger.sentCount, ledger.deliveries, ledger.ackedCount, pullPacer.ticketsMissed)
        let sample = recorder.sample(nowMs: now, gauges: gauges)
        progress?.update(run: self, sample: sample)
    }

    var violationCount: Int { ledger.violationCounts.values.reduce(0, +) }
}
