import HTTP

/// A request for `HTTPClientConnection.perform`: `Host` is added, and `Content-Length` unless
/// the headers already frame the body (`Content-Length` or `Transfer-Encoding`).
public struct HTTPClientRequest: Sendable {
    public var method: String
    /// Origin-form target: "/api/v1/in/12345678/msgs".
    public var path: String
    public var headers: [HTTPHeader]
    public var body: [UInt8]

    public init(method: String, path: String, headers: [HTTPHeader] = [], body: [UInt8] = []) {
        precondition(!method.isEmpty && path.hasPrefix("/"), "method and an origin-form path")
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }

    /// The request's bytes: head and body.
    public func serialized(host: String) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        var framed = false
        for h in headers {
            let name = h.name.lowercased()
            if name == "host" { continue }
            if name == "content-length" || name == "transfer-encoding" { framed = true }
            head += "\(h.name): \(h.value)\r\n"
        }
        if !framed && (!body.isEmpty || method == "POST" || method == "PUT" || method == "PATCH") {
            head += "Content-Length: \(body.count)\r\n"
        }
        head += "\r\n"
        var bytes = Array(head.utf8)
        bytes.reserveCapacity(bytes.count + body.count)
        bytes.append(contentsOf: body)
        return bytes
    }
}

extension HTTPClientResponse {
    /// The parts of a `multipart/mixed` response, or nil when the response is not multipart.
    public func multipartParts(partsMax: Int = 1000) throws -> [MultipartPart]? {
        guard let type = header("content-type").flatMap(MediaType.init), type.essence == "multipart/mixed" else { return nil }
        guard let boundary = type.parameters["boundary"] else { throw HTTPClientError("multipart response without a boundary") }
        do {
            return try Multipart.parse(body, boundary: boundary, partsMax: partsMax)
        } catch {
            throw HTTPClientError("malformed multipart response: \(error)")
        }
    }
}
