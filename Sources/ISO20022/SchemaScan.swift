import CLibXML2
import Glibc

/// What a schema document declares about namespaces, read before compiling it: its
/// targetNamespace and the schemas it pulls in (xs:import, xs:include, xs:redefine).
struct SchemaScan {
    struct Reference {
        /// The xs:import namespace attribute (nil for include/redefine, or an import without one).
        let namespace: String?
        /// The resolved local real path, or nil when the location is absent or not a local file.
        let path: String?
        let isImport: Bool
    }

    let targetNamespace: String?
    let references: [Reference]

    static let xsdNamespace = "http://www.w3.org/2001/XMLSchema"

    /// Scans schema bytes. `directory` resolves relative schemaLocations (nil for in-memory schemas).
    static func scan(_ bytes: [UInt8], name: String, directory: String?) throws -> SchemaScan {
        LibXML2.initialize()
        let capture = ErrorCapture()
        let doc: UnsafeMutablePointer<xmlDoc>? = ErrorCapture.installed(capture) {
            bytes.withUnsafeBufferPointer { buffer in
                buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                    xmlReadMemory($0, Int32(buffer.count), name, nil, Int32(XML_PARSE_NONET.rawValue))
                }
            }
        }
        guard let doc else {
            let detail = capture.detail(limits: ValidationLimits(), fallback: "not well-formed")
            throw SchemaRegistryError("schema \(name) is not well-formed XML: \(detail)")
        }
        defer { xmlFreeDoc(doc) }
        guard let root = xmlDocGetRootElement(doc), XMLTree.isNamed(root, "schema"),
              XMLTree.namespace(root) == xsdNamespace else {
            throw SchemaRegistryError("schema \(name) has no xs:schema root element")
        }
        var references: [Reference] = []
        for element in XMLTree.elements(of: root) where XMLTree.namespace(element) == xsdNamespace {
            let isImport = XMLTree.isNamed(element, "import")
            guard isImport || XMLTree.isNamed(element, "include") || XMLTree.isNamed(element, "redefine") else { continue }
            let location = XMLTree.attribute(element, "schemaLocation")
            references.append(Reference(
                namespace: isImport ? XMLTree.attribute(element, "namespace") : nil,
                path: location.flatMap { resolve($0, directory: directory) },
                isImport: isImport))
        }
        return SchemaScan(targetNamespace: XMLTree.attribute(root, "targetNamespace"), references: references)
    }

    /// Resolves a schemaLocation to a local real path; nil for network URLs or missing files.
    static func resolve(_ location: String, directory: String?) -> String? {
        guard let path = EntityLoader.localPath(location) else { return nil }
        if path.hasPrefix("/") { return EntityLoader.realPath(path) }
        guard let directory else { return nil }
        return EntityLoader.realPath(directory + "/" + path)
    }

    /// Directory part of a path ("." when there is none).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// Reads a whole file, refusing files larger than `bytesMax`.
func readFile(_ path: String, bytesMax: Int) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SchemaRegistryError("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw SchemaRegistryError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        if n == 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
        if bytes.count > bytesMax { throw SchemaRegistryError("\(path) is larger than \(bytesMax) bytes") }
    }
    return bytes
}
