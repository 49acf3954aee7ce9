/// Why a request was refused at the HTTP layer; the server answers with `status` and closes.
public struct HTTPParseError: Error, Equatable, Sendable {
    public let problem: ProblemType
    public let detail: String

    public init(_ problem: ProblemType, _ detail: String) {
        self.problem = problem
        self.detail = detail
    }

    public var status: Int { problem.status }
}

/// What `HTTPRequestParser.next()` found in the bytes fed so far.
public enum HTTPParseResult: Sendable {
    /// No complete request yet.
    case needMore
    /// One complete request, removed from the buffer; pipelined bytes stay buffered.
    case request(HTTPRequest)
    /// The stream is not valid HTTP/1.1 within our limits; answer and close.
    case error(HTTPParseError)
}

/// An incremental, strict HTTP/1.1 request parser. Bytes go in with `feed` in any split (whole,
/// one byte at a time, random pieces); `next()` yields complete requests in order. Strictness:
/// CRLF line endings only, no obs-fold, no whitespace before a field colon, token method and
/// field names, visible-ASCII origin-form target, one Content-Length or chunked (never both),
/// Host required on HTTP/1.1. Every size is capped by `HTTPLimits`.
public struct HTTPRequestParser: Sendable {
    public enum Phase: Sendable, Equatable {
        /// Nothing of a request buffered.
        case idle
        /// Part of a request line or header section buffered.
        case head
        /// Headers complete, body incomplete.
        case body
    }

    private enum State: Sendable {
        case head
        case fixedBody(Int)
        case chunkSize
        case chunkData(Int)
        case chunkDataEnd
        case trailers(Int)
        case failed(HTTPParseError)
    }

    public let limits: HTTPLimits
    private var buffer: [UInt8] = []
    private var start = 0            // first unconsumed byte
    private var scan = 0             // head scan resumes here
    private var requestLineEnd = -1  // index of the request line's LF once seen
    private var state: State = .head
    private var pending: HTTPRequest?

    public init(limits: HTTPLimits) {
        self.limits = limits
    }

