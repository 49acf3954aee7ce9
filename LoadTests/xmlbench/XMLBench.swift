import Foundation
import ISO20022

/// xmlbench: libxml2 parse+validate rate (xmlReadMemory + xmlSchemaValidateDoc, schema compiled
/// once) against `Validator.validate` for the same message, on 1 and 2 threads, in one run.
///
///   swift build -c release --scratch-path .build-release --product xmlbench
///   .build-release/release/xmlbench [--seconds S] [--rounds N] [--fixtures DIR]
///
/// Each figure is the median of N interleaved slices of S/N seconds per side (default 6 s, 5 rounds),
/// as messages per wall-clock second and per CPU-second used (robust to other load on the machine).
@main
struct XMLBench {
    struct Scenario {
        let name: String
        let message: String
        let schemas: [String]
        let namespace: String
        let directory: ParticipantDirectory
    }

    static func main() throws {
        var seconds = 6.0
        var rounds = 5
        var count: Int?       // --count N --side raw|validator: N untimed iterations (for valgrind)
        var side = "validator"
        var only: Int?        // --scenario I: run only scenario I (0-based)
        var fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/fixtures/iso20022").path
        var arguments = CommandLine.arguments.dropFirst()
        while let argument = arguments.popFirst() {
            switch argument {
            case "--seconds": seconds = Double(arguments.popFirst() ?? "") ?? seconds
            case "--fixtures": fixtures = arguments.popFirst() ?? fixtures
            case "--rounds": rounds = max(1, Int(arguments.popFirst() ?? "") ?? rounds)
            case "--count": count = Int(arguments.popFirst() ?? "")
            case "--side": side = arguments.popFirst() ?? side
            case "--scenario": only = Int(arguments.popFirst() ?? "")
            default:
                print("usage: xmlbench [--seconds S] [--rounds N] [--fixtures DIR] [--scenario I] [--count N --side raw|validator]")
                exit(2)
            }
        }
        let scenarios = [
            Scenario(name: "SPI pacs.008 signed (CONTA_1), official SPI XSD + XMLDSig",
                     message: "samples/spi/derived_pacs.008_CONTA_1_dummy-signature.xml",
                     schemas: ["xsd/local/pacs.008.spi.1.16+xmldsig.xsd"],
                     namespace: "https://www.bcb.gov.br/pi/pacs.008/1.16", directory: .empty),
            Scenario(name: "SPI pacs.008 signed (CONTA_1), shipped profile",
                     message: "samples/spi/derived_pacs.008_CONTA_1_dummy-signature.xml",
                     schemas: [],
                     namespace: "https://www.bcb.gov.br/pi/pacs.008/1.16", directory: .empty),
            Scenario(name: "ISO pacs.008.001.08 scenario1, official ISO XSD",
                     message: "samples/iso/pacs.008.001.08/mbanq-fednow_scenario1.xml",
                     schemas: ["xsd/iso/pacs.008.001.08.xsd"],
                     namespace: "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08",
                     directory: ParticipantDirectory(entries: ["USABA:111111111": "11111111", "USABA:333333333": "33333333"])),
        ]
        if count == nil { print("xmlbench: \(seconds) s per side in \(rounds) interleaved rounds, \(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(loadAverage())") }
        for (index, scenario) in scenarios.enumerated() where only == nil || only == index {
            let message = Array(try Data(contentsOf: URL(fileURLWithPath: fixtures + "/" + scenario.message)))
            let registry = scenario.schemas.isEmpty
                ? try SchemaRegistry.shipped()
                : try SchemaRegistry(schemaFiles: scenario.schemas.map { fixtures + "/" + $0 })
            let validators = ThreadLocalValidators(registry: registry, directory: scenario.directory)
            guard let info = validators.current().validate(message).info else {
                print("  \(scenario.message) is not accepted: \(validators.current().validate(message))")
                exit(1)
            }
            if let count {
                // Deterministic cost: run under `valgrind --tool=callgrind` with N and 0 and subtract.
                let baseline = try LibXML2Baseline(registry: registry, namespace: scenario.namespace)
                let validator = validators.current()
                for _ in 0..<count {
                    let ok = message.withUnsafeBytes { side == "raw" ? baseline.parseAndValidate($0) : validator.validate($0).info != nil }
                    precondition(ok)
                }
                continue
            }
            print("\n\(scenario.name): \(message.count) bytes, \(info.senderISPB) -> \(info.recipientISPB)")
            for threads in [1, 2] {
                // Interleaved short slices, alternating which goes first, so load from other
                // processes on the machine hits both sides alike; medians are reported.
                var raws: [(perSecond: Double, perCPUSecond: Double)] = [], ours = raws
                for round in 0..<rounds {
                    let measureRaw = { raws.append(rawRate(message: message, registry: registry, namespace: scenario.namespace,
                                                           threads: threads, seconds: seconds / Double(rounds))) }
                    let measureOurs = { ours.append(validatorRate(message: message, validators: validators,
                                                                  threads: threads, seconds: seconds / Double(rounds))) }
                    if round % 2 == 0 { measureRaw(); measureOurs() } else { measureOurs(); measureRaw() }
                }
                let raw = median(raws.map(\.perSecond)), mine = median(ours.map(\.perSecond))
                let rawCPU = median(raws.map(\.perCPUSecond)), mineCPU = median(ours.map(\.perCPUSecond))
                print(String(format: "  %d thread%@ wall: libxml2 %7.0f msg/s   Validator %7.0f msg/s   ratio %.2f",
                             threads, threads == 1 ? " " : "s", raw, mine, mine / raw))
                print(String(format: "            per CPU-second: libxml2 %7.0f msg     Validator %7.0f msg     ratio %.2f",
                             rawCPU, mineCPU, mineCPU / rawCPU))
            }
        }
        if count == nil { print("\nload average after: \(loadAverage())") }
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// `Validator.validate` of `message` (must be accepted), one validator per thread.
    static func validatorRate(message: [UInt8], validators: ThreadLocalValidators, threads: Int, seconds: Double) -> (perSecond: Double, perCPUSecond: Double) {
        measureThroughput(threads: threads, seconds: seconds) {
            let validator = validators.current()
            return { message.withUnsafeBytes { validator.validate($0).info != nil } }
        }
    }

    /// libxml2 alone: xmlReadMemory + xmlSchemaValidateDoc of `message` against the registry's
    /// schema for `namespace`, compiled once, one validation context per thread.
    static func rawRate(message: [UInt8], registry: SchemaRegistry, namespace: String, threads: Int, seconds: Double) -> (perSecond: Double, perCPUSecond: Double) {
        measureThroughput(threads: threads, seconds: seconds) {
            let baseline = try! LibXML2Baseline(registry: registry, namespace: namespace)
            return { message.withUnsafeBytes { baseline.parseAndValidate($0) } }
        }
    }
}
