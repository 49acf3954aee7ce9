import Logging
import Synchronization

/// Holds `serve`'s log lines until start-up is over, so that a bad configuration ends with one
/// line on standard error and not a start-up log followed by the reason. Once the hub serves,
/// the held lines are written (in order, with the time they were logged) and later lines go
/// straight through. If start-up fails, only held warnings and worse are written (a storage
/// recovery that cut data, say), before the reason.
final class StartupLogGate: Sendable {
    private struct State {
        var open = false
        var held: [(level: Logger.Level, line: String)] = []
    }

    private let state = Mutex(State())

    /// One formatted line: written now once open, held before.
    func emit(_ line: String, level: Logger.Level) {
        state.withLock { s in
            if s.open {
                FileHandleStderr.write(line)
            } else {
                s.held.append((level, line))
            }
        }
    }

    var isOpen: Bool { state.withLock { $0.open } }

    /// Start-up succeeded: writes every held line, then lets lines through.
    func open() { release(atLeast: .trace) }

    /// Start-up failed: writes the held lines at `warning` or worse, drops the rest.
    func failed() { release(atLeast: .warning) }

    private func release(atLeast level: Logger.Level) {
        state.withLock { s in
            guard !s.open else { return }
            for (l, line) in s.held where l >= level { FileHandleStderr.write(line) }
            s.held = []
            s.open = true
        }
    }
}

/// The gate of this process (`serve` is the only command that logs).
let startupLog = StartupLogGate()

/// `StreamLogHandler` to standard error, through `startupLog`.
struct GatedLogHandler: LogHandler {
    private var inner: StreamLogHandler
    private let label: String

    init(label: String, level: Logger.Level) {
        self.label = label
        inner = StreamLogHandler.standardError(label: label)
        inner.logLevel = level
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        if startupLog.isOpen { return inner.log(event: event) }
        // Formatted now (with this moment's time) into the gate, which holds it or, if it
        // opened meanwhile, writes it.
        var held = StreamLogHandler(label: label, stream: GateStream(level: event.level), metadataProvider: inner.metadataProvider)
        held.logLevel = inner.logLevel
        held.metadata = inner.metadata
        held.log(event: event)
    }
}

private struct GateStream: TextOutputStream, Sendable {
    let level: Logger.Level
    mutating func write(_ string: String) { startupLog.emit(string, level: level) }
}
