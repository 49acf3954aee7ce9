/// Where a client connects: `http://HOST[:PORT]` or `https://HOST[:PORT]` (IPv6 in brackets).
public struct HTTPEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var tls: Bool
    public var host: String
    public var port: Int

    public init(tls: Bool, host: String, port: Int) {
        self.tls = tls
        self.host = host
        self.port = port
    }

    /// Parses a base URL; a path other than "/" is refused (the API paths are fixed).
    public init(url: String) throws {
        let tls: Bool
        var rest: Substring
        if url.hasPrefix("https://") {
            tls = true
            rest = url.dropFirst("https://".count)
        } else if url.hasPrefix("http://") {
            tls = false
            rest = url.dropFirst("http://".count)
        } else {
            throw HTTPClientError("'\(url)' is not an http:// or https:// URL")
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.contains("/") else { throw HTTPClientError("'\(url)': give the base URL only (no path)") }
        var host = rest
        var port = tls ? 443 : 80
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw HTTPClientError("'\(url)': unclosed [") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()) else { throw HTTPClientError("'\(url)': bad port") }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let p = Int(rest[rest.index(after: colon)...]) else { throw HTTPClientError("'\(url)': bad port") }
            port = p
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw HTTPClientError("'\(url)': bad host or port") }
        self.init(tls: tls, host: String(host), port: port)
    }

    public var description: String {
        (tls ? "https://" : "http://") + (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
    }
}

