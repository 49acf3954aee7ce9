import Foundation
import Glibc

/// A parsed HTTP response as a test sees it.
public struct ClientResponse: CustomStringConvertible {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
    public var description: String { "\(status) \(headers) \(bodyText.prefix(300))" }
}

public struct ClientError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A deliberately simple blocking HTTP/1.1 client over a POSIX socket, with a receive timeout,
/// independent of the server's own event loop code. For tests on loopback only. One thread may
/// send while another reads (the socket is full duplex); nothing else is shared.
public final class BlockingClient: @unchecked Sendable {
    public let fd: Int32
    private var buffer: [UInt8] = []

    /// `bindHost` sets the source address (e.g. "127.0.0.2": Linux routes all of 127/8 to
    /// loopback, so one machine can play several clients).
    public init(port: Int, host: String = "127.0.0.1", timeoutMs: Int = 5000, bindHost: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError("socket: \(errno)") }
        if let bindHost {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            guard inet_pton(AF_INET, bindHost, &local.sin_addr) == 1 else {
                Glibc.close(fd)
                throw ClientError("bad bind address \(bindHost)")
            }
            let rc = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard rc == 0 else {
                let e = errno
                Glibc.close(fd)
                throw ClientError("bind \(bindHost): errno \(e)")
            }
        }
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: Int((timeoutMs % 1000) * 1000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw ClientError("connect \(host):\(port): errno \(e)")
        }
    }

    deinit { Glibc.close(fd) }

    public func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ClientError("send failed: errno \(errno)") }
            off += n
        }
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Reads more bytes; returns false on EOF. Throws on timeout or error.
    @discardableResult
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { return false }
        if n < 0 { throw ClientError(errno == EAGAIN ? "timed out waiting for the server" : "recv: errno \(errno)") }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// Reads one response (Content-Length framed, or none for 204/304, or until EOF).
    public func readResponse(headRequest: Bool = false) throws -> ClientResponse {
        var headEnd: Int?
        while headEnd == nil {
            headEnd = find(Array("\r\n\r\n".utf8), in: buffer)
            if headEnd == nil {
                guard try fill() else { throw ClientError("connection closed before a response head") }
            }
        }
        let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw ClientError("bad status line: \(head)") }
        let headers = lines.map { line -> (String, String) in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        buffer.removeFirst(headEnd! + 4)
        var response = ClientResponse(status: status, headers: headers, body: [])
        if headRequest || status == 204 || status == 304 { return response }
        if let cl = response.header("content-length"), let n = Int(cl) {
            while buffer.count < n {
                guard try fill() else { throw ClientError("connection closed mid-body") }
            }
            response.body = Array(buffer[0..<n])
            buffer.removeFirst(n)
        } else {
            while try fill() {}
            response.body = buffer
            buffer = []
        }
        return response
    }

    /// True when the server closed the connection (EOF or reset) within the timeout.
    public func waitForClose() -> Bool {
        while true {
            do {
                if try !fill() { return true }
            } catch {
                return (error as? ClientError)?.description.hasPrefix("recv") ?? false
            }
        }
    }

    /// One request, one response.
    public func roundTrip(_ request: String) throws -> ClientResponse {
        try send(request)
        return try readResponse()
    }

    public func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Reads whatever arrives next (up to 64 KiB); empty on EOF; throws on timeout or error.
    public func receiveRaw() throws -> [UInt8] {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n < 0 { throw ClientError(errno == EAGAIN ? "timed out waiting for the server" : "recv: errno \(errno)") }
        return Array(chunk[0..<n])
    }
}

func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard haystack.count >= needle.count else { return nil }
    for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
        if Array(haystack[i..<i + needle.count]) == needle { return i }
    }
    return nil
}

/// A free TCP port on loopback (bound then released; good enough for tests).
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { Glibc.close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
    _ = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
}
