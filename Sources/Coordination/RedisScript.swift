/// A Lua script run with `EVALSHA`; when Redis answers NOSCRIPT (restarted, `SCRIPT FLUSH`,
/// failed over) the client sends it once with `EVAL`, which also caches it again.
public struct RedisScript: Sendable {
    public let source: String
    /// Lowercase hex SHA-1 of `source`, as `SCRIPT LOAD` returns it.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        sha1 = SHA1.hex(Array(source.utf8))
    }

    /// The part of an `EVAL`/`EVALSHA` after the script: key count, keys, arguments.
    public struct Invocation: Sendable {
        var tail: RedisCommand

        /// Starts an invocation with `keyCount` keys; append the keys, then the arguments.
        public init(keyCount: Int, capacityBytes: Int = 128) {
            precondition(keyCount >= 1, "scripts here always name their keys (Redis Cluster)")
            tail = RedisCommand(String(keyCount), capacityBytes: capacityBytes)
        }

        public mutating func append(_ s: String) { tail.append(s) }
        public mutating func append<S: Sequence>(bytes argument: S) where S.Element == UInt8 { tail.append(bytes: argument) }
        public mutating func append<I: BinaryInteger>(_ n: I) { tail.append(n) }
    }

    func evalsha(_ invocation: Invocation) -> RedisCommand {
        var c = RedisCommand("EVALSHA", capacityBytes: 48 + invocation.tail.byteCount)
        c.append(sha1)
        c.append(contentsOf: invocation.tail)
        return c
    }

    func eval(_ invocation: Invocation) -> RedisCommand {
        var c = RedisCommand("EVAL", capacityBytes: source.utf8.count + 8 + invocation.tail.byteCount)
        c.append(source)
        c.append(contentsOf: invocation.tail)
        return c
    }
}

extension RedisScript {
    /// `SCRIPT LOAD <source>`.
    func load() -> RedisCommand {
        var c = RedisCommand("SCRIPT", capacityBytes: source.utf8.count + 16)
        c.append("LOAD")
        c.append(source)
        return c
    }
}
