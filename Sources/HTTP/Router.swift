/// Maps (method, path) to a route value. Patterns are literal segments and `{name}`
/// parameters, e.g. `/api/v1/out/{ispb}/stream/{token}`; a parameter matches one non-empty
/// segment. Literal segments win over parameters at the same position.
///
/// A route answers only the methods it was added for: HEAD is not implied by GET, because a
/// GET route may change state (following a pull pointer acknowledges a batch) and a HEAD that
/// runs it would do so without delivering anything. A route that is safe to HEAD adds `.head`.
///
/// Matching walks the path's UTF-8 bytes once per candidate pattern without allocating; the
/// route values live apart from the (non-generic) patterns, so an unspecialized caller pays
/// for generics once per match, not per segment.
public struct Router<Route> {
    private var patterns: [Pattern] = []
    private var routes: [Route] = []

    public enum Match {
        case found(Route, RouteParameters)
        /// The path exists for other methods: each listed once, in the order they were added.
        case methodNotAllowed([HTTPMethod])
        case notFound
    }

    public init() {}

    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ route: Route) {
        precondition(pattern.hasPrefix("/"), "route patterns start with /")
        routes.append(route)
        patterns.append(Pattern(method: method, pattern: pattern, routeIndex: routes.count - 1))
        // Literal-first order: more literal segments sort earlier; stable otherwise.
        patterns = patterns.enumerated().sorted { a, b in
            a.element.literalCount != b.element.literalCount ? a.element.literalCount > b.element.literalCount : a.offset < b.offset
        }.map(\.element)
    }

    public func match(method: HTTPMethod, path: Substring) -> Match {
        var allowed: [HTTPMethod] = []
        for pattern in patterns {
            guard let params = pattern.match(path) else { continue }
            if pattern.method == method {
                return .found(routes[pattern.routeIndex], params)
            }
            if !allowed.contains(pattern.method) { allowed.append(pattern.method) }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed)
    }
}

extension Router: Sendable where Route: Sendable {}

/// One compiled pattern (non-generic).
struct Pattern: Sendable {
    enum Segment: Sendable {
        case literal([UInt8])
        case parameter(String)
    }

    let method: HTTPMethod
    let segments: [Segment]
    let routeIndex: Int
    let literalCount: Int

    init(method: HTTPMethod, pattern: String, routeIndex: Int) {
        self.method = method
        self.routeIndex = routeIndex
        segments = pattern.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map {
            if $0.hasPrefix("{") && $0.hasSuffix("}") { return .parameter(String($0.dropFirst().dropLast())) }
            return .literal(Array($0.utf8))
        }
        literalCount = segments.reduce(0) { if case .literal = $1 { $0 + 1 } else { $0 } }
    }

    /// The parameters when `path` matches this pattern, else nil.
    func match(_ path: Substring) -> RouteParameters? {
        let utf8 = path.utf8
        var i = utf8.startIndex
        guard i < utf8.endIndex, utf8[i] == UInt8(ascii: "/") else { return nil }
        var params = RouteParameters()
        for (n, segment) in segments.enumerated() {
            // `i` is at the "/" before this segment.
            guard i < utf8.endIndex else { return nil }
            let start = utf8.index(after: i)
            var end = start
            while end < utf8.endIndex && utf8[end] != UInt8(ascii: "/") { end = utf8.index(after: end) }
            switch segment {
            case .literal(let bytes):
                guard utf8.distance(from: start, to: end) == bytes.count else { return nil }
                var k = start
                for b in bytes {
                    guard utf8[k] == b else { return nil }
                    k = utf8.index(after: k)
                }
            case .parameter(let name):
                guard start < end else { return nil }
                params.values.append((name, path[start..<end]))
            }
            i = end
            if n == segments.count - 1 { return i == utf8.endIndex ? params : nil }
        }
        return segments.isEmpty && utf8.count == 1 ? params : nil
    }
}

/// Path parameters of a matched route, in pattern order.
public struct RouteParameters: Sendable {
    public var values: [(String, Substring)] = []

    public init() {}

    public subscript(_ name: String) -> Substring? {
        for (n, v) in values where n == name { return v }
        return nil
    }
}
