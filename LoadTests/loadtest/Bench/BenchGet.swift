import ArgumentParser
import EventLoop
import Foundation
import Glibc

/// `loadtest bench get`: the load generator's client alone — closed-loop keep-alive GETs of one
/// URL — to compare it with wrk on the same server (the client's own cost) or to probe a route.
struct BenchGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Closed-loop keep-alive GETs of one URL with the load generator's client (compare with wrk).")

    @Option(help: "http://host:port/path or https://… (then --certs and --ispb).") var url: String
    @Option(help: "Seconds.") var duration = 10.0
    @Option(help: "Concurrent keep-alive connections.") var connections = 50
    @Flag(help: "A new connection per request.") var reconnect = false
    @Option(help: "Certificate directory (https).") var certs: String?
    @Option(help: "Client certificate ISPB (https).") var ispb: String?
    @Flag(help: "Allow a non-loopback URL.") var allowRemote = false

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let target = try Target.parse(url: url, certsDir: certs, allowRemote: allowRemote)
        var path = "/"
        if let scheme = url.range(of: "://"), let slash = url[scheme.upperBound...].firstIndex(of: "/") { path = String(url[slash...]) }
        let contexts = try target.tls ? [target.clientContext(ispb: ispb ?? "10000001")!] : []
        let loop = try Loop()
        defer { loop.close() }
        let r = GetBench.run(loop: loop, host: target.host, port: target.port, contexts: contexts, path: path,
                             connections: connections, seconds: duration, reconnect: reconnect)
        print(String(format: "%.0f req/s  p50 %.2f ms  p99 %.2f ms  mean body %.0f B  loadtest cpu %.0f%%  statuses %@  failures %@",
                     r.rate, r.ms(50), r.ms(99), r.responses > 0 ? Double(r.bodyBytes) / Double(r.responses) : 0,
                     r.cpuPercent["loadtest"] ?? 0, "\(r.statuses)" as NSString, "\(r.failures)" as NSString))
    }
}
