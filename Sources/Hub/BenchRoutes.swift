import HTTP
import HTTPServer

/// `GET /bench/fixed`: a fixed 8 KiB body, registered only with `--bench-fixed-response`, so
/// that `make bench` can compare the HTTP core with nginx serving a static file of that size.
enum BenchRoutes {
    static let fixedBodyBytes = 8192

    static func add(to router: inout Router<RouteHandler>) {
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: fixedBodyBytes)
        router.add(.get, "/bench/fixed", RouteHandler(name: "bench_fixed") { ctx in
            ctx.respond(HTTPResponse(status: 200, headers: [HTTPHeader("Content-Type", "application/octet-stream")],
                                     body: body))
        })
    }
}
