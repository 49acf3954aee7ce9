/// Maps (method, path) to a route value. Patterns are literal segments and `{name}`
/// parameters, e.g. `/api/v1/out/{ispb}/stream/{token}`; a parameter matches one non-empty
/// segment. Literal segments win over parameters at the same position.
public struct Router<Route> {
    fileprivate struct Entry {
        let method: HTTPMethod
        let segments: [Segment]
        let route: Route
    }

    fileprivate enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
    }

    public enum Match {
        case found(Route, RouteParameters)
        /// The path exists for other methods.
        case methodNotAllowed([HTTPMethod])
        case notFound
    }

    private var entries: [Entry] = []

    public init() {}

    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ route: Route) {
        precondition(pattern.hasPrefix("/"), "route patterns start with /")
        let segments: [Segment] = pattern.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
            if $0.hasPrefix("{") && $0.hasSuffix("}") { return .parameter(String($0.dropFirst().dropLast())) }
            return .literal(String($0))
        }
        entries.append(Entry(method: method, segments: segments, route: route))
        // Literal-first order: more literal segments sort earlier.
        entries.sort { a, b in
            a.segments.filter { if case .literal = $0 { true } else { false } }.count >
                b.segments.filter { if case .literal = $0 { true } else { false } }.count
        }
    }

    public func match(method: HTTPMethod, path: Substring) -> Match {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var allowed: [HTTPMethod] = []
        for entry in entries where entry.segments.count == parts.count {
            var params = RouteParameters()
            var ok = true
            for (segment, part) in zip(entry.segments, parts) {
                switch segment {
                case .literal(let l):
                    if l != part { ok = false }
                case .parameter(let name):
                    if part.isEmpty { ok = false } else { params.values.append((name, part)) }
                }
                if !ok { break }
            }
            guard ok else { continue }
            if entry.method == method { return .found(entry.route, params) }
            if method == .head && entry.method == .get { return .found(entry.route, params) }
            allowed.append(entry.method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed)
    }
}

/// Path parameters of a matched route, in pattern order.
public struct RouteParameters: Sendable {
    public var values: [(String, Substring)] = []

    public init() {}

    public subscript(_ name: String) -> Substring? {
        values.first { $0.0 == name }?.1
    }
}

extension Router: Sendable where Route: Sendable {}
extension Router.Entry: Sendable where Route: Sendable {}
