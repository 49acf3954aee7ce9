import ArgumentParser

/// Where the load goes: a running hub (`--url`) or a self-contained one (`--spawn`).
struct TargetOptions: ParsableArguments {
    @Option(help: "A running hub: https://127.0.0.1:8443 (mutual TLS) or http://… (plaintext).")
    var url: String?

    @Flag(help: "Start redis-server and rtpstream (the build next to loadtest) on loopback, with development certificates in a temporary directory.")
    var spawn = false

    @Flag(help: "Allow a --url that is not a loopback address.")
    var allowRemote = false

    @Option(help: "Certificate directory (`rtpstream certs` layout). With --url: the CA and the PSPs' client certificates (the PSPs are the client-<ISPB>.pem files). With --spawn: reused when complete, otherwise written there.")
    var certs: String?

    @Flag(help: "With --spawn: plaintext API (no mutual TLS).")
    var plaintext = false

    @Option(parsing: .unconditionalSingleValue, help: "With --spawn: one more `rtpstream serve` argument (repeatable), e.g. --server-arg=--worker-threads=2.")
    var serverArg: [String] = []

    @Flag(help: "With --spawn: keep the temporary directory (data, logs, certificates).")
    var keep = false

    @Option(help: "With --spawn: the rtpstream executable (default: the one built next to loadtest).")
    var rtpstream: String?

    func validate() throws {
        guard spawn != (url != nil) else { throw ValidationError("give exactly one of --spawn or --url") }
    }
}

/// How a soak or burst behaves.
struct LoadOptions: ParsableArguments {
    @Option(help: "Seconds of the measured phase (soak) or of the peak (burst).")
    var duration: Double = 60

    @Option(help: "Directory for the JSON summary and the HTML report.")
    var output: String?

    @Option(help: "PSPs (ISPBs 10000001 and up with --spawn; with --url at most the certificates found).")
    var psps = LoadDefaults.psps

    @Option(help: "Fewest concurrent pull streams per PSP.")
    var streamsMin = LoadDefaults.streamsPerPSPMin

    @Option(help: "Most concurrent pull streams per PSP (the hub allows 6).")
    var streamsMax = LoadDefaults.streamsPerPSPMax

    @Option(help: "Target pull requests per second (start + next), all streams together; 0 = as fast as they go.")
    var pullRate = LoadDefaults.pullRatePerSecond

    @Option(help: "Messages per second sent during the measured phase (POSTs of 10).")
    var sendRate = LoadDefaults.sendRatePerSecond

    @Option(help: "Messages stored through the send path before pulling starts; default: 1.3 × what full batches at --pull-rate consume over the run, minus what --send-rate supplies.")
    var preloadMessages: Int?

    @Option(help: "A stream ends after a random number of batches, at least this many.")
    var batchesMin = LoadDefaults.batchesPerStreamMin

    @Option(help: "… and at most this many.")
    var batchesMax = LoadDefaults.batchesPerStreamMax

    @Option(help: "Fraction of ending streams abandoned without DELETE.")
    var abandonFraction = LoadDefaults.abandonFraction

    @Option(help: "Fraction of batches after which the previous pointer is retried (a lost response).")
    var retryFraction = LoadDefaults.retryFraction

    @Option(help: "The hub's --stream-idle-seconds (with --spawn it is passed to the hub; default 5 there, 30 otherwise).")
    var streamIdleSeconds: Int?

    @Option(help: "The hub's --long-poll-seconds (with --spawn it is passed to the hub; default 1 there, 5 otherwise).")
    var longPollSeconds: Int?

    @Option(help: "After the measured phase, pull until every sent message was delivered, at most this many seconds.")
    var drainSeconds = LoadDefaults.drainSecondsMax

    @Option(help: "Seed of the run's random choices.")
    var seed: UInt64 = 1

    @Flag(help: "Accept: application/xml (one message per response) instead of multipart/mixed batches of 10.")
    var single = false

    @Flag(help: "No progress line.")
    var quiet = false

    func validate() throws {
        guard duration > 0 else { throw ValidationError("--duration must be positive") }
        guard psps >= 2 else { throw ValidationError("--psps must be at least 2") }
        guard 1 <= streamsMin, streamsMin <= streamsMax else { throw ValidationError("need 1 <= --streams-min <= --streams-max") }
        guard 1 <= batchesMin, batchesMin <= batchesMax else { throw ValidationError("need 1 <= --batches-min <= --batches-max") }
        guard (0...1).contains(abandonFraction), (0...1).contains(retryFraction) else {
            throw ValidationError("fractions must be between 0 and 1")
        }
        guard pullRate >= 0, sendRate >= 0 else { throw ValidationError("rates must not be negative") }
    }
}
