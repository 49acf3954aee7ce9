/// A response as a client sees it (load generator, tests).
public struct HTTPClientResponse: Sendable {
    public var status: Int
    public var headers: [HTTPHeader]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.name == n }?.value
    }
}

/// An incremental HTTP/1.1 response parser for clients: Content-Length framing only (the hub
/// never sends chunked responses), no body for 204/304/1xx or responses to HEAD.
public struct HTTPResponseParser: Sendable {
    public enum Result: Sendable {
        case needMore
        case response(HTTPClientResponse)
        case error(String)
    }

    public var headBytesMax = 64 * 1024
    public var bodyBytesMax = 64 * 1024 * 1024
    private var buffer: [UInt8] = []
    private var start = 0
    private var scan = 0
    private var pending: HTTPClientResponse?
    private var bodyLength = 0

    public init() {}

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && (start == buffer.count || start > 65536) {
            buffer.removeFirst(start)
            scan -= start
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public var bufferedBytes: Int { buffer.count - start }

    /// `headRequest`: the response answers a HEAD request (no body follows).
    public mutating func next(headRequest: Bool = false) -> Result {
        if pending == nil {
            if scan < start { scan = start }
            var end = -1
            var i = max(scan, start + 3)
            while i < buffer.count {
                if buffer[i] == 10 && buffer[i - 1] == 13 && buffer[i - 2] == 10 && buffer[i - 3] == 13 {
                    end = i
                    break
                }
                i += 1
            }
            guard end >= 0 else {
                scan = max(start, buffer.count - 3)
                return buffer.count - start > headBytesMax ? .error("response head too large") : .needMore
            }
            let head = String(decoding: buffer[start..<end - 3], as: UTF8.self)
            start = end + 1
            scan = start
            var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
            let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
            guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else {
                return .error("malformed status line")
            }
            var headers: [HTTPHeader] = []
            var length = 0
            for line in lines {
                guard let colon = line.firstIndex(of: ":") else { return .error("malformed header line") }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingSpaces
                headers.append(HTTPHeader(name, String(value)))
                if name == "content-length" {
                    guard let n = Int(value), n >= 0, n <= bodyBytesMax else { return .error("bad Content-Length") }
                    length = n
                }
                if name == "transfer-encoding" { return .error("chunked responses are not supported") }
            }
            if headRequest || status == 204 || status == 304 || (100..<200).contains(status) { length = 0 }
            pending = HTTPClientResponse(status: status, headers: headers, body: [])
            bodyLength = length
        }
        guard buffer.count - start >= bodyLength else { return .needMore }
        var r = pending!
        r.body = Array(buffer[start..<start + bodyLength])
        start += bodyLength
        scan = start
        pending = nil
        return .response(r)
    }
}
