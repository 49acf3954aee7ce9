// tlsbench — TLS engine throughput without sockets: full mutual-TLS handshakes/s (RSA 2048,
// client and server engines in one thread, talking through memory), resumed handshakes/s,
// and bulk encrypt + decrypt MB/s for 8 KB and 60 KB responses.
//
//   swift build -c release --scratch-path .build-release --product tlsbench
//   .build-release/release/tlsbench [--seconds 3] [--only handshakes|bulk|hmac]

import Foundation
import TLS

@main
struct TLSBench {
    static func main() throws {
        var secondsPerCase = 3.0
        let arguments = CommandLine.arguments
        if let index = arguments.firstIndex(of: "--seconds"), index + 1 < arguments.count,
           let value = Double(arguments[index + 1]), value > 0 {
            secondsPerCase = value
        }
        var only: String?  // "handshakes", "bulk" or "hmac" (e.g. for profiling one case)
        if let index = arguments.firstIndex(of: "--only"), index + 1 < arguments.count {
            only = arguments[index + 1]
        }
        func runs(_ name: String) -> Bool { only == nil || only == name }
        let directory = NSTemporaryDirectory() + "tlsbench-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = try DevCertificates.generate(in: directory, options: .init(clientISPBs: ["12345678"]))
        let client = files.clients["12345678"]!
        let serverConfig = TLSServerConfig(certPath: files.server.certificate, keyPath: files.server.key,
                                           clientCAPath: files.authority.certificate, crlPath: files.crl)
        let server = try TLSContext.server(serverConfig)
        func clientContext(_ version: TLSVersion) throws -> TLSContext {
            try TLSContext.client(TLSClientConfig(certPath: client.certificate, keyPath: client.key,
                                                  caPath: files.authority.certificate, serverName: "localhost",
                                                  maxVersion: version))
        }
        let tls13 = try clientContext(.tls13)
        let tls12 = try clientContext(.tls12)

        print("tlsbench: \(secondsPerCase) s per case, one thread; RSA 2048 keys, CRL on")
        print(server.summary)
        for (name, context) in [("TLSv1.3", tls13), ("TLSv1.2", tls12)] where runs("handshakes") {
            let full = handshakes(client: context, server: server, resume: false, seconds: secondsPerCase)
            print(full.line("full mutual-TLS handshakes \(name)"))
            let resumed = handshakes(client: context, server: server, resume: true, seconds: secondsPerCase)
            print(resumed.line("resumed handshakes        \(name)"))
        }
        for (name, context) in [("TLSv1.3", tls13), ("TLSv1.2", tls12)] where runs("bulk") {
            for size in [8 * 1024, 60 * 1024] {
                print(bulk(client: context, server: server, responseBytes: size, seconds: secondsPerCase)
                    .line("\(name) \(size / 1024) KB responses"))
            }
        }
        if runs("hmac") { print(hmac(seconds: secondsPerCase)) }
    }

    struct HandshakeFigures {
        var count = 0
        var elapsedSeconds = 0.0
        var serverSeconds = 0.0
        var cipher = ""

        func line(_ name: String) -> String {
            let total = Double(count) / elapsedSeconds
            let serverOnly = Double(count) / serverSeconds
            return "\(name): \(fmt(total))/s both sides in one thread; server side alone \(fmt(serverOnly))/s per core"
                + " (\(count) in \(fmt(elapsedSeconds, 2)) s, \(cipher))"
        }
    }

    /// Complete handshakes in a loop; the server engine's CPU time is measured on its own.
    static func handshakes(client: TLSContext, server: TLSContext, resume: Bool, seconds: Double) -> HandshakeFigures {
        var figures = HandshakeFigures()
        var session: TLSSession?
        var wire: [UInt8] = []
        var plaintext: [UInt8] = []
        let start = now()
        while now() - start < seconds {
            let clientEngine = TLSEngine(context: client, resuming: resume ? session : nil)
            var serverSeconds = 0.0
            let serverEngine = timed(&serverSeconds) { TLSEngine(context: server) }
            _ = clientEngine.handshake()
            for _ in 0..<10 {
                wire.removeAll(keepingCapacity: true)
                clientEngine.takeCiphertext(into: &wire)
                if wire.isEmpty { break }
                timed(&serverSeconds) {
                    wire.withUnsafeBytes { serverEngine.feed($0) }
                    _ = serverEngine.readPlaintext(into: &plaintext)
                    wire.removeAll(keepingCapacity: true)
                    serverEngine.takeCiphertext(into: &wire)
                }
                wire.withUnsafeBytes { clientEngine.feed($0) }
                _ = clientEngine.readPlaintext(into: &plaintext)
            }
            precondition(serverEngine.handshakeComplete && serverEngine.peerIdentity?.ispb == "12345678",
                         "handshake failed")
            precondition(!resume || session == nil || serverEngine.sessionReused, "resumption failed after \(figures.count)")
            if resume, session == nil { session = clientEngine.resumableSession }
            figures.count += 1
            figures.serverSeconds += serverSeconds
            figures.cipher = serverEngine.cipher
        }
        figures.elapsedSeconds = now() - start
        return figures
    }

