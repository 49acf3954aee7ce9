/// One entry of the error catalog: a stable type URI, a short title and the HTTP status.
/// The catalog is closed: every error the hub returns is one of `ProblemType.all`, and
/// docs/errors.md lists the same entries (a test keeps them in sync).
public struct ProblemType: Sendable, Hashable, CustomStringConvertible {
    public let slug: String
    public let title: String
    public let status: Int

    public init(slug: String, title: String, status: Int) {
        self.slug = slug
        self.title = title
        self.status = status
    }

    /// Stable type URI, e.g. `urn:rtpstream:problem:header-not-allowed`.
    public var uri: String { "urn:rtpstream:problem:" + slug }
    public var description: String { uri }

    // HTTP layer
    public static let badRequest = ProblemType(slug: "malformed-request", title: "Malformed HTTP request", status: 400)
    public static let headerNotAllowed = ProblemType(slug: "header-not-allowed", title: "Request header not allowed", status: 400)
    public static let lengthRequired = ProblemType(slug: "length-required", title: "Content-Length or chunked encoding required", status: 411)
    public static let bodyTooLarge = ProblemType(slug: "body-too-large", title: "Request body too large", status: 413)
    public static let uriTooLong = ProblemType(slug: "request-line-too-long", title: "Request line too long", status: 414)
    public static let headersTooLarge = ProblemType(slug: "headers-too-large", title: "Request header section too large", status: 431)
    public static let requestTimeout = ProblemType(slug: "request-timeout", title: "Request not received in time", status: 408)
    public static let notImplemented = ProblemType(slug: "transfer-coding-not-supported", title: "Transfer coding not supported", status: 501)
    public static let versionNotSupported = ProblemType(slug: "http-version-not-supported", title: "HTTP version not supported", status: 505)
    public static let notFound = ProblemType(slug: "not-found", title: "No such resource", status: 404)
    public static let methodNotAllowed = ProblemType(slug: "method-not-allowed", title: "Method not allowed on this resource", status: 405)
    public static let unsupportedMediaType = ProblemType(slug: "unsupported-media-type", title: "Content-Type or Content-Encoding not supported", status: 415)
    public static let notAcceptable = ProblemType(slug: "not-acceptable", title: "No acceptable representation", status: 406)
    public static let shuttingDown = ProblemType(slug: "shutting-down", title: "Server is shutting down", status: 503)
    public static let internalError = ProblemType(slug: "internal-error", title: "Internal error", status: 500)
    // API: authorization
    public static let invalidISPB = ProblemType(slug: "invalid-ispb", title: "ISPB in the path is not 8 digits", status: 400)
    public static let forbiddenISPB = ProblemType(slug: "forbidden-ispb", title: "Path ISPB is not the client certificate's ISPB", status: 403)
    // API: send path (validation codes are ISO20022.RejectCode's raw values)
    public static let invalidEncoding = ProblemType(slug: "invalid-content-encoding", title: "Body is not valid gzip", status: 400)
    public static let tooManyParts = ProblemType(slug: "too-many-parts", title: "More parts than a request may carry", status: 413)
    public static let malformedMultipart = ProblemType(slug: "malformed-multipart", title: "Malformed multipart body", status: 400)
    public static let documentTooLarge = ProblemType(slug: "document-too-large", title: "Message larger than the document limit", status: 413)
    public static let depthExceeded = ProblemType(slug: "depth-exceeded", title: "Message nested too deeply", status: 422)
    public static let documentTooComplex = ProblemType(slug: "document-too-complex", title: "Message exceeds a per-document work limit", status: 422)
    public static let doctypeForbidden = ProblemType(slug: "doctype-forbidden", title: "DOCTYPE declarations are not accepted", status: 422)
    public static let notWellFormed = ProblemType(slug: "not-well-formed", title: "Message is not well-formed XML", status: 422)
    public static let unknownNamespace = ProblemType(slug: "unknown-namespace", title: "No schema for the message's namespace", status: 422)
    public static let schemaInvalid = ProblemType(slug: "schema-invalid", title: "Message does not conform to its schema", status: 422)
    public static let notBusinessMessage = ProblemType(slug: "not-business-message", title: "Not a business message", status: 422)
    public static let messageIDInvalid = ProblemType(slug: "message-id-invalid", title: "Message id missing or invalid", status: 422)
    public static let senderUnresolved = ProblemType(slug: "sender-unresolved", title: "Sender could not be determined", status: 422)
    public static let recipientUnresolved = ProblemType(slug: "recipient-unresolved", title: "No usable recipient", status: 422)
    public static let unknownRecipient = ProblemType(slug: "unknown-recipient", title: "Recipient is not a participant", status: 422)
    public static let recipientAmbiguous = ProblemType(slug: "recipient-ambiguous", title: "Recipient is ambiguous", status: 422)
    public static let senderMismatch = ProblemType(slug: "sender-mismatch", title: "Message sender is not the path ISPB", status: 403)
    public static let backlogFull = ProblemType(slug: "recipient-backlog-full", title: "Recipient's backlog is over its limit", status: 429)
    public static let commitQueueFull = ProblemType(slug: "commit-queue-full", title: "Storage commit queue is over its limit", status: 429)
    public static let storageUnavailable = ProblemType(slug: "storage-unavailable", title: "Storage cannot accept writes", status: 503)
    // API: pull path
    public static let unknownPointer = ProblemType(slug: "unknown-pointer", title: "Unknown or forged pull pointer", status: 404)
    public static let streamGone = ProblemType(slug: "stream-gone", title: "Stream already closed", status: 410)
    public static let slotsExhausted = ProblemType(slug: "slots-exhausted", title: "All thread slots of this ISPB are in use", status: 429)
    public static let rateLimited = ProblemType(slug: "rate-limited", title: "Request rate of this ISPB is over its limit", status: 429)

