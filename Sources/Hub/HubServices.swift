import Coordination
import EventLoop
import Foundation
import Glibc
import HTTP
import HTTPServer
import ISO20022
import LogStore
import Logging
import Streaming
import TLS

extension LoopExecutor: CompletionSink {}

/// What the API routes share: storage, validation, coordination, identities. Built once at
/// start-up; loop thread only (the store and the validators are thread-safe on their own).
final class HubServices {
    let config: HubConfiguration
    let loop: Loop
    let executor: LoopExecutor
    let logger: Logger
    let store: LogStore
    let validators: ThreadLocalValidators
    let audit: AuditLog
    let redis: RedisClient
    let coordination: Coordination
    let tokenMAC: PullToken.MAC
    /// Whether API requests carry a certificate identity (false only with --insecure-plaintext).
    let mutualTLS: Bool
    var ids = ResourceIDGenerator()
    private(set) var pull: PullService!
    private(set) var send: SendRoute!

    /// Everything that can fail (audit log, Redis URL, token key) is opened by the caller
    /// before this runs: once loop-bound objects exist, start-up has nothing left to fail here.
    init(config: HubConfiguration, loop: Loop, executor: LoopExecutor, logger: Logger, store: LogStore,
         validators: ThreadLocalValidators, mutualTLS: Bool, audit: AuditLog, redisEndpoint endpoint: RedisEndpoint,
         tokenKey: [UInt8]) {
        self.config = config
        self.loop = loop
        self.executor = executor
        self.logger = logger
        self.store = store
        self.validators = validators
        self.mutualTLS = mutualTLS
        self.audit = audit
        var rc = RedisClientConfig(host: endpoint.host, port: endpoint.port, password: endpoint.password,
                                   database: endpoint.database)
        rc.commandTimeoutMs = UInt64(config.redisTimeoutMs)
        redis = RedisClient(loop: loop, config: rc, logger: logger)
        var cc = CoordinationConfig()
        cc.slotsPerISPB = config.slotsPerISPB
        cc.streamIdleMs = UInt64(config.streamIdleSeconds) * 1000
        cc.rateLimitPerWindow = config.rateLimitPerSecond
        cc.rateWindowMs = 1000
        coordination = Coordination(client: redis, config: cc, logger: logger)
        let key = Crypto.HMACSHA256Key(tokenKey)
        tokenMAC = { key.tag($0) }
        pull = PullService(services: self)
        send = SendRoute(services: self)
        redis.onRecovered = { [unowned self] in pull.reregister() }
        redis.start()
    }

    /// The path ISPB of an API request, after checking it is 8 digits and the client
    /// certificate's ISPB. Answers the request and returns nil otherwise.
    func authorize(_ ctx: RequestContext) -> String? {
        guard let p = ctx.params["ispb"], p.utf8.count == 8, p.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
            ctx.respond(problem: Problem(.invalidISPB, detail: "the ISPB in the path must be 8 digits"))
            return nil
        }
        let ispb = String(p)
        if mutualTLS && ctx.peer.ispb != ispb {
            ctx.respond(problem: Problem(.forbiddenISPB, detail: "this client certificate may act for ISPB \(ctx.peer.ispb ?? "none") only"))
            return nil
        }
        return ispb
    }

    func wallClockMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// A fresh multipart boundary suffix (never appears in the XML payloads by construction:
    /// 24 hex digits after a fixed prefix).
    func boundaryToken() -> String {
        let w = ids.nextWord()
        let s = String(w, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// The token key: `--token-key-file`, or `<data-dir>/token.key` generated once (32 random
    /// bytes, mode 0600). Pointers stay valid across restarts as long as the key does. Errors
    /// name the option (`--token-key-file`, or `--data-dir` for the generated key).
    static func tokenKey(config: HubConfiguration) throws -> [UInt8] {
        if let path = config.tokenKeyFile {
            try HubConfiguration.checkReadableFile(path, option: "token-key-file")
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("--token-key-file: cannot read \(path)")
            }
            guard data.count >= 16 else { throw ConfigurationError("--token-key-file: \(path) is shorter than 16 bytes") }
            return Array(data)
        }
        let path = "\(config.dataDir)/token.key"
        if let data = FileManager.default.contents(atPath: path) {
            guard data.count >= 16 else { throw ConfigurationError("--data-dir: token key \(path) is shorter than 16 bytes") }
            return Array(data)
        }
        let key = Crypto.randomBytes(32)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ConfigurationError("--data-dir: cannot create token key \(path): \(HubConfiguration.errnoText())")
        }
        defer { Glibc.close(fd) }
        guard key.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == key.count, fsync(fd) == 0 else {
            throw ConfigurationError("--data-dir: cannot write token key \(path): \(HubConfiguration.errnoText())")
        }
        return key
    }

    func close() {
        redis.close()
    }
}

extension ResourceIDGenerator {
    mutating func nextWord() -> UInt64 { make().high }
}
