import Glibc

/// A blocking TCP connection with send and receive deadlines (SO_SNDTIMEO/SO_RCVTIMEO),
/// TCP_NODELAY, and no SIGPIPE. EINTR is retried; a timeout or error throws.
final class ClientSocket {
    private(set) var fd: Int32

    /// Connects to the first address of `host` (name or literal, IPv4 or IPv6) that accepts.
    init(host: String, port: Int, timeoutMs: Int) throws {
        precondition((1...65535).contains(port) && timeoutMs > 0)
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw HTTPClientError("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastErrno: Int32 = 0
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let ai = candidate {
            candidate = ai.pointee.ai_next
            let s = socket(ai.pointee.ai_family, ai.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), ai.pointee.ai_protocol)
            if s < 0 { lastErrno = errno; continue }
            Self.setTimeouts(s, timeoutMs: timeoutMs)
            var one: Int32 = 1
            setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if connect(s, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 {
                fd = s
                return
            }
            lastErrno = errno
            Glibc.close(s)
        }
        throw HTTPClientError("connect \(host):\(port): \(String(cString: strerror(lastErrno)))")
    }

    deinit { close() }

    private static func setTimeouts(_ s: Int32, timeoutMs: Int) {
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: (timeoutMs % 1000) * 1000)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    var isOpen: Bool { fd >= 0 }

    /// Writes all of `bytes`.
    func send(_ bytes: UnsafeRawBufferPointer) throws {
        guard fd >= 0 else { throw HTTPClientError("send on a closed connection") }
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { throw HTTPClientError("send timed out") }
            throw HTTPClientError("send: \(String(cString: strerror(errno)))")
        }
    }

    /// Reads what is available into `buffer` (up to its size); 0 on EOF.
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard fd >= 0 else { throw HTTPClientError("receive on a closed connection") }
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { throw HTTPClientError("timed out waiting for the server") }
            throw HTTPClientError("receive: \(String(cString: strerror(errno)))")
        }
    }

    func close() {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
    }
}
