import ArgumentParser
@main struct RTPStream: ParsableCommand {
    func run() throws {}
}
