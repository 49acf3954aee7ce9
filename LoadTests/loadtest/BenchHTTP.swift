import ArgumentParser
import Foundation

/// `loadtest bench http`: wrk against rtpstream's fixed 8 KiB response and against nginx
/// serving an 8 KiB static file, same connections and duration, alternating rounds in one run.
struct BenchHTTP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "HTTP core vs nginx: keep-alive GET of an 8 KiB body (wrk, 1 thread).")

    @Option(help: "Seconds per measurement round.") var duration = 10
    @Option(help: "Concurrent keep-alive connections.") var connections = 50
    @Option(help: "Rounds per server (alternating; the median is reported).") var rounds = 3
    @Option(help: "Directory for the JSON summary.") var output: String?

    func run() throws {
        let wrk = try which("wrk")
        let nginx = try which("nginx")
        let rtpstream = try siblingExecutable("rtpstream")
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rtpstream-bench-http-\(getpid())")
        try FileManager.default.createDirectory(at: work.appendingPathComponent("html"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        try Data(repeating: UInt8(ascii: "x"), count: 8192).write(to: work.appendingPathComponent("html/fixed"))

        let nginxPort = freePort()
        let conf = """
        worker_processes 1;
        daemon off;
        error_log \(work.path)/nginx-error.log;
        pid \(work.path)/nginx.pid;
        events { worker_connections 4096; }
        http {
          access_log off;
          keepalive_requests 1000000;
          server { listen 127.0.0.1:\(nginxPort); root \(work.path)/html; location / { } }
        }
        """
        try conf.write(to: work.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        let nginxChild = try Child("nginx", nginx, ["-c", work.appendingPathComponent("nginx.conf").path, "-p", work.path])
        let apiPort = freePort()
        let hub = try Child("rtpstream", rtpstream, [
            "serve", "--insecure-plaintext", "--bench-fixed-response", "--log-level", "warning",
            "--listen", "127.0.0.1:\(apiPort)", "--admin-listen", "127.0.0.1:\(freePort())",
            "--data-dir", work.appendingPathComponent("data").path,
        ], logPath: work.appendingPathComponent("rtpstream.log").path)
        try waitForPort(nginxPort)
        try waitForPort(apiPort)

        func measure(_ url: String) throws -> Double {
            let out = try capture(wrk, ["-t1", "-c\(connections)", "-d\(duration)s", url])
            guard let line = out.split(separator: "\n").first(where: { $0.contains("Requests/sec:") }),
                  let rate = Double(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) else {
                throw LoadTestError("unexpected wrk output: \(out)")
            }
            let non2xx = out.split(separator: "\n").first { $0.contains("Non-2xx") }
            if let non2xx { throw LoadTestError("\(url): \(non2xx)") }
            return rate
        }

        var nginxRates: [Double] = []
        var hubRates: [Double] = []
        for round in 1...rounds {
            nginxRates.append(try measure("http://127.0.0.1:\(nginxPort)/fixed"))
            hubRates.append(try measure("http://127.0.0.1:\(apiPort)/bench/fixed"))
            print(String(format: "round %d: nginx %.0f req/s, rtpstream %.0f req/s", round, nginxRates.last!, hubRates.last!))
        }
        hub.stop()
        nginxChild.stop(SIGQUIT)
        let n = median(nginxRates)
        let h = median(hubRates)
        print(String(format: "nginx      %10.0f req/s (median of %d)", n, rounds))
        print(String(format: "rtpstream  %10.0f req/s (median of %d)", h, rounds))
        print(String(format: "ratio      %10.2f  (wrk -t1 -c%d -d%ds, 8 KiB body, keep-alive)", h / n, connections, duration))
        try writeSummary(["benchmark": "http", "connections": connections, "durationSeconds": duration,
                          "nginxRps": nginxRates, "rtpstreamRps": hubRates, "ratio": h / n],
                         to: output, name: "bench-http.json")
    }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : s[s.count / 2]
}
