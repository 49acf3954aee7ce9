/// Why a message was rejected. The raw values are stable: they appear in problem details,
/// the quarantine log, the audit log and metric dimensions.
public enum RejectCode: String, Sendable, CaseIterable {
    /// Larger than `ValidationLimits.documentBytesMax`; nothing was parsed.
    case documentTooLarge = "document-too-large"
    /// Nested deeper than `ValidationLimits.depthMax`; parsing stopped there.
    case depthExceeded = "depth-exceeded"
    /// Over a per-document work bound (`ValidationLimits`: attributes or namespace declarations
    /// per element, namespace declarations per document, attribute value or text size, CPU
    /// time); refused by the pre-scan before libxml2 parses, or when the CPU deadline passed.
    case documentTooComplex = "document-too-complex"
    /// The document has a DOCTYPE (any DTD, internal or external); parsing stopped there.
    case doctypeForbidden = "doctype-forbidden"
    /// Not well-formed XML (or not namespace-well-formed), or not UTF-8: another byte order mark,
    /// UTF-16/32 bytes, a declared encoding other than UTF-8 or US-ASCII, invalid UTF-8.
    case notWellFormed = "not-well-formed"
    /// The root namespace (or a wrapped part's namespace) has no registered schema.
    case unknownNamespace = "unknown-namespace"
    /// Well-formed but invalid against the schema of its namespace.
    case schemaInvalid = "schema-invalid"
    /// Schema-valid but not a business message (for example an AppHdr alone).
    case notBusinessMessage = "not-business-message"
    /// The message id (SPI AppHdr/BizMsgIdr, ISO GrpHdr/MsgId) is missing or unusable.
    case messageIdInvalid = "message-id-invalid"
    /// No sender could be determined, or its identifier is not a known participant.
    case senderUnresolved = "sender-unresolved"
    /// No recipient could be determined, or its identifier is not a known participant.
    case recipientUnresolved = "recipient-unresolved"
    /// The recipient is the creditor agent but the transactions name different ones.
    case recipientAmbiguous = "recipient-ambiguous"
    /// The recipient ISPB is not a participant of the closed directory (`--participants`).
    case unknownRecipient = "unknown-recipient"
}

/// A rejected message: a stable code, a sanitized and capped detail (printable ASCII only,
/// never more than a short quoted excerpt of the input), and the line when libxml2 knows it.
public struct Rejection: Sendable, Error, Equatable, CustomStringConvertible {
    public let code: RejectCode
    public let detail: String
    public let line: Int?

    public init(code: RejectCode, detail: String, line: Int? = nil) {
        self.code = code
        self.detail = detail
        self.line = line
    }

    public var description: String {
        if let line { return "\(code.rawValue) (line \(line)): \(detail)" }
        return "\(code.rawValue): \(detail)"
    }
}

/// The routing facts of an accepted message.
public struct MessageInfo: Sendable, Equatable {
    /// 8-digit ISPB of the sender.
    public let senderISPB: String
    /// 8-digit ISPB of the recipient (the creditor agent when the message is addressed to the hub).
    public let recipientISPB: String
    /// SPI `AppHdr/BizMsgIdr`, ISO `GrpHdr/MsgId`: the idempotency key, per sender.
    public let messageId: String
    /// Message type derived from the namespace, e.g. "pacs.008".
    public let messageType: String
    /// Namespace of the business document (the SPI envelope's namespace for SPI messages).
    public let namespace: String

    public init(senderISPB: String, recipientISPB: String, messageId: String, messageType: String, namespace: String) {
        self.senderISPB = senderISPB
        self.recipientISPB = recipientISPB
        self.messageId = messageId
        self.messageType = messageType
        self.namespace = namespace
    }
}

/// The result of validating one message.
public enum ValidationOutcome: Sendable, Equatable {
    case accepted(MessageInfo)
    case rejected(Rejection)

    /// The rejection, when rejected.
    public var rejection: Rejection? {
        if case .rejected(let r) = self { return r }
        return nil
    }

    /// The routing facts, when accepted.
    public var info: MessageInfo? {
        if case .accepted(let i) = self { return i }
        return nil
    }
}
