import HTTP
import HTTPServer

/// Routes of the plaintext admin listener: liveness, readiness, metrics.
enum AdminRoutes {
    static func router(readiness: @escaping () -> (ready: Bool, reason: String)) -> Router<RouteHandler> {
        var router = Router<RouteHandler>()
        // Every admin route only reads, so HEAD is as safe as GET (probes often use it).
        func read(_ path: String, _ handler: RouteHandler) {
            router.add(.get, path, handler)
            router.add(.head, path, handler)
        }
        read("/healthz", RouteHandler(name: "healthz") { ctx in
            ctx.respond(HTTPResponse(status: 200, headers: [HTTPHeader("Content-Type", "text/plain")], body: Array("ok\n".utf8)))
        })
        read("/readyz", RouteHandler(name: "readyz") { ctx in
            let (ready, reason) = readiness()
            ctx.respond(HTTPResponse(status: ready ? 200 : 503, headers: [HTTPHeader("Content-Type", "text/plain")],
                                     body: Array("\(reason)\n".utf8)))
        })
        read("/metrics", RouteHandler(name: "metrics") { ctx in
            ctx.respond(HTTPResponse(status: 200,
                                     headers: [HTTPHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                                     body: MetricsExposition.render()))
        })
        return router
    }
}
