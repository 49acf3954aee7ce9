import ArgumentParser

@main
struct LoadTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Drives rtpstream on loopback: benchmarks against a reference measured in the same run.",
        subcommands: [Bench.self])
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks, each against its reference in the same run.",
        subcommands: [BenchHTTP.self, BenchIngest.self])
}
