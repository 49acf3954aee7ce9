import Foundation
import Glibc

/// A real `redis-server` on a free loopback port, in its own temporary directory, with
/// persistence off (`--save '' --appendonly no`). It can be killed, paused (SIGSTOP), restarted
/// on the same port and flushed; it is killed when released.
public final class RedisServer {
    public let port: Int
    public let dir = TempDir("rtpstream-redis")
    private var process: Process?
    private let extraArguments: [String]

    /// Starts the server and waits until it answers PING.
    public init(arguments: [String] = []) throws {
        port = freePort()
        extraArguments = arguments
        try start()
    }

    deinit { stop(SIGKILL) }

    public var url: String { "redis://127.0.0.1:\(port)" }
    public var pid: Int32 { process?.processIdentifier ?? 0 }
    public var isRunning: Bool { process?.isRunning ?? false }

    /// (Re)starts on the same port; throws when PING is not answered within `timeoutMs`.
    public func start(timeoutMs: Int = 10_000) throws {
        precondition(!isRunning, "already running")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: RedisServer.executable)
        p.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                       "--dir", dir.path, "--logfile", dir.url.appendingPathComponent("redis.log").path,
                       "--daemonize", "no"] + extraArguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while Date() < deadline {
            if !p.isRunning { throw RedisServerError("redis-server exited at start: \(log)") }
            // Any answer will do: a server with `requirepass` answers PING with -NOAUTH.
            if (try? command(["PING"], timeoutMs: 200)) != nil { return }
            usleep(10_000)
        }
        stop(SIGKILL)
        throw RedisServerError("redis-server did not answer PING within \(timeoutMs) ms: \(log)")
    }

    /// Sends `signal` (SIGKILL, SIGTERM) and waits for the exit. A paused server is resumed
    /// first so that SIGTERM can be handled.
    public func stop(_ signal: Int32 = SIGKILL) {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, signal)
        if signal != SIGKILL { kill(p.processIdentifier, SIGCONT) }
        p.waitUntilExit()
        process = nil
    }

    /// SIGSTOP: the kernel still accepts connections, nothing is answered.
    public func pause() { if let p = process { kill(p.processIdentifier, SIGSTOP) } }

    /// SIGCONT after `pause()`.
    public func resume() { if let p = process { kill(p.processIdentifier, SIGCONT) } }

    public func flushAll() throws {
        let reply = try command(["FLUSHALL"])
        guard reply == .status("OK") else { throw RedisServerError("FLUSHALL: \(reply)") }
    }

    /// User plus system CPU time of the server so far, in clock ticks (from /proc/<pid>/stat).
    public func cpuTicks() throws -> UInt64 {
        try RedisServer.cpuTicks(pid: pid)
    }

    public static func cpuTicks(pid: Int32) throws -> UInt64 {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        guard let close = stat.lastIndex(of: ")") else { throw RedisServerError("bad /proc stat") }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let u = UInt64(fields[11]), let s = UInt64(fields[12]) else {
            throw RedisServerError("bad /proc stat")
        }
        return u + s
    }

    public var log: String {
        (try? String(contentsOf: dir.url.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
    }

    public static var executable: String {
        for candidate in ["/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "redis-server"
    }

    /// One command over a fresh blocking connection (for test set-up and assertions).
    @discardableResult
    public func command(_ arguments: [String], timeoutMs: Int = 2000) throws -> RESPValue {
        let c = try RESPConnection(port: port, timeoutMs: timeoutMs)
        return try c.command(arguments.map { Array($0.utf8) })
    }
}

public struct RedisServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A RESP2 value as the test client reads it.
public indirect enum RESPValue: Equatable, CustomStringConvertible {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8]?)
    case array([RESPValue]?)

    public var description: String {
        switch self {
        case .status(let s): "+\(s)"
        case .error(let s): "-\(s)"
        case .integer(let n): ":\(n)"
        case .bulk(let b): b.map { "$\(String(decoding: $0, as: UTF8.self))" } ?? "$nil"
        case .array(let a): a.map { "\($0)" } ?? "*nil"
        }
    }

    public var integer: Int64? {
        if case .integer(let n) = self { return n }
        return nil
    }

    public var text: String? {
        switch self {
        case .bulk(let b?): String(decoding: b, as: UTF8.self)
        case .status(let s): s
        default: nil
        }
    }
}

/// A minimal blocking RESP2 client over a loopback TCP socket with a receive timeout.
public final class RESPConnection {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var position = 0

    public init(port: Int, timeoutMs: Int = 2000) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RedisServerError("socket: \(errno)") }
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            Glibc.close(fd)
            throw RedisServerError("connect 127.0.0.1:\(port): errno \(errno)")
        }
    }

    deinit { Glibc.close(fd) }

    public func command(_ arguments: [[UInt8]]) throws -> RESPValue {
        var out = Array("*\(arguments.count)\r\n".utf8)
        for a in arguments {
            out += Array("$\(a.count)\r\n".utf8)
            out += a
            out += [13, 10]
        }
        var sent = 0
        while sent < out.count {
            let n = out[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw RedisServerError("send: errno \(errno)") }
            sent += n
        }
        return try readValue()
    }

    private func readValue() throws -> RESPValue {
        let line = try readLine()
        guard let kind = line.first else { throw RedisServerError("empty RESP line") }
        let rest = String(decoding: line.dropFirst(), as: UTF8.self)
        switch kind {
        case UInt8(ascii: "+"): return .status(rest)
        case UInt8(ascii: "-"): return .error(rest)
        case UInt8(ascii: ":"):
            guard let n = Int64(rest) else { throw RedisServerError("bad integer \(rest)") }
            return .integer(n)
        case UInt8(ascii: "$"):
            guard let n = Int(rest) else { throw RedisServerError("bad length \(rest)") }
            if n < 0 { return .bulk(nil) }
            try fill(n + 2)
            let bytes = Array(buffer[position..<position + n])
            position += n + 2
            return .bulk(bytes)
        case UInt8(ascii: "*"):
            guard let n = Int(rest) else { throw RedisServerError("bad count \(rest)") }
            if n < 0 { return .array(nil) }
            var items: [RESPValue] = []
            for _ in 0..<n { items.append(try readValue()) }
            return .array(items)
        default:
            throw RedisServerError("unknown RESP type \(kind)")
        }
    }

    private func readLine() throws -> ArraySlice<UInt8> {
        while true {
            if let cr = buffer[position...].firstIndex(of: 13), cr + 1 < buffer.count, buffer[cr + 1] == 10 {
                let line = buffer[position..<cr]
                position = cr + 2
                return line
            }
            try receive()
        }
    }

    private func fill(_ count: Int) throws {
        while buffer.count - position < count { try receive() }
    }

    private func receive() throws {
        if position > 0 && position == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            position = 0
        }
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { throw RedisServerError(n == 0 ? "connection closed" : "recv: errno \(errno)") }
        buffer += chunk[0..<n]
    }
}
