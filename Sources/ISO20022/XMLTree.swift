import CLibXML2
import Glibc

/// Read-only helpers over a parsed libxml2 tree. Pointers never leave this module.
enum XMLTree {
    typealias Node = UnsafeMutablePointer<xmlNode>

    /// Element children of `node`, in document order.
    static func elements(of node: Node) -> ElementSequence { ElementSequence(first: node.pointee.children) }

    struct ElementSequence: Sequence, IteratorProtocol {
        private var upcoming: Node?
        init(first: Node?) { upcoming = XMLTree.nextElement(from: first) }
        mutating func next() -> Node? {
            guard let current = upcoming else { return nil }
            upcoming = XMLTree.nextElement(from: current.pointee.next)
            return current
        }
    }

    private static func nextElement(from start: Node?) -> Node? {
        var node = start
        while let n = node, n.pointee.type != XML_ELEMENT_NODE { node = n.pointee.next }
        return node
    }

    static func isNamed(_ node: Node, _ localName: String) -> Bool {
        guard let name = node.pointee.name else { return false }
        return name.withMemoryRebound(to: CChar.self, capacity: 1) { strcmp($0, localName) == 0 }
    }

    static func localName(_ node: Node) -> String {
        guard let name = node.pointee.name else { return "" }
        return String(cString: name)
    }

    /// Namespace URI of an element, nil when it has none.
    static func namespace(_ node: Node) -> String? {
        guard let ns = node.pointee.ns, let href = ns.pointee.href else { return nil }
        return String(cString: href)
    }

    static func child(_ node: Node, _ localName: String) -> Node? {
        for element in elements(of: node) where isNamed(element, localName) { return element }
        return nil
    }

    static func children(_ node: Node, _ localName: String) -> [Node] {
        elements(of: node).filter { isNamed($0, localName) }
    }

    /// Follows a path of child local names; nil as soon as one is missing.
    static func descend(_ node: Node?, _ path: [String]) -> Node? {
        var current = node
        for name in path {
            guard let c = current else { return nil }
            current = child(c, name)
        }
        return current
    }

    /// Concatenated text and CDATA children of an element (entities cannot occur: any DOCTYPE is
    /// rejected, and libxml2 substitutes the predefined ones).
    static func text(_ node: Node) -> String {
        var bytes: [UInt8] = []
        var child = node.pointee.children
        while let c = child {
            if c.pointee.type == XML_TEXT_NODE || c.pointee.type == XML_CDATA_SECTION_NODE, let content = c.pointee.content {
                let length = strlen(UnsafeRawPointer(content).assumingMemoryBound(to: CChar.self))
                bytes.append(contentsOf: UnsafeBufferPointer(start: content, count: length))
            }
            child = c.pointee.next
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Value of an un-namespaced attribute.
    static func attribute(_ node: Node, _ name: String) -> String? {
        var attr = node.pointee.properties
        while let a = attr {
            if a.pointee.ns == nil, let aname = a.pointee.name,
               aname.withMemoryRebound(to: CChar.self, capacity: 1, { strcmp($0, name) == 0 }) {
                var bytes: [UInt8] = []
                var child = a.pointee.children
                while let c = child {
                    if let content = c.pointee.content {
                        let length = strlen(UnsafeRawPointer(content).assumingMemoryBound(to: CChar.self))
                        bytes.append(contentsOf: UnsafeBufferPointer(start: content, count: length))
                    }
                    child = c.pointee.next
                }
                return String(decoding: bytes, as: UTF8.self)
            }
            attr = a.pointee.next
        }
        return nil
    }
}
