/// Every limit the validator enforces, named with its unit, with defaults measured on the
/// fixtures in `shared/fixtures/iso20022` (see docs/iso20022.md for the table).
public struct ValidationLimits: Sendable, Equatable {
    /// Largest document accepted, checked before any parsing. Default 4 MiB: the largest
    /// fixture (a 1000-transaction pacs.008) is 2.6 MB; SPI messages are at most ~31 KB.
    public var documentBytesMax: Int
    /// Deepest element nesting accepted (the root element is depth 1). Default 32: the deepest
    /// fixture (the FedNow wrapper) nests 12 levels; libxml2's own hard limit is 256.
    public var depthMax: Int
    /// Longest rejection detail returned, after sanitizing. Default 512 bytes.
    public var detailBytesMax: Int
    /// Longest single-quoted run (an element name or an echoed value) kept in a detail; longer
    /// runs are cut and marked with "...". Default 96 bytes, so input never leaks in bulk.
    public var detailQuotedBytesMax: Int
    /// Longest message id accepted (ISO Max35Text). Default 35 bytes.
    public var messageIdBytesMax: Int
    /// Elements visited while looking for the AppHdr and Document inside an unregistered
    /// wrapper root. Default 256; the FedNow wrapper needs 3.
    public var wrapperElementsMax: Int
    /// Names interned in a validator's reused parser dictionary before the parser context is
    /// replaced, bounding per-thread memory under hostile input. Default 20,000.
    public var parserDictEntriesMax: Int

    // Per-document work bounds, enforced by a linear pre-scan (`DocumentPreScan`) before libxml2
    // sees the document: libxml2 2.9 checks attribute and namespace duplicates pairwise, so
    // 200,000 attributes on one element cost it minutes of CPU. Largest values in the fixtures:
    // 3 attributes on one element, 2 namespace declarations on one element, 4 in a document,
    // a 140-byte text node, a 57-byte attribute value.

    /// Attributes (namespace declarations included) on one element. Default 64.
    public var attributesPerElementMax: Int
    /// Namespace declarations (`xmlns`, `xmlns:p`) on one element. Default 16.
    public var namespaceDeclarationsPerElementMax: Int
    /// Namespace declarations in the whole document. Default 256.
    public var namespaceDeclarationsPerDocumentMax: Int
    /// Bytes of one attribute value, as written (before entity decoding). Default 4 KiB.
    public var attributeValueBytesMax: Int
    /// Bytes of one run of character data between two tags (CDATA sections included, comments
    /// and processing instructions not), as written. Default 256 KiB: an XMLDSig certificate
    /// chain in base64 is a few KiB.
    public var textBytesMax: Int
    /// Thread CPU time one document may take through parsing and schema validation, checked
    /// every `deadlineCheckElements` elements while parsing and between the stages. Default
    /// 2000 ms: the 2.6 MB 1000-transaction fixture takes about 100 ms. A backstop for costs the
    /// pre-scan does not model; CPU time, not wall time, so a loaded machine does not refuse
    /// valid messages.
    public var cpuMillisecondsMax: Int

    /// Elements parsed between two checks of the CPU deadline (one `clock_gettime` each).
    public static let deadlineCheckElements = 256

    public init(
        documentBytesMax: Int = 4 * 1024 * 1024,
        depthMax: Int = 32,
        detailBytesMax: Int = 512,
        detailQuotedBytesMax: Int = 96,
        messageIdBytesMax: Int = 35,
        wrapperElementsMax: Int = 256,
        parserDictEntriesMax: Int = 20_000,
        attributesPerElementMax: Int = 64,
        namespaceDeclarationsPerElementMax: Int = 16,
        namespaceDeclarationsPerDocumentMax: Int = 256,
        attributeValueBytesMax: Int = 4 * 1024,
        textBytesMax: Int = 256 * 1024,
        cpuMillisecondsMax: Int = 2_000
    ) {
        precondition(documentBytesMax > 0 && documentBytesMax <= Int(Int32.max), "documentBytesMax out of range")
        precondition(depthMax >= 2 && depthMax <= 256, "depthMax must be in 2...256 (libxml2 stops at 256)")
        precondition(detailBytesMax >= 64, "detailBytesMax too small to be useful")
        precondition(detailQuotedBytesMax >= 8 && detailQuotedBytesMax <= detailBytesMax, "detailQuotedBytesMax out of range")
        precondition(messageIdBytesMax >= 1, "messageIdBytesMax must be positive")
        precondition(wrapperElementsMax >= 1, "wrapperElementsMax must be positive")
        precondition(parserDictEntriesMax >= 1_000, "parserDictEntriesMax too small")
        self.documentBytesMax = documentBytesMax
        self.depthMax = depthMax
        self.detailBytesMax = detailBytesMax
        self.detailQuotedBytesMax = detailQuotedBytesMax
        self.messageIdBytesMax = messageIdBytesMax
        self.wrapperElementsMax = wrapperElementsMax
        self.parserDictEntriesMax = parserDictEntriesMax
        precondition(attributesPerElementMax >= 1, "attributesPerElementMax must be positive")
        precondition(namespaceDeclarationsPerElementMax >= 1 && namespaceDeclarationsPerElementMax <= attributesPerElementMax,
                     "namespaceDeclarationsPerElementMax out of range")
        precondition(namespaceDeclarationsPerDocumentMax >= namespaceDeclarationsPerElementMax,
                     "namespaceDeclarationsPerDocumentMax below the per-element limit")
        precondition(attributeValueBytesMax >= 64, "attributeValueBytesMax too small")
        precondition(textBytesMax >= 1024, "textBytesMax too small")
        precondition(cpuMillisecondsMax >= 1, "cpuMillisecondsMax must be positive")
        self.attributesPerElementMax = attributesPerElementMax
        self.namespaceDeclarationsPerElementMax = namespaceDeclarationsPerElementMax
        self.namespaceDeclarationsPerDocumentMax = namespaceDeclarationsPerDocumentMax
        self.attributeValueBytesMax = attributeValueBytesMax
        self.textBytesMax = textBytesMax
        self.cpuMillisecondsMax = cpuMillisecondsMax
    }
}
