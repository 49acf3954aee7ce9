import ArgumentParser
import Glibc
import Hub
import Logging

@main
struct RTPStream: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rtpstream",
        abstract: "A message hub for real-time payment rails (ICOM-style send and pull over mutual TLS).",
        subcommands: [Serve.self, Send.self, Inspect.self, Certs.self],
        defaultSubcommand: nil)
}

/// Exits with status 2 and one line on standard error: `rtpstream: --option: reason` (line
/// breaks in the reason, from a library's error text, become spaces).
func fail(_ message: String) -> Never {
    let line = String(message.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
    FileHandleStderr.write("rtpstream: \(line)\n")
    exit(2)
}

enum FileHandleStderr {
    static func write(_ s: String) {
        var s = s
        s.withUTF8 { p in _ = Glibc.write(2, p.baseAddress, p.count) }
    }
}
