/// Every limit the HTTP layer enforces, named with its unit, with the defaults an operator gets.
/// One table: docs/configuration.md lists the same values.
public struct HTTPLimits: Sendable {
    /// Request line ("GET /path HTTP/1.1") without CRLF. Longer -> 414.
    public var requestLineBytesMax = 4096
    /// Header section (all field lines with their CRLFs). Larger -> 431.
    public var headerBytesMax = 16 * 1024
    /// Number of header fields. More -> 431.
    public var headerCountMax = 32
    /// Request body after transfer decoding. Larger -> 413.
    public var bodyBytesMax = 4 * 1024 * 1024
    /// One chunk-size line of a chunked body (size, extensions). Longer -> 400.
    public var chunkLineBytesMax = 256
    /// Trailer section of a chunked body. Larger -> 431.
    public var trailerBytesMax = 4 * 1024
    /// Request header names accepted (lower case); anything else -> 400. `nil` accepts any.
    public var allowedHeaders: Set<String>? = nil

    public init() {}

    /// ICOM's request-header whitelist (DESIGN.md §1 "Errors and hygiene").
    public static let icomAllowedHeaders: Set<String> = [
        "accept", "accept-encoding", "connection", "content-encoding", "content-length",
        "content-type", "cookie", "host", "max-forwards", "transfer-encoding", "user-agent", "via",
    ]
}
