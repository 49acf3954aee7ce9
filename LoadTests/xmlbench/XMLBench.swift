import Foundation
import ISO20022

/// xmlbench: libxml2 parse+validate rate (xmlReadMemory + xmlSchemaValidateDoc, schema compiled
/// once) against `Validator.validate` for the same message, on 1 and 2 threads, in one run.
///
///   swift build -c release --scratch-path .build-release --product xmlbench
///   .build-release/release/xmlbench [--seconds S] [--fixtures DIR]
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
        var seconds = 3.0
        var fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/fixtures/iso20022").path
        var arguments = CommandLine.arguments.dropFirst()
        while let argument = arguments.popFirst() {
            switch argument {
            case "--seconds": seconds = Double(arguments.popFirst() ?? "") ?? seconds
            case "--fixtures": fixtures = arguments.popFirst() ?? fixtures
            default:
                print("usage: xmlbench [--seconds S] [--fixtures DIR]")
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
        print("xmlbench: \(seconds) s per measurement, \(ProcessInfo.processInfo.activeProcessorCount) cores")
        for scenario in scenarios {
            let message = Array(try Data(contentsOf: URL(fileURLWithPath: fixtures + "/" + scenario.message)))
            let registry = scenario.schemas.isEmpty
                ? try SchemaRegistry.shipped()
                : try SchemaRegistry(schemaFiles: scenario.schemas.map { fixtures + "/" + $0 })
            let validators = ThreadLocalValidators(registry: registry, directory: scenario.directory)
            guard let info = validators.current().validate(message).info else {
                print("  \(scenario.message) is not accepted: \(validators.current().validate(message))")
                exit(1)
            }
            print("\n\(scenario.name): \(message.count) bytes, \(info.senderISPB) -> \(info.recipientISPB)")
            for threads in [1, 2] {
                let raw = rawRate(message: message, registry: registry, namespace: scenario.namespace, threads: threads, seconds: seconds)
                let ours = measureThroughput(threads: threads, seconds: seconds) {
                    let validator = validators.current()
                    return { message.withUnsafeBytes { validator.validate($0).info != nil } }
                }
                print(String(format: "  %d thread%@: libxml2 %8.0f msg/s   Validator %8.0f msg/s   ratio %.2f",
                             threads, threads == 1 ? " " : "s", raw, ours, ours / raw))
            }
        }
    }

    /// libxml2 alone: xmlReadMemory + xmlSchemaValidateDoc of `message` against the registry's
    /// schema for `namespace`, compiled once, one validation context per thread.
    static func rawRate(message: [UInt8], registry: SchemaRegistry, namespace: String, threads: Int, seconds: Double) -> Double {
        measureThroughput(threads: threads, seconds: seconds) {
            let baseline = try! LibXML2Baseline(registry: registry, namespace: namespace)
            return { message.withUnsafeBytes { baseline.parseAndValidate($0) } }
        }
    }
}
