import Foundation
import Glibc
import TLS

/// Where a run sends its requests and how it authenticates as each PSP.
struct Target {
    /// Numeric address.
    let host: String
    let port: Int
    /// Mutual TLS (client certificates from `certsDir`), or plaintext.
    let tls: Bool
    /// `rtpstream certs` layout: ca.pem, client-<ISPB>.pem, client-<ISPB>-key.pem.
    let certsDir: String?
    /// Host header value.
    var hostHeader: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// A client context presenting the certificate of `ispb` (nil for plaintext).
    func clientContext(ispb: String, maxVersion: TLSVersion = TLSDefaults.maxVersion) throws -> TLSContext? {
        guard tls else { return nil }
        guard let dir = certsDir else { throw LoadTestError("mutual TLS needs --certs DIR") }
        do {
            return try TLSContext.client(TLSClientConfig(
                certPath: "\(dir)/client-\(ispb).pem", keyPath: "\(dir)/client-\(ispb)-key.pem",
                caPath: "\(dir)/ca.pem", serverName: host, maxVersion: maxVersion))
        } catch {
            throw LoadTestError("client certificate of \(ispb): \(error)")
        }
    }

    /// Parses `http(s)://host:port`; refuses non-loopback hosts unless `allowRemote`.
    static func parse(url: String, certsDir: String?, allowRemote: Bool) throws -> Target {
        let tls: Bool
        var rest: Substring
        if url.hasPrefix("https://") {
            tls = true
            rest = url.dropFirst(8)
        } else if url.hasPrefix("http://") {
            tls = false
            rest = url.dropFirst(7)
        } else {
            throw LoadTestError("--url must start with https:// or http://")
        }
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        let hostPart: Substring
        let portPart: Substring?
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            hostPart = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            portPart = after.hasPrefix(":") ? after.dropFirst() : nil
        } else if let colon = rest.lastIndex(of: ":") {
            hostPart = rest[..<colon]
            portPart = rest[rest.index(after: colon)...]
        } else {
            hostPart = rest
            portPart = nil
        }
        let port = portPart.flatMap { Int($0) } ?? (tls ? 443 : 80)
        let numeric = try resolve(String(hostPart))
        if !allowRemote && !isLoopback(numeric) {
            throw LoadTestError("\(hostPart) (\(numeric)) is not a loopback address: pass --allow-remote to load a remote hub")
        }
        if tls && certsDir == nil { throw LoadTestError("an https:// target needs --certs DIR (ca.pem and client certificates)") }
        return Target(host: numeric, port: port, tls: tls, certsDir: certsDir)
    }

    static func isLoopback(_ numeric: String) -> Bool {
        numeric.hasPrefix("127.") || numeric == "::1"
    }

    /// A numeric address for `host` (getaddrinfo, once at start).
    static func resolve(_ host: String) throws -> String {
        if host == "localhost" { return "127.0.0.1" }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else {
            throw LoadTestError("cannot resolve \(host)")
        }
        defer { freeaddrinfo(result) }
        var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(first.pointee.ai_addr, first.pointee.ai_addrlen, &buffer, socklen_t(buffer.count),
                          nil, 0, NI_NUMERICHOST) == 0 else {
            throw LoadTestError("cannot resolve \(host)")
        }
        let end = buffer.firstIndex(of: 0) ?? buffer.count
        return String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The ISPBs of the client certificates in `dir` (client-<8 digits>.pem), sorted.
    static func clientISPBs(inCertsDir dir: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.compactMap { name -> String? in
            guard name.hasPrefix("client-"), name.hasSuffix(".pem"), !name.hasSuffix("-key.pem") else { return nil }
            let ispb = String(name.dropFirst(7).dropLast(4))
            return ispb.utf8.count == 8 && ispb.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) ? ispb : nil
        }.sorted()
    }
}
