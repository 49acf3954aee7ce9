import CLibXML2

/// Validates one message at a time: hardened parse, schema validation by root namespace, then
/// routing facts. Not thread-safe: use one per thread (see `ThreadLocalValidators`). The
/// compiled schemas are shared through the registry; the parser and validation contexts are
/// this validator's own and are reused from message to message.
public final class Validator {
    public let registry: SchemaRegistry
    public let directory: ParticipantDirectory
    public let hubISPB: String

    private let limits: ValidationLimits
    private let router: Router
    private let capture = ErrorCapture()
    private let parseGuard: UnsafeMutablePointer<ParseGuard>
    private var parser: xmlParserCtxtPtr
    /// One validation context per compiled schema, created on first use.
    private var validationContexts: [xmlSchemaValidCtxtPtr?]
    private let metrics = ValidationMetrics()

    /// No network, no entity substitution, no DTD loading or defaulting; compact text nodes;
    /// line numbers beyond 65535 kept for error reports.
    static let parseOptions = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_COMPACT.rawValue | XML_PARSE_BIG_LINES.rawValue)

    /// - Parameter hubISPB: the hub's own ISPB; a message addressed to it goes to its creditor agent.
    public init(registry: SchemaRegistry, directory: ParticipantDirectory, hubISPB: String = "99999010") {
        precondition(ParticipantDirectory.isISPB(hubISPB), "hubISPB must be 8 digits")
        LibXML2.initialize()
        self.registry = registry
        self.directory = directory
        self.hubISPB = hubISPB
        limits = registry.limits
        router = Router(directory: directory, hubISPB: hubISPB, limits: registry.limits)
        parseGuard = .allocate(capacity: 1)
        parseGuard.initialize(to: ParseGuard(depthMax: Int32(registry.limits.depthMax)))
        parser = Validator.makeParser(parseGuard)
        validationContexts = Array(repeating: nil, count: registry.schemas.count)
    }

    deinit {
        for case let context? in validationContexts { xmlSchemaFreeValidCtxt(context) }
        xmlFreeParserCtxt(parser)
        parseGuard.deinitialize(count: 1)
        parseGuard.deallocate()
    }

    /// Validates one message's bytes. Never throws, never traps on input. `cpuMillisecondsMax`
    /// overrides the registry's `ValidationLimits.cpuMillisecondsMax` (the server's
    /// `--validation-cpu-ms-max`).
    public func validate(_ bytes: UnsafeRawBufferPointer, cpuMillisecondsMax: Int? = nil) -> ValidationOutcome {
        let started = ValidationMetrics.monotonicNanoseconds()
        let outcome = check(bytes, cpuMillisecondsMax: max(1, cpuMillisecondsMax ?? limits.cpuMillisecondsMax))
        metrics.record(outcome, nanoseconds: ValidationMetrics.monotonicNanoseconds() - started)
        return outcome
    }

    /// Convenience for byte arrays.
    public func validate(_ bytes: [UInt8], cpuMillisecondsMax: Int? = nil) -> ValidationOutcome {
        bytes.withUnsafeBytes { validate($0, cpuMillisecondsMax: cpuMillisecondsMax) }
    }

    // MARK: - parse

    private func check(_ bytes: UnsafeRawBufferPointer, cpuMillisecondsMax: Int) -> ValidationOutcome {
        guard bytes.count <= limits.documentBytesMax else {
            return reject(.documentTooLarge, "document is \(bytes.count) bytes; the limit is \(limits.documentBytesMax)")
        }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return reject(.notWellFormed, "empty document") }
        // Encoding and per-document work bounds, linear, before libxml2 (whose attribute and
        // namespace duplicate checks are quadratic) reads a byte.
        if let refusal = DocumentPreScan.scan(bytes, limits: limits) {
            if let limit = refusal.limit { metrics.refused(limit) }
            return reject(refusal.code, refusal.detail, line: refusal.line)
        }
        capture.reset()
        parseGuard.pointee.reset(deadlineNs: ValidationMetrics.threadCPUNanoseconds() + Int64(cpuMillisecondsMax) * 1_000_000)
        return ErrorCapture.installed(capture) {
            let doc = xmlCtxtReadMemory(parser, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count),
                                        nil, nil, Validator.parseOptions)
            defer {
                if let doc { xmlFreeDoc(doc) }
                recycleParserIfNeeded()
            }
            switch parseGuard.pointee.violation {
            case .doctype:
                return reject(.doctypeForbidden, "DOCTYPE declarations are not accepted", line: parseGuard.pointee.lineIfKnown)
            case .depth:
                return reject(.depthExceeded, "elements nest deeper than \(limits.depthMax) levels", line: parseGuard.pointee.lineIfKnown)
            case .deadline:
                return overDeadline(cpuMillisecondsMax, line: parseGuard.pointee.lineIfKnown)
            case .none:
                break
            }
            // A parse failure is invalid whatever else libxml2 says: no document, a lost
            // well-formedness or namespace flag, or any error-level report.
            guard let doc, parser.pointee.wellFormed != 0, parser.pointee.nsWellFormed != 0, capture.errorCount == 0 else {
                return reject(.notWellFormed, "parser error: " + capture.detail(limits: limits, fallback: "not well-formed XML"),
                              line: capture.firstLine)
            }
            guard let root = xmlDocGetRootElement(doc) else { return reject(.notWellFormed, "no root element") }
            if parseGuard.pointee.pastDeadline() { return overDeadline(cpuMillisecondsMax, line: nil) }
            let outcome = classify(doc, root)
            // Schema validation cannot be interrupted; a document that needed more than the
            // budget for it is refused all the same, so the cost is never worth repeating.
            if parseGuard.pointee.pastDeadline() { return overDeadline(cpuMillisecondsMax, line: nil) }
            return outcome
        }
    }

    /// Replaces the reused parser context once its name dictionary has grown past the limit
    /// (libxml2 interns names and short strings there), so hostile input cannot grow it forever.
    private func recycleParserIfNeeded() {
        guard let dict = parser.pointee.dict, Int(xmlDictSize(dict)) > limits.parserDictEntriesMax else { return }
        xmlFreeParserCtxt(parser)
        parser = Validator.makeParser(parseGuard)
    }

    /// Entries in the reused parser's name dictionary (for tests of the recycling bound).
    var parserDictionaryEntries: Int { parser.pointee.dict.map { Int(xmlDictSize($0)) } ?? 0 }

    // MARK: - forms

    private func classify(_ doc: xmlDocPtr, _ root: XMLTree.Node) -> ValidationOutcome {
        let rootNamespace = XMLTree.namespace(root)
        if let rootNamespace, let index = registry.schemaIndex(forNamespace: rootNamespace) {
            if let rejection = validateSchema(index, doc: doc, element: nil) { return .rejected(rejection) }
            return classifyRegistered(root, namespace: rootNamespace)
        }
        // Unregistered root: a business-message wrapper (G3), or an unknown namespace.
        let shown = rootNamespace.map { "'\($0)'" } ?? "(none)"
        if XMLTree.isNamed(root, "Document") || XMLTree.isNamed(root, "AppHdr") {
            return reject(.unknownNamespace, "no schema for root namespace \(shown)")
        }
        var headers: [XMLTree.Node] = []
        var documents: [XMLTree.Node] = []
        var pending = Array(XMLTree.elements(of: root))
        var visited = 0
        while let element = pending.popLast() {
            visited += 1
            if visited > limits.wrapperElementsMax { break }
            if XMLTree.isNamed(element, "AppHdr") { headers.append(element) }
            else if XMLTree.isNamed(element, "Document") { documents.append(element) }
            else { pending.append(contentsOf: XMLTree.elements(of: element)) }
        }
        if headers.isEmpty && documents.isEmpty {
            return reject(.unknownNamespace, "no schema for root namespace \(shown)")
        }
        guard headers.count == 1, documents.count == 1 else {
            return reject(.notBusinessMessage, "a wrapper must hold exactly one AppHdr and one Document; found \(headers.count) and \(documents.count)")
        }
        let header = headers[0], document = documents[0]
        for (part, name) in [(header, "AppHdr"), (document, "Document")] {
            guard let namespace = XMLTree.namespace(part), let index = registry.schemaIndex(forNamespace: namespace) else {
                let partShown = XMLTree.namespace(part).map { "'\($0)'" } ?? "(none)"
                return reject(.unknownNamespace, "no schema for \(name) namespace \(partShown)")
            }
            if let rejection = validateSchema(index, doc: doc, element: part) { return .rejected(rejection) }
        }
        return router.route(appHdr: header, document: document, namespace: XMLTree.namespace(document)!, messageIdFromAppHdr: false)
    }

    /// Root in a registered namespace, already schema-valid: an SPI envelope, a bare Document,
    /// or something that is not a business message.
    private func classifyRegistered(_ root: XMLTree.Node, namespace: String) -> ValidationOutcome {
        if XMLTree.isNamed(root, "Document") {
            return router.route(appHdr: nil, document: root, namespace: namespace, messageIdFromAppHdr: false)
        }
        if XMLTree.isNamed(root, "Envelope"), let header = XMLTree.child(root, "AppHdr"), let document = XMLTree.child(root, "Document") {
            let spi = XMLTree.namespace(header) == namespace && XMLTree.namespace(document) == namespace
            return router.route(appHdr: header, document: document, namespace: XMLTree.namespace(document) ?? namespace,
                                messageIdFromAppHdr: spi)
        }
        if XMLTree.isNamed(root, "AppHdr") {
            return reject(.notBusinessMessage, "an AppHdr without a Document is not a business message")
        }
        return reject(.notBusinessMessage, "root element '\(XMLTree.localName(root))' is not a business message")
    }

    /// Validates the whole document (`element` nil) or one subtree against a compiled schema.
    private func validateSchema(_ index: Int, doc: xmlDocPtr, element: XMLTree.Node?) -> Rejection? {
        let context = validationContext(index)
        capture.reset()
        let result = if let element { xmlSchemaValidateOneElement(context, element) } else { xmlSchemaValidateDoc(context, doc) }
        guard result != 0 || capture.errorCount > 0 else { return nil }
        let fallback = result < 0 ? "internal validation error" : "schema-invalid (libxml2 code \(result))"
        return Rejection(code: .schemaInvalid, detail: capture.detail(limits: limits, fallback: fallback), line: capture.firstLine)
    }

    private func validationContext(_ index: Int) -> xmlSchemaValidCtxtPtr {
        if let context = validationContexts[index] { return context }
        guard let context = xmlSchemaNewValidCtxt(registry.schemas[index].pointer) else { fatalError("xmlSchemaNewValidCtxt: out of memory") }
        xmlSchemaSetValidStructuredErrors(context, ErrorCapture.errorHandler, capture.opaque)
        validationContexts[index] = context
        return context
    }

    private func overDeadline(_ cpuMillisecondsMax: Int, line: Int?) -> ValidationOutcome {
        metrics.refused(.cpuTime)
        return reject(.documentTooComplex, "validation took more than \(cpuMillisecondsMax) ms of CPU time", line: line)
    }

    private func reject(_ code: RejectCode, _ detail: String, line: Int? = nil) -> ValidationOutcome {
        .rejected(Rejection(code: code, detail: DetailSanitizer.sanitize(detail.utf8, bytesMax: limits.detailBytesMax,
                                                                        quotedBytesMax: limits.detailQuotedBytesMax), line: line))
    }

    // MARK: - parser context with the DOCTYPE and depth guards

    private static func makeParser(_ parseGuard: UnsafeMutablePointer<ParseGuard>) -> xmlParserCtxtPtr {
        guard let parser = xmlNewParserCtxt(), let sax = parser.pointee.sax else { fatalError("xmlNewParserCtxt: out of memory") }
        parser.pointee._private = UnsafeMutableRawPointer(parseGuard)
        sax.pointee.internalSubset = Validator.refuseDoctype
        sax.pointee.startElementNs = Validator.startElementWithinDepth
        return parser
    }

    /// Any DOCTYPE stops the parse before a single declaration of it is read.
    private static let refuseDoctype: internalSubsetSAXFunc = { context, _, _, _ in
        guard let context else { return }
        let parser = context.assumingMemoryBound(to: xmlParserCtxt.self)
        let parseGuard = parser.pointee._private.assumingMemoryBound(to: ParseGuard.self)
        parseGuard.pointee.stop(.doctype, line: xmlSAX2GetLineNumber(context))
        xmlStopParser(parser)
    }

    /// Stops the parse at the first element deeper than `depthMax` (nameNr counts open ancestors).
    private static let startElementWithinDepth: startElementNsSAX2Func = {
        context, localName, prefix, uri, namespaceCount, namespaces, attributeCount, defaultedCount, attributes in
        guard let context else { return }
        let parser = context.assumingMemoryBound(to: xmlParserCtxt.self)
        let parseGuard = parser.pointee._private.assumingMemoryBound(to: ParseGuard.self)
        if parser.pointee.nameNr >= parseGuard.pointee.depthMax {
            parseGuard.pointee.stop(.depth, line: xmlSAX2GetLineNumber(context))
            xmlStopParser(parser)
            return
        }
        if parseGuard.pointee.countElementPastDeadline() {
            parseGuard.pointee.stop(.deadline, line: xmlSAX2GetLineNumber(context))
            xmlStopParser(parser)
            return
        }
        xmlSAX2StartElementNs(context, localName, prefix, uri, namespaceCount, namespaces, attributeCount, defaultedCount, attributes)
    }
}

/// State the SAX guards share with the validator through `xmlParserCtxt._private`.
struct ParseGuard {
    enum Violation { case none, doctype, depth, deadline }
    let depthMax: Int32
    var violation = Violation.none
    var line: Int32 = 0
    /// Thread CPU time (CLOCK_THREAD_CPUTIME_ID) at which this document's budget ends.
    var deadlineNs: Int64 = .max
    var elements = 0

    init(depthMax: Int32) { self.depthMax = depthMax }

    mutating func reset(deadlineNs: Int64) {
        violation = .none
        line = 0
        elements = 0
        self.deadlineNs = deadlineNs
    }

    /// Counts one element; reads the clock every `ValidationLimits.deadlineCheckElements`.
    mutating func countElementPastDeadline() -> Bool {
        elements += 1
        return elements % ValidationLimits.deadlineCheckElements == 0 && pastDeadline()
    }

    func pastDeadline() -> Bool { ValidationMetrics.threadCPUNanoseconds() > deadlineNs }

    mutating func stop(_ violation: Violation, line: Int32) {
        if self.violation == .none {
            self.violation = violation
            self.line = line
        }
    }

    var lineIfKnown: Int? { line > 0 ? Int(line) : nil }
}