    struct BulkFigures {
        var responses = 0
        var bytes = 0
        var encryptSeconds = 0.0
        var decryptSeconds = 0.0
        var elapsedSeconds = 0.0
        var ciphertextBytes = 0
        var cipher = ""

        func line(_ name: String) -> String {
            let megabytes = Double(bytes) / 1_000_000
            return "\(name): encrypt \(fmt(megabytes / encryptSeconds)) MB/s, decrypt \(fmt(megabytes / decryptSeconds)) MB/s,"
                + " both \(fmt(megabytes / elapsedSeconds)) MB/s = \(fmt(Double(responses) / elapsedSeconds)) responses/s;"
                + " overhead \(fmt(Double(ciphertextBytes - bytes) / Double(responses), 0)) B/response (\(cipher))"
        }
    }

    /// The server encrypts a response, hands the ciphertext over by swapping buffers, the
    /// client decrypts into a fixed buffer. Encrypt and decrypt are timed separately.
    static func bulk(client: TLSContext, server: TLSContext, responseBytes: Int, seconds: Double) -> BulkFigures {
        let (clientEngine, serverEngine) = connect(client: client, server: server)
        let response = (0..<responseBytes).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        var wire: [UInt8] = []
        var spare: [UInt8] = []
        var received = [UInt8](repeating: 0, count: 64 * 1024)
        var figures = BulkFigures(cipher: serverEngine.cipher)
        let start = now()
        while now() - start < seconds {
            for _ in 0..<64 {
                let t0 = now()
                let written = response.withUnsafeBytes { serverEngine.writePlaintext($0) }
                serverEngine.takeCiphertext(into: &wire)
                let t1 = now()
                wire.withUnsafeBytes { clientEngine.feed($0) }
                var got = 0
                while true {
                    let (count, result) = received.withUnsafeMutableBytes { clientEngine.readPlaintext(into: $0) }
                    got += count
                    if result != .ok { break }
                }
                let t2 = now()
                precondition(written == .ok && got == responseBytes, "bulk transfer failed")
                figures.encryptSeconds += t1 - t0
                figures.decryptSeconds += t2 - t1
                figures.ciphertextBytes += wire.count
                figures.responses += 1
                figures.bytes += responseBytes
                // The socket write "completed": recycle the buffer (double buffering, no copy).
                wire.removeAll(keepingCapacity: true)
                swap(&wire, &spare)
            }
        }
        figures.elapsedSeconds = now() - start
        return figures
    }

    static func connect(client: TLSContext, server: TLSContext) -> (TLSEngine, TLSEngine) {
        let clientEngine = TLSEngine(context: client)
        let serverEngine = TLSEngine(context: server)
        var wire: [UInt8] = []
        var plaintext: [UInt8] = []
        _ = clientEngine.handshake()
        for _ in 0..<10 {
            clientEngine.takeCiphertext(into: &wire)
            wire.withUnsafeBytes { serverEngine.feed($0) }
            _ = serverEngine.readPlaintext(into: &plaintext)
            wire.removeAll(keepingCapacity: true)
            serverEngine.takeCiphertext(into: &wire)
            wire.withUnsafeBytes { clientEngine.feed($0) }
            _ = clientEngine.readPlaintext(into: &plaintext)
            wire.removeAll(keepingCapacity: true)
        }
        precondition(serverEngine.handshakeComplete && clientEngine.handshakeComplete, "handshake failed")
        return (clientEngine, serverEngine)
    }

    static func hmac(seconds: Double) -> String {
        let key = Crypto.randomBytes(32)
        let message = Array("12345678:7f3a9c0e-stream:000000000000004711:1732200000".utf8)
        var count = 0
        var sink: UInt8 = 0
        let start = now()
        while now() - start < seconds {
            for _ in 0..<1000 {
                sink ^= Crypto.hmacSHA256(key: key, message: message)[0]
            }
            count += 1000
        }
        let elapsed = now() - start
        let prepared = Crypto.HMACSHA256Key(key)
        var preparedCount = 0
        let preparedStart = now()
        while now() - preparedStart < seconds {
            for _ in 0..<1000 {
                sink ^= prepared.tag(message)[0]
            }
            preparedCount += 1000
        }
        let preparedElapsed = now() - preparedStart
        return "HMAC-SHA256 of a \(message.count)-byte token: hmacSHA256(key:message:) \(fmt(Double(count) / elapsed))/s,"
            + " HMACSHA256Key.tag \(fmt(Double(preparedCount) / preparedElapsed))/s\(sink == 0 ? "" : "")"
    }

    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    @discardableResult
    static func timed<T>(_ total: inout Double, _ body: () -> T) -> T {
        let start = now()
        let result = body()
        total += now() - start
        return result
    }

    static func fmt(_ value: Double, _ decimals: Int = 0) -> String { String(format: "%.\(decimals)f", value) }
}
