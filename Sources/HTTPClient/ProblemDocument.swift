import HTTP

/// An RFC 7807 `application/problem+xml` document as a client reads it: the hub's problems
/// are flat (`type`, `title`, `status`, `detail` children of `<problem>`), so this is a small
/// extractor, not a general XML parser.
public struct ProblemDocument: Sendable, Equatable {
    public var type: String
    public var title: String
    public var status: Int?
    public var detail: String

    public init(type: String, title: String, status: Int?, detail: String) {
        self.type = type
        self.title = title
        self.status = status
        self.detail = detail
    }

    /// The problem in `bytes`, or nil when they hold no `<problem>` with a `<type>`.
    public init?(_ bytes: [UInt8]) {
        guard Multipart.search(Array("<problem".utf8), in: bytes, from: 0) != nil,
              let type = Self.element("type", in: bytes) else { return nil }
        self.type = type
        title = Self.element("title", in: bytes) ?? ""
        status = Self.element("status", in: bytes).flatMap { Int($0) }
        detail = Self.element("detail", in: bytes) ?? ""
    }

    /// The last segment of `urn:rtpstream:problem:<slug>`.
    public var slug: String { type.split(separator: ":").last.map(String.init) ?? type }

    private static func element(_ name: String, in bytes: [UInt8]) -> String? {
        let open = Array("<\(name)>".utf8)
        guard let start = Multipart.search(open, in: bytes, from: 0),
              let end = Multipart.search(Array("</\(name)>".utf8), in: bytes, from: start + open.count) else { return nil }
        return unescape(String(decoding: bytes[(start + open.count)..<end], as: UTF8.self))
    }

    /// Undoes the five predefined XML entity references.
    static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        let entities: [(String, String)] = [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&apos;", "'"), ("&amp;", "&")]
        var out = ""
        var rest = Substring(s)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            rest = rest[amp...]
            if let (entity, char) = entities.first(where: { rest.hasPrefix($0.0) }) {
                out += char
                rest = rest.dropFirst(entity.count)
            } else {
                out += "&"
                rest = rest.dropFirst()
            }
        }
        return out + rest
    }
}

extension HTTPClientResponse {
    /// The response's problem document, when it carries one.
    public var problem: ProblemDocument? {
        guard header("content-type")?.lowercased().hasPrefix(Problem.contentType) == true else { return nil }
        return ProblemDocument(body)
    }
}
