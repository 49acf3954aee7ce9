import Foundation
import Glibc
import ISO20022
import TestSupport
import XCTest

/// `rtpstream send` and `rtpstream inspect` as an operator runs them, against the real hub.
final class SendCommandTests: XCTestCase {
    static let sender = "12345678"
    static let recipient = "87654321"

    /// Output lines of `rtpstream send` split into their tab-separated fields, by label.
    func outcomes(_ output: String) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for line in output.split(separator: "\n") where line.contains("\t") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            out[f[0]] = Array(f.dropFirst())
        }
        return out
    }

    func testSendFilesAndGeneratedMessagesOverMutualTLSThenInspect() throws {
        let hub = try HubHarness(arguments: ["--long-poll-seconds", "0"])
        let certs = try TestCertificates.directory()
        let tls = ["--url", "https://127.0.0.1:\(hub.apiPort)", "--cert", "\(certs)/client-\(Self.sender).pem",
                   "--key", "\(certs)/client-\(Self.sender)-key.pem", "--ca", "\(certs)/ca.pem"]
        let work = TempDir("rtpstream-send-cli")
        let generator = Pacs008Generator(runTag: "CLIFILES", addressing: .direct)
        var files: [String] = []
        for i in 1...3 {
            let path = "\(work.path)/m\(i).xml"
            try Data(generator.make(sender: Self.sender, recipient: Self.recipient, sequence: UInt64(i))).write(to: URL(fileURLWithPath: path))
            files.append(path)
        }
        let bad = "\(SendSupport.fixtures)/invalid/spi_pacs008_currency-USD.xml"

        // One message per request; the invalid file fails and makes the exit status 1.
        let (status, output) = try SendSupport.rtpstream(["send", "--ispb", Self.sender] + tls + files + [bad])
        XCTAssertEqual(status, 1, output)
        let lines = outcomes(output)
        for f in files {
            XCTAssertEqual(lines[f]?.first, "201", output)
            XCTAssertEqual(lines[f]?.last?.utf8.count, 32, output)
        }
        XCTAssertEqual(lines[bad]?[0], "422", output)
        XCTAssertEqual(lines[bad]?[1], "urn:rtpstream:problem:schema-invalid", output)
        XCTAssertTrue(lines[bad]?[2].contains("'USD'") ?? false, output)

        // The same files as one multipart request: same ids (idempotent), the same failure.
        let (mStatus, mOutput) = try SendSupport.rtpstream(["send", "--multipart", "--gzip", "--ispb", Self.sender] + tls + files + [bad])
        XCTAssertEqual(mStatus, 1, mOutput)
        let mLines = outcomes(mOutput)
        for f in files { XCTAssertEqual(mLines[f], lines[f], mOutput) }
        XCTAssertEqual(mLines[bad]?[1], "urn:rtpstream:problem:schema-invalid", mOutput)

        // Generated, 10 per request: all stored, exit 0; re-sent with the same run tag: same ids.
        let generate = ["send", "--generate", "25", "--sender", Self.sender, "--recipient", Self.recipient, "--run-tag", "CLIGEN01"]
        let (gStatus, gOutput) = try SendSupport.rtpstream(generate + ["--multipart"] + tls)
        XCTAssertEqual(gStatus, 0, gOutput)
        let gLines = outcomes(gOutput)
        XCTAssertEqual(gLines.count, 25, gOutput)
        XCTAssertTrue(gLines.values.allSatisfy { $0.first == "201" }, gOutput)
        let (rStatus, rOutput) = try SendSupport.rtpstream(generate + tls)
        XCTAssertEqual(rStatus, 0, rOutput)
        XCTAssertEqual(outcomes(rOutput).mapValues { $0.last }, gLines.mapValues { $0.last }, "same run tag, same ids")

        // The certificate of 12345678 may not send as 87654321.
        let (fStatus, fOutput) = try SendSupport.rtpstream(["send", "--ispb", Self.recipient] + tls + [files[0]])
        XCTAssertEqual(fStatus, 1, fOutput)
        XCTAssertEqual(outcomes(fOutput)[files[0]]?[1], "urn:rtpstream:problem:forbidden-ispb", fOutput)
        // Usage errors: 2.
        XCTAssertEqual(try SendSupport.rtpstream(["send"] + tls).0, 2)
        XCTAssertEqual(try SendSupport.rtpstream(["send", "--insecure-plaintext", "--ispb", Self.sender] + tls + files).0, 2)

        // inspect refuses while the hub holds the store; after a clean stop it reads it.
        let (busy, busyOutput) = try SendSupport.rtpstream(["inspect", "--data-dir", hub.data.path])
        XCTAssertEqual(busy, 2, busyOutput)
        XCTAssertTrue(busyOutput.contains("in use by process \(hub.server.process.processIdentifier)"), busyOutput)
        _ = try SendSupport.stop(hub)
        let partitions = try SendSupport.partitions(dataDir: hub.data.path)
        XCTAssertEqual(partitions.count, 1)
        XCTAssertEqual(partitions["local:\(Self.recipient)"]?.end, 28, "3 files + 25 generated, each stored once")
        XCTAssertEqual(partitions["local:\(Self.recipient)"]?.backlog, 28)
        let quarantine = try SendSupport.quarantine(dataDir: hub.data.path)
        XCTAssertEqual(quarantine.map(\.reason), ["schema-invalid", "schema-invalid"])
        XCTAssertEqual(quarantine.map(\.sender), [Self.sender, Self.sender])
        let (_, raw) = try SendSupport.rtpstream(["inspect", "quarantine", "--data-dir", hub.data.path, "--limit", "1", "--payload"])
        XCTAssertTrue(raw.contains("payload: <?xml"), raw)
        XCTAssertTrue(raw.contains("Ccy=\"USD\""), raw)
        XCTAssertEqual(try SendSupport.rtpstream(["inspect", "--data-dir", work.path + "/none"]).0, 2)
    }

    func testSendOverPlaintextToADevelopmentHub() throws {
        let hub = try HubHarness(tls: false, arguments: ["--long-poll-seconds", "0"])
        let (status, output) = try SendSupport.rtpstream([
            "send", "--insecure-plaintext", "--url", "http://127.0.0.1:\(hub.apiPort)",
            "--generate", "3", "--sender", Self.sender, "--recipient", Self.recipient, "--run-tag", "PLAIN001",
        ])
        XCTAssertEqual(status, 0, output)
        XCTAssertEqual(outcomes(output).values.filter { $0.first == "201" }.count, 3, output)
        let (refused, why) = try SendSupport.rtpstream(["send", "--url", "http://127.0.0.1:\(hub.apiPort)",
                                                        "--generate", "1", "--sender", Self.sender, "--recipient", Self.recipient])
        XCTAssertEqual(refused, 2, "plaintext only when asked for: \(why)")
    }
}
