/// A response: status, headers and a body as a list of byte arrays written with one gathered
/// write (message payloads are shared, not copied, into multipart bodies).
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [HTTPHeader]
    public var body: [[UInt8]]

    public init(status: Int, headers: [HTTPHeader] = [], body: [[UInt8]] = []) {
        self.status = status
        self.headers = headers
        self.body = body.filter { !$0.isEmpty }
    }

    public init(status: Int, headers: [HTTPHeader] = [], body: [UInt8]) {
        self.init(status: status, headers: headers, body: [body])
    }

    public static func problem(_ p: Problem, headers: [HTTPHeader] = []) -> HTTPResponse {
        HTTPResponse(status: p.status,
                     headers: [HTTPHeader("Content-Type", Problem.contentType)] + headers,
                     body: p.xmlDocument)
    }

    public var bodyLength: Int { body.reduce(0) { $0 + $1.count } }

    /// Status line and header section. Adds `Content-Length` (always), `Date` when given and
    /// `Connection: close` when the connection ends after this response.
    public func serializeHead(keepAlive: Bool, date: String?, bodyOmitted: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160 + headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 })
        out.append(contentsOf: HTTPStatus.statusLine(status))
        for h in headers {
            out.append(contentsOf: h.name.utf8)
            out.append(58)
            out.append(32)
            out.append(contentsOf: h.value.utf8)
            out.append(13)
            out.append(10)
        }
        if status != 204 && status != 304 && !(100..<200).contains(status) {
            out.append(contentsOf: "Content-Length: ".utf8)
            HTTPResponse.appendDecimal(bodyOmitted ? 0 : bodyLength, to: &out)
            out.append(13)
            out.append(10)
        }
        if let date {
            out.append(contentsOf: "Date: ".utf8)
            out.append(contentsOf: date.utf8)
            out.append(13)
            out.append(10)
        }
        if !keepAlive { out.append(contentsOf: "Connection: close\r\n".utf8) }
        out.append(13)
        out.append(10)
        return out
    }

    static func appendDecimal(_ n: Int, to out: inout [UInt8]) {
        precondition(n >= 0)
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var v = n
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[count] = UInt8(48 + v % 10)
                v /= 10
                count += 1
            } while v > 0
            for i in stride(from: count - 1, through: 0, by: -1) { out.append(d[i]) }
        }
    }
}

public enum HTTPStatus {
    /// "HTTP/1.1 <status> <reason>\r\n", cached for the statuses the hub sends.
    static func statusLine(_ status: Int) -> [UInt8] {
        if let cached = statusLines[status] { return cached }
        return Array("HTTP/1.1 \(status) \(reason(status))\r\n".utf8)
    }

    private static let statusLines: [Int: [UInt8]] = {
        var m: [Int: [UInt8]] = [:]
        for s in [200, 201, 204, 207, 400, 403, 404, 405, 406, 408, 410, 411, 413, 414, 415, 422, 429, 431, 500, 501, 503, 505] {
            m[s] = Array("HTTP/1.1 \(s) \(reason(s))\r\n".utf8)
        }
        return m
    }()

    public static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 207: "Multi-Status"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status"
        }
    }
}
