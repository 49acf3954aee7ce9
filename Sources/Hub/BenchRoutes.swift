import HTTP
import HTTPServer

/// `GET /bench/fixed`: a fixed body (8 KiB unless `--bench-fixed-bytes`), registered only with
/// `--bench-fixed-response`, so that `make bench` can compare the HTTP core with nginx serving
/// a static file of that size, and mutual TLS with plaintext at several response sizes.
enum BenchRoutes {
    static func add(to router: inout Router<RouteHandler>, bodyBytes: Int) {
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: bodyBytes)
        router.add(.get, "/bench/fixed", RouteHandler(name: "bench_fixed") { ctx in
            ctx.respond(HTTPResponse(status: 200, headers: [HTTPHeader("Content-Type", "application/octet-stream")],
                                     body: body))
        })
    }
}
