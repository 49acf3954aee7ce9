/// HTTP request methods the server distinguishes; anything else is `.other`.
public enum HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    case get, head, post, put, delete, options, patch
    case other(String)

    init(_ token: String) {
        switch token {
        case "GET": self = .get
        case "HEAD": self = .head
        case "POST": self = .post
        case "PUT": self = .put
        case "DELETE": self = .delete
        case "OPTIONS": self = .options
        case "PATCH": self = .patch
        default: self = .other(token)
        }
    }

    public var description: String {
        switch self {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .options: "OPTIONS"
        case .patch: "PATCH"
        case .other(let s): s
        }
    }

    /// Methods whose requests carry a body and therefore need a length (else 411).
    var requiresLength: Bool {
        switch self {
        case .post, .put, .patch: true
        default: false
        }
    }
}

/// One header field; the name is lower-cased by the parser, the value trimmed of OWS.
public struct HTTPHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A complete, validated request.
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The request target as sent (origin-form: path and optional query).
    public var target: String
    /// `HTTP/1.1` -> 1, `HTTP/1.0` -> 0.
    public var minorVersion: Int
    public var headers: [HTTPHeader]
    public var body: [UInt8]
    /// Whether the connection stays open after the response (version default + Connection).
    public var keepAlive: Bool

    public init(method: HTTPMethod, target: String, minorVersion: Int = 1,
                headers: [HTTPHeader] = [], body: [UInt8] = [], keepAlive: Bool = true) {
        self.method = method
        self.target = target
        self.minorVersion = minorVersion
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }

    /// Path part of the target (before any `?`).
    public var path: Substring {
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) { return target[..<q] }
        return target[...]
    }

    /// First value of a header (name compared case-insensitively).
    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.name == n }?.value
    }
}