    /// Buffers bytes; call `next()` to extract requests.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            scan -= start
            if requestLineEnd >= 0 { requestLineEnd -= start }
            start = 0
        } else if start > 4096 && start * 2 > buffer.count {
            buffer.removeFirst(start)
            scan -= start
            if requestLineEnd >= 0 { requestLineEnd -= start }
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func feed(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { feed($0) }
    }

    /// Bytes buffered and not yet part of a returned request.
    public var bufferedBytes: Int { buffer.count - start }

    public var phase: Phase {
        switch state {
        case .head: return bufferedBytes == 0 ? .idle : .head
        case .failed: return .idle
        default: return .body
        }
    }

    public mutating func next() -> HTTPParseResult {
        while true {
            switch state {
            case .failed(let e):
                return .error(e)
            case .head:
                switch parseHead() {
                case .needMore: return .needMore
                case .error(let e): return fail(e)
                case .request(let r): return .request(r)
                }
            case .fixedBody(let length):
                guard bufferedBytes >= length else { return .needMore }
                pending!.body = Array(buffer[start..<start + length])
                start += length
                return finish()
            case .chunkSize:
                guard let lf = find(lf: start, limit: limits.chunkLineBytesMax + 2) else {
                    if bufferedBytes > limits.chunkLineBytesMax + 1 {
                        return fail(.init(.badRequest, "chunk size line too long"))
                    }
                    return .needMore
                }
                guard lf > start, buffer[lf - 1] == 13 else { return fail(.init(.badRequest, "bare LF in chunked body")) }
                guard let size = parseChunkSize(start..<lf - 1) else {
                    return fail(.init(.badRequest, "malformed chunk size"))
                }
                start = lf + 1
                if size == 0 {
                    state = .trailers(0)
                } else {
                    guard pending!.body.count + size <= limits.bodyBytesMax else {
                        return fail(.init(.bodyTooLarge, "body exceeds \(limits.bodyBytesMax) bytes"))
                    }
                    state = .chunkData(size)
                }
            case .chunkData(let remaining):
                let n = min(remaining, bufferedBytes)
                guard n > 0 else { return .needMore }
                pending!.body.append(contentsOf: buffer[start..<start + n])
                start += n
                state = remaining == n ? .chunkDataEnd : .chunkData(remaining - n)
            case .chunkDataEnd:
                guard bufferedBytes >= 2 else { return .needMore }
                guard buffer[start] == 13, buffer[start + 1] == 10 else {
                    return fail(.init(.badRequest, "chunk data not followed by CRLF"))
                }
                start += 2
                state = .chunkSize
            case .trailers(let seen):
                guard let lf = find(lf: start, limit: limits.trailerBytesMax - seen + 1) else {
                    if seen + bufferedBytes > limits.trailerBytesMax {
                        return fail(.init(.headersTooLarge, "trailer section exceeds \(limits.trailerBytesMax) bytes"))
                    }
                    return .needMore
                }
                guard lf > start, buffer[lf - 1] == 13 else { return fail(.init(.badRequest, "bare LF in trailers")) }
                let lineLength = lf - 1 - start
                if lineLength == 0 {
                    start = lf + 1
                    return finish()
                }
                if case .failure(let e) = parseField(start..<lf - 1) { return fail(e) }
                start = lf + 1
                state = .trailers(seen + lineLength + 2)
            }
        }
    }

    // MARK: head

    private enum HeadResult {
        case needMore
        case error(HTTPParseError)
        case request(HTTPRequest)
    }

    private mutating func parseHead() -> HeadResult {
        // Tolerate empty lines before a request line (RFC 9112 §2.2).
        while bufferedBytes >= 2 && buffer[start] == 13 && buffer[start + 1] == 10 {
            start += 2
        }
        if bufferedBytes == 1 && buffer[start] == 13 { return .needMore }
        if scan < start { scan = start }
        if requestLineEnd >= 0 && requestLineEnd < start { requestLineEnd = -1 }

        // The scan never looks past what the limits allow (the request line's LF at most
        // `requestLineBytesMax + 1` bytes after its start, the head's final LF at most
        // `headerBytesMax` bytes after the request line's): otherwise a defect beyond the limit
        // would be reported as 400 when the bytes arrive together and as 414/431 when they
        // arrive in pieces (found by the fuzzer, which parses every input whole and split).
        let end = buffer.count
        var headEnd = -1
        var bad: HTTPParseError?
        var window = 0
        buffer.withUnsafeBufferPointer { b in
            var i = scan
            while true {
                window = requestLineEnd < 0 ? start + limits.requestLineBytesMax + 2
                                            : requestLineEnd + limits.headerBytesMax + 1
                guard i < min(end, window) else { break }
                if b[i] == 10 {
                    if i == start || b[i - 1] != 13 {
                        bad = .init(.badRequest, "bare LF in request head")
                        return
                    }
                    if requestLineEnd < 0 { requestLineEnd = i }
                    if i - 3 >= start && b[i - 2] == 10 && b[i - 3] == 13 {
                        headEnd = i
                        return
                    }
                }
                i += 1
            }
            scan = i
        }
        if let bad { return .error(bad) }
        if headEnd < 0 {
            guard end >= window else { return .needMore }
            if requestLineEnd < 0 {
                return .error(.init(.uriTooLong, "request line exceeds \(limits.requestLineBytesMax) bytes"))
            }
            return .error(.init(.headersTooLarge, "header section exceeds \(limits.headerBytesMax) bytes"))
        }
        let lineEnd = requestLineEnd
        if lineEnd - 1 - start > limits.requestLineBytesMax {
            return .error(.init(.uriTooLong, "request line exceeds \(limits.requestLineBytesMax) bytes"))
        }
        if headEnd - lineEnd > limits.headerBytesMax {
            return .error(.init(.headersTooLarge, "header section exceeds \(limits.headerBytesMax) bytes"))
        }
        let requestLine = start..<lineEnd - 1
        start = headEnd + 1
        scan = start
        requestLineEnd = -1
        return buildRequest(requestLine: requestLine, fields: lineEnd + 1..<headEnd - 1)
    }

    private mutating func buildRequest(requestLine: Range<Int>, fields: Range<Int>) -> HeadResult {
        var request: HTTPRequest
        switch parseRequestLine(requestLine) {
        case .failure(let e): return .error(e)
        case .success(let r): request = r
        }
        var contentLength: Int?
        var chunked = false
        // A well-formed coding we do not implement is 501, but only once every field line has
        // parsed: a malformed head is 400 whatever coding it names first.
        var unsupportedCoding = false
        var hostCount = 0
        var connectionClose = false
        var connectionKeepAlive = false
        var lineStart = fields.lowerBound
        while lineStart < fields.upperBound {
            // Each field line ends with CRLF; `fields` ends before the final empty line's CR.
            var lf = lineStart
            while buffer[lf] != 10 { lf += 1 }
            let line = lineStart..<lf - 1
            lineStart = lf + 1
            guard request.headers.count < limits.headerCountMax else {
                return .error(.init(.headersTooLarge, "more than \(limits.headerCountMax) header fields"))
            }
            let field: HTTPHeader
            switch parseField(line) {
            case .failure(let e): return .error(e)
            case .success(let f): field = f
            }
            if let allowed = limits.allowedHeaders, !allowed.contains(field.name) {
                return .error(.init(.headerNotAllowed, "header '\(field.name)' is not accepted"))
            }
            switch field.name {
            case "content-length":
                guard contentLength == nil else { return .error(.init(.badRequest, "more than one Content-Length")) }
                guard let n = Self.parseDecimal(field.value) else {
                    return .error(.init(.badRequest, "malformed Content-Length"))
                }
                contentLength = n
            case "transfer-encoding":
                guard !chunked && !unsupportedCoding else { return .error(.init(.badRequest, "more than one Transfer-Encoding")) }
                guard Self.isTokenList(field.value) else { return .error(.init(.badRequest, "malformed Transfer-Encoding")) }
                if field.value.lowercased() == "chunked" { chunked = true } else { unsupportedCoding = true }
            case "host":
                hostCount += 1
            case "connection":
                for token in field.value.split(separator: ",") {
                    let t = token.trimmingSpaces.lowercased()
                    if t == "close" { connectionClose = true }
                    if t == "keep-alive" { connectionKeepAlive = true }
                }
            default:
                break
            }
            request.headers.append(field)
        }
        if unsupportedCoding {
            return .error(.init(.notImplemented, "only the chunked transfer coding is supported"))
        }
        if request.minorVersion == 1 && hostCount != 1 {
            return .error(.init(.badRequest, hostCount == 0 ? "missing Host" : "more than one Host"))
        }
        if chunked && contentLength != nil {
            return .error(.init(.badRequest, "both Content-Length and Transfer-Encoding"))
        }
        if chunked && request.minorVersion == 0 {
            return .error(.init(.badRequest, "Transfer-Encoding in an HTTP/1.0 request"))
        }
        request.keepAlive = request.minorVersion == 1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        if let n = contentLength {
            guard n <= limits.bodyBytesMax else {
                return .error(.init(.bodyTooLarge, "body of \(n) bytes exceeds \(limits.bodyBytesMax)"))
            }
            if n > 0 {
                pending = request
                state = .fixedBody(n)
                return continueWithBody()
            }
        } else if chunked {
            pending = request
            state = .chunkSize
            return continueWithBody()
        } else if request.method.requiresLength {
            return .error(.init(.lengthRequired, "\(request.method) needs Content-Length or chunked"))
        }
        return .request(request)
    }

    private mutating func continueWithBody() -> HeadResult {
        switch next() {
        case .request(let r): return .request(r)
        case .error(let e): return .error(e)
        case .needMore: return .needMore
        }
    }

    private func parseRequestLine(_ r: Range<Int>) -> Result<HTTPRequest, HTTPParseError> {
        let malformed = HTTPParseError(.badRequest, "malformed request line")
        var i = r.lowerBound
        while i < r.upperBound && buffer[i] != 32 {
            guard Self.isTokenByte(buffer[i]) else { return .failure(malformed) }
            i += 1
        }
        guard i > r.lowerBound, i < r.upperBound else { return .failure(malformed) }
        let method = HTTPMethod(String(decoding: buffer[r.lowerBound..<i], as: UTF8.self))
        i += 1
        let targetStart = i
        while i < r.upperBound && buffer[i] != 32 {
            guard buffer[i] > 32 && buffer[i] < 127 else { return .failure(malformed) }
            i += 1
        }
        guard i > targetStart, i < r.upperBound, buffer[targetStart] == UInt8(ascii: "/") else {
            return .failure(malformed)
        }
        let target = String(decoding: buffer[targetStart..<i], as: UTF8.self)
        i += 1
        let version = buffer[i..<r.upperBound]
        guard version.count == 8, version.starts(with: Self.httpSlash),
              let major = Self.digit(version[i + 5]), version[i + 6] == UInt8(ascii: "."),
              let minor = Self.digit(version[i + 7]) else {
            return .failure(malformed)
        }
        guard major == 1, minor <= 1 else {
            return .failure(.init(.versionNotSupported, "HTTP/\(major).\(minor) is not supported"))
        }
        return .success(HTTPRequest(method: method, target: target, minorVersion: minor))
    }

    private func parseField(_ r: Range<Int>) -> Result<HTTPHeader, HTTPParseError> {
        var i = r.lowerBound
        var name = ""
        name.reserveCapacity(16)
        while i < r.upperBound && buffer[i] != UInt8(ascii: ":") {
            let c = buffer[i]
            guard Self.isTokenByte(c) else {
                return .failure(.init(.badRequest, i == r.lowerBound ? "obsolete line folding or empty field name" : "invalid character in a field name"))
            }
            name.unicodeScalars.append(Unicode.Scalar(c >= 65 && c <= 90 ? c + 32 : c))
            i += 1
        }
        guard i < r.upperBound, i > r.lowerBound else {
            return .failure(.init(.badRequest, "header field without a colon"))
        }
        i += 1
        var vStart = i
        var vEnd = r.upperBound
        while vStart < vEnd && (buffer[vStart] == 32 || buffer[vStart] == 9) { vStart += 1 }
        while vEnd > vStart && (buffer[vEnd - 1] == 32 || buffer[vEnd - 1] == 9) { vEnd -= 1 }
        for j in vStart..<vEnd {
            let c = buffer[j]
            if (c < 32 && c != 9) || c == 127 {
                return .failure(.init(.badRequest, "control character in header '\(name)'"))
            }
        }
        return .success(HTTPHeader(name, String(decoding: buffer[vStart..<vEnd], as: UTF8.self)))
    }

    private func parseChunkSize(_ r: Range<Int>) -> Int? {
        var size = 0
        var i = r.lowerBound
        var digits = 0
        while i < r.upperBound, let d = Self.hexDigit(buffer[i]) {
            digits += 1
            guard digits <= 15 else { return nil }
            size = size << 4 | d
            i += 1
        }
        guard digits > 0 else { return nil }
        // Chunk extensions are ignored, but must be printable.
        while i < r.upperBound && (buffer[i] == 32 || buffer[i] == 9) { i += 1 }
        if i < r.upperBound {
            guard buffer[i] == UInt8(ascii: ";") else { return nil }
            for j in i..<r.upperBound where (buffer[j] < 32 && buffer[j] != 9) || buffer[j] == 127 {
                return nil
            }
        }
        return size
    }

    // MARK: helpers

    private mutating func finish() -> HTTPParseResult {
        let r = pending!
        pending = nil
        state = .head
        scan = start
        return .request(r)
    }

    private mutating func fail(_ e: HTTPParseError) -> HTTPParseResult {
        state = .failed(e)
        pending = nil
        return .error(e)
    }

    /// Index of the first LF in [from, from+limit), or nil.
    private func find(lf from: Int, limit: Int) -> Int? {
        let end = min(buffer.count, from + max(limit, 0))
        var i = from
        while i < end {
            if buffer[i] == 10 { return i }
            i += 1
        }
        return nil
    }

    private static let httpSlash: [UInt8] = Array("HTTP/".utf8)

    static func isTokenByte(_ c: UInt8) -> Bool { tokenTable[Int(c)] }

    private static let tokenTable: [Bool] = (0..<256).map { c in
        if c >= 0x30 && c <= 0x39 { return true }
        if c >= 0x41 && c <= 0x5A { return true }
        if c >= 0x61 && c <= 0x7A { return true }
        return "!#$%&'*+-.^_`|~".utf8.contains(UInt8(c))
    }

    private static func digit(_ c: UInt8) -> Int? { c >= 48 && c <= 57 ? Int(c - 48) : nil }

    private static func hexDigit(_ c: UInt8) -> Int? {
        switch c {
        case 48...57: Int(c - 48)
        case 65...70: Int(c - 55)
        case 97...102: Int(c - 87)
        default: nil
        }
    }

    /// A Transfer-Encoding value's shape: one or more comma-separated codings, each a token
    /// optionally followed by `;` parameters (not interpreted). Empty elements are malformed.
    static func isTokenList(_ s: String) -> Bool {
        let elements = s.split(separator: ",", omittingEmptySubsequences: false)
        return elements.allSatisfy { element in
            let name = element.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0].trimmingSpaces
            return !name.isEmpty && name.utf8.allSatisfy(isTokenByte)
                && name.utf8.last.map { $0 != 32 && $0 != 9 } ?? false
        }
    }

    /// A non-negative decimal of at most 15 digits (larger is never a valid length here).
    static func parseDecimal(_ s: String) -> Int? {
        guard !s.isEmpty, s.utf8.count <= 15 else { return nil }
        var n = 0
        for c in s.utf8 {
            guard let d = digit(c) else { return nil }
            n = n * 10 + d
        }
        return n
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}
