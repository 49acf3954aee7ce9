import CHiredis

/// The arguments of one Redis command, binary-safe, in one contiguous buffer (one allocation
/// for the bytes, one for the boundaries), handed to `redisAsyncCommandArgv`.
public struct RedisCommand: Sendable {
    private var bytes: [UInt8] = []
    /// End offset of each argument in `bytes`.
    private var ends: [Int] = []

    /// A command starting with `name` (e.g. "GET").
    public init(_ name: String, capacityBytes: Int = 64) {
        bytes.reserveCapacity(capacityBytes)
        ends.reserveCapacity(8)
        append(name)
    }

    /// A command of textual arguments: `RedisCommand(["SET", "k", "v"])`.
    public init(_ arguments: [String]) {
        precondition(!arguments.isEmpty, "a command needs a name")
        self.init(arguments[0])
        for a in arguments.dropFirst() { append(a) }
    }

    public mutating func append(_ s: String) {
        bytes.append(contentsOf: s.utf8)
        ends.append(bytes.count)
    }

    public mutating func append<S: Sequence>(bytes argument: S) where S.Element == UInt8 {
        bytes.append(contentsOf: argument)
        ends.append(bytes.count)
    }

    /// An integer argument in decimal.
    public mutating func append<I: BinaryInteger>(_ n: I) {
        append(String(n))
    }

    /// Appends every argument of `other` (name included).
    public mutating func append(contentsOf other: RedisCommand) {
        let base = bytes.count
        bytes.append(contentsOf: other.bytes)
        for e in other.ends { ends.append(base + e) }
    }

    /// Number of arguments, the command name included.
    public var count: Int { ends.count }

    /// Bytes of all arguments together.
    public var byteCount: Int { bytes.count }

    /// The argument at `index` (tests, logging).
    public func argument(_ index: Int) -> ArraySlice<UInt8> {
        bytes[(index == 0 ? 0 : ends[index - 1])..<ends[index]]
    }

    /// Calls `body` with C `argv`/`argvlen` arrays pointing into this command's storage; valid
    /// only during the call (hiredis copies the command into its output buffer).
    func withArgv<R>(_ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        let n = ends.count
        return bytes.withUnsafeBufferPointer { storage in
            // An all-empty command has no storage; any valid address works for zero lengths.
            let base = storage.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(bitPattern: 1)!
            return withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: n) { argv in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: n) { lens in
                    var start = 0
                    for i in 0..<n {
                        argv[i] = (base + start).assumingMemoryBound(to: CChar.self)
                        lens[i] = ends[i] - start
                        start = ends[i]
                    }
                    return body(Int32(n), argv.baseAddress!, UnsafePointer(lens.baseAddress!))
                }
            }
        }
    }
}
