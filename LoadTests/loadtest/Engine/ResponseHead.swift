import Glibc

/// The parts of a response head the load generator acts on, parsed straight from the
/// connection's buffer: status, framing, and the few rtpstream headers (no header dictionary,
/// no strings except the pointer and the boundary).
struct ResponseHead {
    var status = 0
    var contentLength = 0
    /// `Retry-After` in seconds (integer form; an HTTP date counts as 1).
    var retryAfterSeconds: Int?
    /// `PI-Pull-Next`: the path of the next pointer.
    var pullNext: [UInt8]?
    /// `PI-ResourceId` of a single-message response.
    var resourceID: ResourceKey?
    /// The `boundary` parameter of a `multipart/*` Content-Type.
    var boundary: [UInt8]?
    /// `PI-Slots` (used/limit): present on the hub's 429 for the 7th stream.
    var slots = false
    var slotsUsed: Int?
    /// `Connection: close`: the server ends the connection after this response.
    var connectionClose = false
    var chunked = false
    /// Bytes of the head including the blank line.
    var byteCount = 0

    enum Parse {
        case needMore
        case head(ResponseHead)
        case error(String)
    }

    /// Parses the head at the start of `bytes` if the blank line ending it is present.
    /// `scanFrom` skips bytes already searched (the caller keeps it across partial reads).
    static func parse(_ bytes: UnsafeRawBufferPointer, scanFrom: inout Int, headBytesMax: Int) -> Parse {
        guard let blank = findBlankLine(bytes, from: max(0, scanFrom - 3)) else {
            scanFrom = bytes.count
            return bytes.count > headBytesMax ? .error("response head larger than \(headBytesMax) bytes") : .needMore
        }
        let end = blank + 4
        scanFrom = 0
        var head = ResponseHead()
        head.byteCount = end
        // Status line: "HTTP/1.x NNN reason".
        guard end >= 16, bytes[0] == 72, bytes[1] == 84, bytes[2] == 84, bytes[3] == 80, bytes[4] == 47,
              bytes[8] == 32, let status = digits(bytes, 9, 3) else {
            return .error("malformed status line")
        }
        head.status = status
        var lineStart = indexOfLF(bytes, from: 9, to: end) + 1
        while lineStart < end - 2 {
            let lf = indexOfLF(bytes, from: lineStart, to: end)
            guard lf > lineStart, bytes[lf - 1] == 13 else { return .error("malformed header line") }
            let lineEnd = lf - 1
            var colon = lineStart
            while colon < lineEnd && bytes[colon] != 58 { colon += 1 }
            guard colon < lineEnd else { return .error("header line without a colon") }
            var valueStart = colon + 1
            while valueStart < lineEnd && (bytes[valueStart] == 32 || bytes[valueStart] == 9) { valueStart += 1 }
            var valueEnd = lineEnd
            while valueEnd > valueStart && (bytes[valueEnd - 1] == 32 || bytes[valueEnd - 1] == 9) { valueEnd -= 1 }
            let name = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<colon])
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd])
            if !head.apply(name: name, value: value) { return .error("bad value of header \(String(decoding: name, as: UTF8.self))") }
            lineStart = lf + 1
        }
        if head.status == 204 || head.status == 304 || head.status < 200 { head.contentLength = 0 }
        return .head(head)
    }

    /// Records one header; false when a header we rely on has a bad value.
    private mutating func apply(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 14 where ResponseHead.equalsLowercase(name, "content-length"):
            guard let n = ResponseHead.digits(value, 0, value.count), value.count <= 10 else { return false }
            contentLength = n
        case 12 where ResponseHead.equalsLowercase(name, "pi-pull-next"):
            pullNext = Array(value)
        case 11 where ResponseHead.equalsLowercase(name, "retry-after"):
            retryAfterSeconds = value.count <= 6 ? ResponseHead.digits(value, 0, value.count) ?? 1 : 1
        case 13 where ResponseHead.equalsLowercase(name, "pi-resourceid"):
            guard let key = ResourceKey(hex: value) else { return false }
            resourceID = key
        case 12 where ResponseHead.equalsLowercase(name, "content-type"):
            boundary = ResponseHead.boundaryParameter(value)
        case 10 where ResponseHead.equalsLowercase(name, "connection"):
            connectionClose = value.count == 5 && ResponseHead.equalsLowercase(value, "close")
        case 8 where ResponseHead.equalsLowercase(name, "pi-slots"):
            slots = true
            if let slash = value.firstIndex(of: 47) { slotsUsed = ResponseHead.digits(value, 0, slash) }
        case 17 where ResponseHead.equalsLowercase(name, "transfer-encoding"):
            chunked = true
        default:
            break
        }
        return true
    }

    /// The boundary of `multipart/...; boundary=X` (quotes removed), nil for other types.
    static func boundaryParameter(_ value: UnsafeRawBufferPointer) -> [UInt8]? {
        guard value.count > 10, equalsLowercase(UnsafeRawBufferPointer(rebasing: value[0..<10]), "multipart/") else { return nil }
        let key = Array("boundary=".utf8)
        var i = 10
        while i + key.count <= value.count {
            var match = true
            for j in 0..<key.count where lower(value[i + j]) != key[j] {
                match = false
                break
            }
            if match {
                var s = i + key.count
                var e = s
                while e < value.count && value[e] != 59 && value[e] != 32 { e += 1 }
                if e - s >= 2 && value[s] == 34 && value[e - 1] == 34 {
                    s += 1
                    e -= 1
                }
                return e > s ? Array(value[s..<e]) : nil
            }
            i += 1
        }
        return nil
    }

    @inline(__always) static func lower(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c + 32 : c }

    /// Case-insensitive comparison with a lower-case ASCII literal.
    static func equalsLowercase(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        let l = literal.utf8Start
        for i in 0..<bytes.count where lower(bytes[i]) != l[i] { return false }
        return true
    }

    /// Decimal digits at `bytes[from..<from+count]`; nil if any is not a digit.
    static func digits(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ count: Int) -> Int? {
        guard count > 0, from + count <= bytes.count else { return nil }
        var n = 0
        for i in from..<from + count {
            let c = bytes[i]
            guard c >= 48 && c <= 57 else { return nil }
            n = n * 10 + Int(c - 48)
        }
        return n
    }

    /// Index of the first CRLFCRLF at or after `from` (memchr from CR to CR).
    static func findBlankLine(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        let base = bytes.baseAddress!
        var i = from
        while i + 4 <= bytes.count {
            guard let cr = memchr(base + i, 13, bytes.count - 3 - i) else { return nil }
            let at = UnsafeRawPointer(cr) - base
            if bytes[at + 1] == 10 && bytes[at + 2] == 13 && bytes[at + 3] == 10 { return at }
            i = at + 1
        }
        return nil
    }

    private static func indexOfLF(_ bytes: UnsafeRawBufferPointer, from: Int, to: Int) -> Int {
        guard from < to, let p = memchr(bytes.baseAddress! + from, 10, to - from) else { return to - 1 }
        return UnsafeRawPointer(p) - bytes.baseAddress!
    }
}
