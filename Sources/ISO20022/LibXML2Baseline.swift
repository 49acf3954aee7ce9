import CLibXML2

/// The reference the send path is measured against: libxml2 alone, `xmlReadMemory` followed by
/// `xmlSchemaValidateDoc` against a schema compiled once, with nothing else (no hardening
/// callbacks, no routing). One instance per thread; share the `SchemaRegistry`.
public final class LibXML2Baseline {
    private let registry: SchemaRegistry
    private let context: xmlSchemaValidCtxtPtr
    private let capture = ErrorCapture()

    /// Validates against the schema that the registry maps `namespace` to.
    public init(registry: SchemaRegistry, namespace: String) throws {
        guard let index = registry.schemaIndex(forNamespace: namespace) else {
            throw SchemaRegistryError("no schema for namespace \(namespace)")
        }
        guard let context = xmlSchemaNewValidCtxt(registry.schemas[index].pointer) else { fatalError("xmlSchemaNewValidCtxt: out of memory") }
        self.registry = registry
        self.context = context
        xmlSchemaSetValidStructuredErrors(context, ErrorCapture.errorHandler, capture.opaque)
    }

    deinit { xmlSchemaFreeValidCtxt(context) }

    /// Parses and validates; true when well-formed and valid.
    public func parseAndValidate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return false }
        return ErrorCapture.installed(capture) {
            guard let doc = xmlReadMemory(base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), nil, nil,
                                          Int32(XML_PARSE_NONET.rawValue)) else { return false }
            defer { xmlFreeDoc(doc) }
            return xmlSchemaValidateDoc(context, doc) == 0
        }
    }
}
