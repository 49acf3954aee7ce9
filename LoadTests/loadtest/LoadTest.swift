import ArgumentParser

@main
struct LoadTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Drives rtpstream on loopback: soak and burst with correctness checking, benchmarks against a reference measured in the same run.",
        subcommands: [Soak.self, Burst.self, Bench.self, SelfTest.self])
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks, each against its reference in the same run.",
        subcommands: [BenchHTTP.self, BenchIngest.self, BenchPull.self, BenchTLS.self, BenchGet.self])
}
