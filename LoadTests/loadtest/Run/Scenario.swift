/// The one table of the load generator's defaults and limits (units last).
enum LoadDefaults {
    static let psps = 200
    static let streamsPerPSPMin = 4
    static let streamsPerPSPMax = 6
    /// The hub's `--slots-per-ispb` default.
    static let slotsPerISPB = 6
    static let batchesPerStreamMin = 20
    static let batchesPerStreamMax = 200
    static let abandonFraction = 0.05
    static let retryFraction = 0.02
    static let messagesPerPost = 10
    /// 1,000,000 pull requests per minute.
    static let pullRatePerSecond = 16_667.0
    static let sendRatePerSecond = 1_000.0
    /// Spawned hub: abandoned streams expire quickly enough to be seen within a run.
    static let spawnStreamIdleSeconds = 5
    /// Spawned hub: long polls end quickly, so that drain and shutdown are short.
    static let spawnLongPollSeconds = 1
    /// A request without an answer this long after the long poll fails (the connection is
    /// dropped and the request retried).
    static let requestTimeoutSlackMs: UInt64 = 15_000
    /// Connections opened (TLS handshakes) concurrently at start.
    static let connectConcurrency = 64
    static let drainSecondsMax = 180
    /// The default preload is what the segments consume with full batches times this.
    static let preloadHeadroom = 1.3
    static let preloadSecondsMax = 3_600
    static let closingSecondsMax = 30
    static let hubISPB = "99999010"
    /// First PSP ISPB; PSP i is `pspISPBBase + i`.
    static let pspISPBBase = 10_000_001
}

/// One stretch of a run with its own request rates (linear from `from` to `to`).
struct Segment {
    var name: String
    var seconds: Double
    /// Pull requests (start + next) per second; 0 = as fast as the streams go.
    var pullRateFrom: Double
    var pullRateTo: Double
    /// Messages sent per second (in POSTs of `messagesPerPost`); 0 = none.
    var sendRateFrom: Double
    var sendRateTo: Double

    func pullRate(at fraction: Double) -> Double { pullRateFrom + (pullRateTo - pullRateFrom) * min(1, max(0, fraction)) }
    func sendRate(at fraction: Double) -> Double { sendRateFrom + (sendRateTo - sendRateFrom) * min(1, max(0, fraction)) }
}

/// What a run does: who, how many streams, how they behave, and the phases.
struct Scenario {
    var ispbs: [String]
    var streamsMin = LoadDefaults.streamsPerPSPMin
    var streamsMax = LoadDefaults.streamsPerPSPMax
    var slotsPerISPB = LoadDefaults.slotsPerISPB
    /// Streams end (DELETE or abandonment) after a random number of batches in this range;
    /// nil: streams live until the run closes them.
    var batchesPerStream: ClosedRange<Int>? = LoadDefaults.batchesPerStreamMin...LoadDefaults.batchesPerStreamMax
    var abandonFraction = LoadDefaults.abandonFraction
    var retryFraction = LoadDefaults.retryFraction
    var multipart = true
    /// Producers per PSP (send-path connections).
    var producersPerPSP = 1
    var messagesPerPost = LoadDefaults.messagesPerPost
    /// Messages stored through the send path before the first segment.
    var preloadMessages = 0
    var preloadSecondsMax = LoadDefaults.preloadSecondsMax
    var segments: [Segment] = []
    /// After the segments: pull unpaced until every sent message is delivered (the
    /// correctness check needs it), at most this long. 0: no drain.
    var drainSecondsMax = LoadDefaults.drainSecondsMax
    var idleSeconds = 30
    var longPollSeconds = 5
    var hubISPB = LoadDefaults.hubISPB
    var seed: UInt64 = 1
    /// Ids never sent in this run count as violations (true against a fresh spawned hub).
    var unknownIDsAreViolations = true
    /// Messages sent and never delivered are violations (needs a drain).
    var lostAreViolations = true

    var requestTimeoutMs: UInt64 { UInt64(longPollSeconds) * 1000 + LoadDefaults.requestTimeoutSlackMs }

    /// Upper bound of the whole run in seconds (the hard stop).
    var capSeconds: Double {
        60 + Double(preloadMessages > 0 ? preloadSecondsMax : 0) + segments.reduce(0) { $0 + $1.seconds }
            + Double(drainSecondsMax) + Double(LoadDefaults.closingSecondsMax)
    }

    static func pspISPBs(_ count: Int) -> [String] {
        (0..<count).map { String(LoadDefaults.pspISPBBase + $0) }
    }
}
