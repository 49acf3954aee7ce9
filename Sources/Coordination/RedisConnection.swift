import CHiredis

/// One hiredis async context and what the client knows about its life. The context's `data`
/// holds a retained reference to this object from `redisAsyncConnect` until hiredis is done
/// with the context (our `redisAsyncFree` returned, or hiredis reported the end through the
/// connect callback with an error or the disconnect callback), released exactly once.
final class RedisConnection {
    enum State {
        /// TCP connect in progress; commands are buffered by hiredis.
        case connecting
        case ready
        /// Given up by the client inside a hiredis callback; freed on the next loop turn
        /// unless hiredis frees it first.
        case abandoned
        /// Inside the client's own `redisAsyncFree`: its callbacks are ignored.
        case freeing
        /// hiredis is failing its pending callbacks and will call the disconnect callback.
        case closingByHiredis
        /// Freed; the context pointer is dangling.
        case gone
    }

    let context: UnsafeMutablePointer<redisAsyncContext>
    unowned let client: RedisClient
    let id: UInt64
    var state = State.connecting
    private var retainedByContext = true

    init(context: UnsafeMutablePointer<redisAsyncContext>, client: RedisClient, id: UInt64) {
        self.context = context
        self.client = client
        self.id = id
        context.pointee.data = Unmanaged.passRetained(self).toOpaque()
    }

    static func from(_ ac: UnsafePointer<redisAsyncContext>) -> RedisConnection {
        Unmanaged<RedisConnection>.fromOpaque(ac.pointee.data!).takeUnretainedValue()
    }

    /// hiredis no longer touches the context's `data`: drop its reference (once).
    func releaseFromContext() {
        precondition(retainedByContext, "connection \(id) released twice")
        retainedByContext = false
        Unmanaged.passUnretained(self).release()
    }

    /// Frees the context now. Never call inside a callback of this context.
    func free() {
        precondition(state != .freeing && state != .gone && state != .closingByHiredis)
        state = .freeing
        redisAsyncFree(context)
        state = .gone
        releaseFromContext()
    }

    var errorText: String {
        guard let s = context.pointee.errstr else { return "unknown error" }
        return String(cString: s)
    }
}

/// A command sent and not yet completed. `privdata` of the hiredis callback holds one retained
/// reference; `completion` is cleared when the command completes for any reason, so a late
/// (NULL) reply for it is ignored.
final class PendingCommand {
    let connection: RedisConnection
    let startNs: UInt64
    var deadlineNs: UInt64
    /// Whether the deadline was already extended once for the loop's own lag.
    var extendedForLag = false
    var completion: ((Result<RedisReply, RedisFailure>) -> Void)?

    init(connection: RedisConnection, startNs: UInt64, deadlineNs: UInt64,
         completion: @escaping (Result<RedisReply, RedisFailure>) -> Void) {
        self.connection = connection
        self.startNs = startNs
        self.deadlineNs = deadlineNs
        self.completion = completion
    }
}

// MARK: hiredis callbacks (C function pointers: no captures; context travels in privdata/data)

func onRedisReply(_ ac: UnsafeMutablePointer<redisAsyncContext>?, _ reply: UnsafeMutableRawPointer?,
                  _ privdata: UnsafeMutableRawPointer?) {
    let command = Unmanaged<PendingCommand>.fromOpaque(privdata!).takeRetainedValue()
    command.connection.client.replyArrived(command, reply.map { UnsafePointer($0.assumingMemoryBound(to: redisReply.self)) })
}

func onRedisConnect(_ ac: UnsafePointer<redisAsyncContext>?, _ status: Int32) {
    let connection = RedisConnection.from(ac!)
    connection.client.connectFinished(connection, ok: status == REDIS_OK)
}

func onRedisDisconnect(_ ac: UnsafePointer<redisAsyncContext>?, _ status: Int32) {
    let connection = RedisConnection.from(ac!)
    connection.client.disconnected(connection)
}
