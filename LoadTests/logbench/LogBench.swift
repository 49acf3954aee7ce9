import ArgumentParser

/// Benchmarks of the LogStore (release build):
///     swift build -c release --scratch-path .build-release --product logbench
///     .build-release/release/logbench append --dir /work/tmp-bench
///     .build-release/release/logbench reopen --dir /work/tmp-bench --records 5000000
@main
struct LogBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logbench",
        abstract: "LogStore benchmarks: group commit vs raw write+fdatasync, reopen time.",
        subcommands: [AppendBench.self, ReopenBench.self, FillCommand.self, OpenCommand.self])
}
