import CLibXML2

/// A startup error of the schema registry; `reason` is one line naming the file at fault.
public struct SchemaRegistryError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// One compiled XSD, shared read-only by every thread's validation contexts.
final class CompiledSchema: @unchecked Sendable {
    /// The configured path, or "shipped:<name>" for an embedded schema.
    let name: String
    let pointer: xmlSchemaPtr

    init(name: String, pointer: xmlSchemaPtr) {
        self.name = name
        self.pointer = pointer
    }

    deinit { xmlSchemaFree(pointer) }
}

/// Every configured XSD compiled once, and the map from a root namespace to the schema that
/// validates it. Immutable after `init`; share one registry between all threads.
///
/// A schema covers its targetNamespace and the namespaces it imports, so a driver XSD without
/// a targetNamespace (two xs:imports) covers both. Two schemas claiming one namespace is a
/// startup error, except when every claim is an import of the same file (two signed-SPI
/// drivers both importing the XMLDSig schema): then the first schema serves that namespace.
public final class SchemaRegistry: Sendable {
    public let limits: ValidationLimits
    let schemas: [CompiledSchema]
    private let schemaByNamespace: [String: Int]

    /// Largest schema file read.
    static let schemaBytesMax = 16 * 1024 * 1024
    /// Most schema files followed through xs:import / xs:include from the configured ones.
    static let schemaFilesMax = 64

    /// Compiles every file (xmlSchemaParse). Throws a one-line reason when a file is missing,
    /// fails to compile, tries to load anything outside the schema directories, or when two
    /// schemas claim the same namespace.
    public convenience init(schemaFiles: [String], limits: ValidationLimits = ValidationLimits()) throws {
        try self.init(sources: schemaFiles.map { .file($0) }, limits: limits)
    }

    /// The project's own SPI pacs.008 1.16 profile (embedded; see docs/iso20022.md).
    public static func shipped(limits: ValidationLimits = ValidationLimits()) throws -> SchemaRegistry {
        try SchemaRegistry(sources: [.memory(name: ShippedSchema.name, text: ShippedSchema.pacs008SPI116)], limits: limits)
    }

    /// Namespaces with a schema, sorted.
    public var namespaces: [String] { schemaByNamespace.keys.sorted() }

    /// The schema (configured path, or "shipped:<name>") that validates `namespace`.
    public func schemaName(forNamespace namespace: String) -> String? {
        schemaByNamespace[namespace].map { schemas[$0].name }
    }

    func schemaIndex(forNamespace namespace: String) -> Int? { schemaByNamespace[namespace] }

    enum Source {
        case file(String)
        case memory(name: String, text: String)
    }

    private struct Configured {
        let name: String
        let realPath: String?
        let bytes: [UInt8]
        let scan: SchemaScan
    }

    fileprivate enum ClaimKind: Equatable {
        case target
        case imported(path: String?)
    }

