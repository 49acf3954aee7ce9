import HTTP
import HTTPServer

/// Routes of the plaintext admin listener: liveness, readiness, metrics.
enum AdminRoutes {
    static func router(readiness: @escaping () -> (ready: Bool, reason: String)) -> Router<RouteHandler> {
        var router = Router<RouteHandler>()
        router.add(.get, "/healthz", RouteHandler(name: "healthz") { ctx in
            ctx.respond(HTTPResponse(status: 200, headers: [HTTPHeader("Content-Type", "text/plain")], body: Array("ok\n".utf8)))
        })
        router.add(.get, "/readyz", RouteHandler(name: "readyz") { ctx in
            let (ready, reason) = readiness()
            ctx.respond(HTTPResponse(status: ready ? 200 : 503, headers: [HTTPHeader("Content-Type", "text/plain")],
                                     body: Array("\(reason)\n".utf8)))
        })
        router.add(.get, "/metrics", RouteHandler(name: "metrics") { ctx in
            ctx.respond(HTTPResponse(status: 200,
                                     headers: [HTTPHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                                     body: MetricsExposition.render()))
        })
        return router
    }
}
