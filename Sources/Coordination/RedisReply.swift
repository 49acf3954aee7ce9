import CHiredis

/// A Redis reply, copied out of hiredis's `redisReply` inside the reply callback (hiredis frees
/// its reply when the callback returns).
public enum RedisReply: Equatable, Sendable {
    /// A simple string (`+OK`, `+PONG`).
    case status(String)
    /// An error reply (`-ERR ...`, `-NOSCRIPT ...`): Redis answered, the command failed.
    case error(String)
    case integer(Int64)
    /// A bulk string; `nil` is Redis's nil (missing key, nil multi-bulk).
    case bulk([UInt8]?)
    case array([RedisReply])

    /// Deep copy of a hiredis reply.
    init(copying r: UnsafePointer<redisReply>) {
        let reply = r.pointee
        switch reply.type {
        case REDIS_REPLY_STATUS:
            self = .status(RedisReply.text(reply.str, reply.len))
        case REDIS_REPLY_ERROR:
            self = .error(RedisReply.text(reply.str, reply.len))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(reply.integer))
        case REDIS_REPLY_NIL:
            self = .bulk(nil)
        case REDIS_REPLY_STRING:
            self = .bulk(reply.len == 0 ? [] : Array(UnsafeRawBufferPointer(start: reply.str, count: reply.len)))
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            items.reserveCapacity(reply.elements)
            for i in 0..<reply.elements { items.append(RedisReply(copying: reply.element[i]!)) }
            self = .array(items)
        default:
            preconditionFailure("hiredis 0.14 produced reply type \(reply.type)")
        }
    }

    private static func text(_ p: UnsafeMutablePointer<CChar>?, _ len: Int) -> String {
        guard let p, len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: len), as: UTF8.self)
    }

    /// The integer of an integer reply.
    public var integer: Int64? {
        if case .integer(let n) = self { return n }
        return nil
    }

    /// The elements of an array reply.
    public var array: [RedisReply]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The message of an error reply.
    public var errorMessage: String? {
        if case .error(let m) = self { return m }
        return nil
    }
}

/// Why a command produced no reply. Every failure is reported once, promptly: nothing waits on
/// Redis beyond the command deadline.
public enum RedisFailure: Error, Equatable, Sendable {
    /// Not sent: the breaker is open (or half-open and probing), the client is closed, or too
    /// many commands are in flight.
    case unavailable
    /// Sent, but no reply before the deadline; the command may still have run.
    case timeout
    /// Sent, but the connection was lost before the reply; the command may have run.
    case connectionLost
    /// Redis answered something the caller cannot use (an error reply where data was
    /// expected, or a reply of the wrong shape).
    case unexpectedReply(String)
}
