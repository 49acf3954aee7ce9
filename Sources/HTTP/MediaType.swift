/// A parsed `Content-Type`: lower-cased type/subtype and its parameters (names lower-cased,
/// quoted values unquoted).
public struct MediaType: Sendable, Equatable {
    public var type: String
    public var subtype: String
    public var parameters: [String: String]

    public var essence: String { "\(type)/\(subtype)" }

    public init?(_ text: String) {
        var parts = Substring(text).split(separator: ";", omittingEmptySubsequences: false)
        guard !parts.isEmpty else { return nil }
        let essence = parts.removeFirst().trimmingSpaces.lowercased()
        let ts = essence.split(separator: "/", omittingEmptySubsequences: false)
        guard ts.count == 2, !ts[0].isEmpty, !ts[1].isEmpty,
              ts.allSatisfy({ $0.utf8.allSatisfy(HTTPRequestParser.isTokenByte) }) else { return nil }
        type = String(ts[0])
        subtype = String(ts[1])
        parameters = [:]
        for p in parts {
            let kv = p.trimmingSpaces
            if kv.isEmpty { continue }
            guard let eq = kv.firstIndex(of: "=") else { return nil }
            let name = kv[..<eq].trimmingSpaces.lowercased()
            var value = kv[kv.index(after: eq)...].trimmingSpaces
            if value.hasPrefix("\"") {
                guard value.count >= 2, value.hasSuffix("\"") else { return nil }
                value = value.dropFirst().dropLast()
                value = Substring(value.replacingBackslashEscapes())
            }
            guard !name.isEmpty else { return nil }
            parameters[name] = String(value)
        }
    }
}

extension Substring {
    func replacingBackslashEscapes() -> String {
        var out = ""
        var escaped = false
        for c in self {
            if escaped {
                out.append(c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }
}

/// `Accept` negotiation for the pull routes (DESIGN.md §1): one message as `application/xml`
/// or up to ten as `multipart/mixed`.
public enum PullRepresentation: Sendable, Equatable {
    case single
    case multipart

    /// nil means 406: nothing acceptable. No header or an empty one means `single`.
    /// `multipart/mixed` wins when listed with a q-value at least as high as any acceptable
    /// single-message range (`application/xml`, `application/*`, `*/*`).
    public static func negotiate(accept: String?) -> PullRepresentation? {
        guard let accept, !accept.trimmingCharacters(in: " \t").isEmpty else { return .single }
        var singleQ = -1.0
        var multiQ = -1.0
        for range in accept.split(separator: ",") {
            let params = range.split(separator: ";")
            guard let first = params.first else { continue }
            let media = first.trimmingSpaces.lowercased()
            var q = 1.0
            for p in params.dropFirst() {
                let kv = p.trimmingSpaces
                if kv.lowercased().hasPrefix("q="), let v = Double(kv.dropFirst(2)) { q = v }
            }
            switch media {
            case "multipart/mixed", "multipart/*": multiQ = max(multiQ, q)
            case "application/xml", "application/*", "text/xml": singleQ = max(singleQ, q)
            case "*/*": singleQ = max(singleQ, q)
            default: break
            }
        }
        if multiQ > 0 && multiQ >= singleQ { return .multipart }
        if singleQ > 0 { return .single }
        return nil
    }
}

/// `Accept-Encoding: gzip` (with q > 0) asks for a gzip'd response.
public func acceptsGzip(_ acceptEncoding: String?) -> Bool {
    guard let acceptEncoding else { return false }
    for coding in acceptEncoding.split(separator: ",") {
        let params = coding.split(separator: ";")
        guard let name = params.first?.trimmingSpaces.lowercased(), name == "gzip" || name == "x-gzip" else { continue }
        var q = 1.0
        for p in params.dropFirst() {
            let kv = p.trimmingSpaces
            if kv.lowercased().hasPrefix("q="), let v = Double(kv.dropFirst(2)) { q = v }
        }
        return q > 0
    }
    return false
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