    /// Every problem type the server can return: the one catalog (docs/errors.md mirrors it).
    public static let all: [ProblemType] = [
        .badRequest, .headerNotAllowed, .lengthRequired, .bodyTooLarge, .uriTooLong, .headersTooLarge,
        .requestTimeout, .notImplemented, .versionNotSupported, .notFound, .methodNotAllowed,
        .unsupportedMediaType, .notAcceptable, .shuttingDown, .internalError,
        .invalidISPB, .forbiddenISPB,
        .invalidEncoding, .tooManyParts, .malformedMultipart, .documentTooLarge, .depthExceeded, .documentTooComplex, .doctypeForbidden,
        .notWellFormed, .unknownNamespace, .schemaInvalid, .notBusinessMessage, .messageIDInvalid,
        .senderUnresolved, .recipientUnresolved, .unknownRecipient, .recipientAmbiguous, .senderMismatch, .backlogFull,
        .commitQueueFull, .storageUnavailable,
        .unknownPointer, .streamGone, .slotsExhausted, .rateLimited,
    ]

    public static func bySlug(_ slug: String) -> ProblemType? { all.first { $0.slug == slug } }
}

/// An RFC 7807 problem, rendered as `application/problem+xml` (RFC 7807 Appendix A).
public struct Problem: Sendable, Error {
    public var type: ProblemType
    public var detail: String
    public var instance: String?
    /// Extension members (element name, text), e.g. the failing part of a multipart request.
    public var extensions: [(String, String)]

    public init(_ type: ProblemType, detail: String, instance: String? = nil, extensions: [(String, String)] = []) {
        self.type = type
        self.detail = detail
        self.instance = instance
        self.extensions = extensions
    }

    public var status: Int { type.status }

    public static let contentType = "application/problem+xml"

    /// The `<problem>` element without the XML declaration (for embedding in multipart replies).
    public var xmlElement: String {
        var s = "<problem xmlns=\"urn:ietf:rfc:7807\">"
        s += "<type>\(type.uri)</type>"
        s += "<title>\(XMLText.escape(type.title))</title>"
        s += "<status>\(type.status)</status>"
        s += "<detail>\(XMLText.escape(detail))</detail>"
        if let instance { s += "<instance>\(XMLText.escape(instance))</instance>" }
        for (name, value) in extensions {
            s += "<\(name)>\(XMLText.escape(value))</\(name)>"
        }
        s += "</problem>"
        return s
    }

    public var xmlDocument: [UInt8] {
        Array(("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + xmlElement + "\n").utf8)
    }
}

public enum XMLText {
    /// Escapes text content; control characters other than tab/newline are dropped and the
    /// result is capped, so that hostile input never reaches a response verbatim at length.
    public static func escape(_ s: String, maxBytes: Int = 1024) -> String {
        var out = ""
        out.reserveCapacity(min(s.utf8.count, maxBytes) + 16)
        var bytes = 0
        for scalar in s.unicodeScalars {
            if bytes >= maxBytes {
                out += "…"
                break
            }
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\t", "\n": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (scalar.value >= 0x80 && scalar.value < 0xA0) {
                    continue
                }
                out.unicodeScalars.append(scalar)
            }
            bytes += scalar.utf8.count
        }
        return out
    }
}
