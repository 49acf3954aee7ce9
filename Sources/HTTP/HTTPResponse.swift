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
        var s = "HTTP/1.1 \(status) \(HTTPStatus.reason(status))\r\n"
        for h in headers {
            s += h.name
            s += ": "
            s += h.value
            s += "\r\n"
        }
        if status != 204 && status != 304 && !(100..<200).contains(status) {
            s += "Content-Length: \(bodyOmitted ? 0 : bodyLength)\r\n"
        }
        if let date { s += "Date: \(date)\r\n" }
        if !keepAlive { s += "Connection: close\r\n" }
        s += "\r\n"
        return Array(s.utf8)
    }
}

public enum HTTPStatus {
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
