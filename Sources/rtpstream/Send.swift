import ArgumentParser
import Foundation
import HTTP
import HTTPClient
import ISO20022
import TLS

/// `rtpstream send`: posts messages to a hub's send endpoint, one line of outcome per message.
struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send messages to a hub: files, or generated valid SPI pacs.008 messages.",
        discussion: """
        Each FILE is one message. With --multipart, up to 10 messages travel per request. With \
        --generate N, N valid pacs.008 messages from --sender to --recipient are made (unique ids \
        per run; --run-tag fixes them, so a re-run re-sends the same ids). One line per message on \
        standard output: LABEL, status, then the PI-ResourceId or the problem type and detail \
        (tab-separated). Exit status 1 when any message was not stored, 2 on bad usage. \
        See docs/send.md.
        """)

    /// Messages per multipart request (the hub's limit).
    static let partsPerRequestMax = 10

    @Option(help: "Base URL of the hub's API listener (https:// for mutual TLS, http:// with --insecure-plaintext).")
    var url = "https://127.0.0.1:8443"
    @Option(help: "ISPB in the path; must be the client certificate's (default: --sender).") var ispb: String?
    @Option(help: "Client certificate (PEM), e.g. client-<ISPB>.pem written by `rtpstream certs`.") var cert: String?
    @Option(help: "Client private key (PEM).") var key: String?
    @Option(help: "CA bundle the server certificate must chain to (PEM), e.g. ca.pem.") var ca: String?
    @Option(name: .customLong("server-name"), help: "Name or address the server certificate must match (default: the URL's host).")
    var serverName: String?
    @Flag(name: .customLong("insecure-plaintext"), help: "Plain HTTP, no client certificate (development hubs only).")
    var insecurePlaintext = false
    @Flag(help: "Send up to 10 messages per multipart/mixed request.") var multipart = false
    @Flag(help: "Compress request bodies (Content-Encoding: gzip).") var gzip = false
    @Option(help: "Generate this many valid pacs.008 messages instead of reading files.") var generate: Int?
    @Option(help: "Sender ISPB of generated messages.") var sender: String?
    @Option(help: "Recipient ISPB of generated messages.") var recipient: String?
    @Option(name: .customLong("hub-ispb"), help: "Generated messages are addressed to this hub ISPB, the recipient being the creditor agent.")
    var hubISPB = "99999010"
    @Flag(help: "Address generated messages to the recipient directly (AppHdr/To) instead of via the hub.") var direct = false
    @Option(name: .customLong("run-tag"), help: "8 alphanumerics in generated message ids (default: random).") var runTag: String?
    @Option(name: .customLong("first-sequence"), help: "Sequence number of the first generated message.") var firstSequence: UInt64 = 1
    @Option(name: .customLong("timeout-seconds"), help: "Connect, send and receive deadline.") var timeoutSeconds = 30
    @Argument(help: "Message files (one message each).") var files: [String] = []

    /// One message to send and the label its outcome line starts with.
    struct Item {
        let label: String
        let bytes: [UInt8]
    }

    func run() throws {
        let (count, item) = try messages()
        guard let pathISPB = ispb ?? sender else { fail("give --ispb (the path ISPB, the certificate's)") }
        guard isISPB(pathISPB) else { fail("--ispb \(pathISPB) is not 8 digits") }
        let client = HTTPClient(endpoint: try endpoint(), tls: try tlsContext(), timeoutMs: timeoutSeconds * 1000)
        defer { client.close() }
        let path = "/api/v1/in/\(pathISPB)/msgs"
        let perRequest = multipart ? Self.partsPerRequestMax : 1
        var stored = 0
        var failed = 0
        var start = 0
        while start < count {
            let batch = (start..<min(start + perRequest, count)).map(item)
            start += batch.count
            for line in send(batch, client: client, path: path) {
                if line.status == 201 { stored += 1 } else { failed += 1 }
                print(line.text)
            }
        }
        FileHandleStderr.write("rtpstream send: \(count) messages, \(stored) stored, \(failed) failed\n")
        if failed > 0 { throw ExitCode(1) }
    }

    /// How many messages there are and how to make the i-th: files are read, and messages
    /// generated, one request's worth at a time.
    func messages() throws -> (count: Int, item: (Int) -> Item) {
        if let generate {
            guard files.isEmpty else { fail("give files or --generate, not both") }
            guard generate >= 1 else { fail("--generate needs a count of at least 1") }
            guard let sender, isISPB(sender) else { fail("--generate needs --sender ISPB (8 digits)") }
            guard let recipient, isISPB(recipient) else { fail("--generate needs --recipient ISPB (8 digits)") }
            guard isISPB(hubISPB) else { fail("--hub-ispb \(hubISPB) is not 8 digits") }
            if let runTag, runTag.utf8.count != 8 || !runTag.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) {
                fail("--run-tag must be 8 letters or digits")
            }
            let last = firstSequence.addingReportingOverflow(UInt64(generate - 1))
            guard firstSequence >= 1, !last.overflow, last.partialValue <= Pacs008Generator.sequenceMax else {
                fail("sequences must stay within 1...\(Pacs008Generator.sequenceMax)")
            }
            let generator = Pacs008Generator(runTag: runTag ?? Pacs008Generator.randomRunTag(),
                                             addressing: direct ? .direct : .viaHub(hubISPB))
            let first = firstSequence
            return (generate, { i in
                let sequence = first + UInt64(i)
                return Item(label: "#\(sequence) \(generator.messageId(sender: sender, sequence: sequence))",
                            bytes: generator.make(sender: sender, recipient: recipient, sequence: sequence))
            })
        }
        guard !files.isEmpty else { fail("give message files or --generate N") }
        for file in files where !FileManager.default.isReadableFile(atPath: file) { fail("cannot read \(file)") }
        let files = self.files
        return (files.count, { i in
            guard let data = FileManager.default.contents(atPath: files[i]) else { fail("cannot read \(files[i])") }
            return Item(label: files[i], bytes: Array(data))
        })
    }

    func endpoint() throws -> HTTPEndpoint {
        let endpoint: HTTPEndpoint
        do { endpoint = try HTTPEndpoint(url: url) } catch { fail("--url: \(error)") }
        if insecurePlaintext && endpoint.tls { fail("--insecure-plaintext needs an http:// --url") }
        if !insecurePlaintext && !endpoint.tls { fail("an http:// --url needs --insecure-plaintext (or use https:// with --cert, --key, --ca)") }
        return endpoint
    }

    func tlsContext() throws -> TLSContext? {
        if insecurePlaintext {
            if cert != nil || key != nil || ca != nil { fail("--cert, --key and --ca do not apply with --insecure-plaintext") }
            return nil
        }
        guard let cert, let key, let ca else { fail("mutual TLS needs --cert, --key and --ca (or --insecure-plaintext)") }
        let host = (try? HTTPEndpoint(url: url))?.host
        do {
            return try TLSContext.client(TLSClientConfig(certPath: cert, keyPath: key, caPath: ca, serverName: serverName ?? host))
        } catch {
            fail("TLS: \(error)")
        }
    }

    func isISPB(_ s: String) -> Bool { s.utf8.count == 8 && s.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }

    /// One outcome line.
    struct Line {
        let status: Int?
        let text: String
    }

    /// Sends one request carrying `batch` and returns one line per message.
    func send(_ batch: [Item], client: HTTPClient, path: String) -> [Line] {
        var headers: [HTTPHeader] = []
        var body: [UInt8]
        if multipart {
            let boundary = Self.boundary(avoiding: batch.map(\.bytes))
            let parts = batch.map { (headers: [HTTPHeader("Content-Type", "application/xml; charset=utf-8")], body: $0.bytes) }
            let (chunks, contentType) = Multipart.build(parts: parts, boundary: boundary)
            body = chunks.flatMap { $0 }
            headers.append(HTTPHeader("Content-Type", contentType))
        } else {
            precondition(batch.count == 1)
            body = batch[0].bytes
            headers.append(HTTPHeader("Content-Type", "application/xml; charset=utf-8"))
        }
        if gzip {
            body = Gzip.compress([body], level: 6)
            headers.append(HTTPHeader("Content-Encoding", "gzip"))
        }
        let response: HTTPClientResponse
        do {
            response = try client.perform(HTTPClientRequest(method: "POST", path: path, headers: headers, body: body))
        } catch {
            return batch.map { Line(status: nil, text: "\($0.label)\t-\terror\t\(error)") }
        }
        if multipart, let parts = try? response.multipartParts(partsMax: Self.partsPerRequestMax) {
            guard parts.count == batch.count else {
                return batch.map { Line(status: nil, text: "\($0.label)\t\(response.status)\terror\t\(parts.count) parts answered for \(batch.count) sent") }
            }
            return zip(batch, parts).map { item, part in
                let status = part.header("pi-part-status").flatMap { Int($0) }
                return Self.line(item.label, status: status ?? 0, resourceId: part.header("pi-resourceid"),
                                 problem: ProblemDocument(part.body))
            }
        }
        // A single message, or a request refused as a whole (413, 415, 400, 403 ...).
        return batch.map {
            Self.line($0.label, status: response.status, resourceId: response.header("pi-resourceid"), problem: response.problem)
        }
    }

    static func line(_ label: String, status: Int, resourceId: String?, problem: ProblemDocument?) -> Line {
        if status == 201, let resourceId { return Line(status: 201, text: "\(label)\t201\t\(resourceId)") }
        let type = problem?.type ?? "-"
        let detail = problem?.detail ?? "no problem document"
        return Line(status: status, text: "\(label)\t\(status)\t\(type)\t\(detail)")
    }

    /// A boundary that occurs in none of the payloads.
    static func boundary(avoiding payloads: [[UInt8]]) -> String {
        while true {
            let candidate = "rtpstream-send-" + Pacs008Generator.randomRunTag() + Pacs008Generator.randomRunTag()
            let needle = Array("--\(candidate)".utf8)
            if payloads.allSatisfy({ Multipart.search(needle, in: $0, from: 0) == nil }) { return candidate }
        }
    }
}