    init(sources: [Source], limits: ValidationLimits) throws {
        guard !sources.isEmpty else { throw SchemaRegistryError("no schema configured") }
        LibXML2.initialize()

        // 1. Read and scan every configured schema; collect the directories of the schema set.
        var configured: [Configured] = []
        var directories: [String] = []
        var pending: [String] = []
        for source in sources {
            switch source {
            case .file(let path):
                guard let real = EntityLoader.realPath(path) else { throw SchemaRegistryError("schema \(path) does not exist") }
                if let other = configured.first(where: { $0.realPath == real }) {
                    throw SchemaRegistryError("schema \(path) is configured twice (also as \(other.name))")
                }
                let bytes = try readFile(real, bytesMax: SchemaRegistry.schemaBytesMax)
                let scan = try SchemaScan.scan(bytes, name: path, directory: SchemaScan.directory(of: real))
                configured.append(Configured(name: path, realPath: real, bytes: bytes, scan: scan))
                directories.append(SchemaScan.directory(of: real))
                pending.append(contentsOf: scan.references.compactMap(\.path))
            case .memory(let name, let text):
                let bytes = Array(text.utf8)
                let scan = try SchemaScan.scan(bytes, name: name, directory: nil)
                guard scan.references.isEmpty else { throw SchemaRegistryError("embedded schema \(name) must not import or include") }
                configured.append(Configured(name: "shipped:\(name)", realPath: nil, bytes: bytes, scan: scan))
            }
        }
        var visited = Set(configured.compactMap(\.realPath))
        while let path = pending.popLast() {
            guard visited.insert(path).inserted else { continue }
            guard visited.count <= SchemaRegistry.schemaFilesMax else {
                throw SchemaRegistryError("more than \(SchemaRegistry.schemaFilesMax) schema files are referenced")
            }
            let directory = SchemaScan.directory(of: path)
            directories.append(directory)
            let scan = try SchemaScan.scan(try readFile(path, bytesMax: SchemaRegistry.schemaBytesMax), name: path, directory: directory)
            pending.append(contentsOf: scan.references.compactMap(\.path))
        }
        let allowed = Array(Set(directories.map { $0.hasSuffix("/") ? $0 : $0 + "/" })).sorted()

        // 2. Namespace claims.
        var claimOrder: [String] = []
        var claims: [String: [(schema: Int, kind: ClaimKind)]] = [:]
        func claim(_ namespace: String, _ schema: Int, _ kind: ClaimKind) {
            if claims[namespace] == nil { claimOrder.append(namespace) }
            claims[namespace, default: []].append((schema, kind))
        }
        for (index, schema) in configured.enumerated() {
            if let target = schema.scan.targetNamespace { claim(target, index, .target) }
            for reference in schema.scan.references where reference.isImport {
                if let namespace = reference.namespace { claim(namespace, index, .imported(path: reference.path)) }
            }
        }
        var schemaByNamespace: [String: Int] = [:]
        for namespace in claimOrder {
            let list = claims[namespace]!
            let schemasClaiming = Array(Set(list.map(\.schema))).sorted()
            if schemasClaiming.count > 1 {
                let firstPath = list[0].kind.importedPath
                let shared = firstPath != nil && list.allSatisfy { $0.kind.importedPath == firstPath }
                guard shared else {
                    throw SchemaRegistryError("namespace \(namespace) is claimed by both \(configured[schemasClaiming[0]].name) and \(configured[schemasClaiming[1]].name)")
                }
            }
            schemaByNamespace[namespace] = schemasClaiming[0]
        }
        guard !schemaByNamespace.isEmpty else { throw SchemaRegistryError("the configured schemas declare no namespace") }

        // 3. Compile, each with loads admitted only from the schema set's directories.
        var compiled: [CompiledSchema] = []
        for schema in configured {
            let (result, refused) = EntityLoader.compiling(allowedDirectories: allowed) {
                Result { try SchemaRegistry.compile(schema.name, realPath: schema.realPath, bytes: schema.bytes, limits: limits) }
            }
            // Own the compiled schema before deciding, so every exit frees it.
            let owned = result.map { CompiledSchema(name: schema.name, pointer: $0) }
            if let url = refused.first {
                throw SchemaRegistryError("schema \(schema.name) tried to load \(DetailSanitizer.excerpt(url, bytesMax: 200)), outside the schema directories (refused)")
            }
            compiled.append(try owned.get())
        }
        self.limits = limits
        self.schemas = compiled
        self.schemaByNamespace = schemaByNamespace
    }

    private static func compile(_ name: String, realPath: String?, bytes: [UInt8], limits: ValidationLimits) throws -> xmlSchemaPtr {
        let capture = ErrorCapture()
        let schema: xmlSchemaPtr? = ErrorCapture.installed(capture) {
            let parser: xmlSchemaParserCtxtPtr? = if let realPath {
                xmlSchemaNewParserCtxt(realPath)
            } else {
                bytes.withUnsafeBufferPointer { buffer in
                    buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                        xmlSchemaNewMemParserCtxt($0, Int32(buffer.count))
                    }
                }
            }
            guard let parser else { return nil }
            defer { xmlSchemaFreeParserCtxt(parser) }
            xmlSchemaSetParserStructuredErrors(parser, ErrorCapture.errorHandler, capture.opaque)
            return xmlSchemaParse(parser)
        }
        guard let schema else {
            let detail = capture.detail(limits: limits, fallback: "xmlSchemaParse failed")
            let line = capture.firstLine.map { " (line \($0))" } ?? ""
            throw SchemaRegistryError("schema \(name) failed to compile\(line): \(detail)")
        }
        return schema
    }
}

fileprivate extension SchemaRegistry.ClaimKind {
    var importedPath: String? {
        if case .imported(let path) = self { return path }
        return nil
    }
}
