import CLibXML2
import Glibc
import Synchronization

/// Process-wide libxml2 setup: initialized once, with a hardened external entity loader.
///
/// libxml2's entity loader is global. Ours refuses every load except, on the thread that is
/// compiling a schema registry, local files inside that registry's schema directories. Instance
/// documents therefore can never load anything (they are also rejected at any DOCTYPE before an
/// entity could be declared), and schema compilation never touches the network.
enum LibXML2 {
    /// Initializes the parser and installs the loader; idempotent and thread-safe.
    static func initialize() { _ = initialized }

    private static let initialized: Void = {
        xmlInitParser()
        _ = EntityLoader.defaultLoader
        xmlSetExternalEntityLoader(EntityLoader.loader)
    }()
}

enum EntityLoader {
    private struct CompileState {
        var thread: pthread_t?
        /// Real paths, each ending in "/".
        var allowedDirectories: [String] = []
        var refused: [String] = []
    }

    private static let state = Mutex(CompileState())
    /// Serializes schema compilations (startup work), so one compile state suffices.
    private static let compileLock = Mutex(())

    static let defaultLoader: xmlExternalEntityLoader? = xmlGetExternalEntityLoader()

    static let loader: xmlExternalEntityLoader = { url, id, context in
        guard let url else { return nil }
        let urlString = String(cString: url)
        let admitted: Bool = state.withLock { state in
            guard let thread = state.thread, pthread_equal(thread, pthread_self()) != 0 else { return false }
            if let path = localPath(urlString), let real = realPath(path),
               state.allowedDirectories.contains(where: { real.hasPrefix($0) }) {
                return true
            }
            state.refused.append(urlString)
            return false
        }
        guard admitted, let defaultLoader else { return nil }
        return defaultLoader(url, id, context)
    }

    /// Runs `body` (a schema compilation) with loads admitted from `allowedDirectories` only,
    /// on this thread only. Returns the body's result and every URL that was refused meanwhile.
    static func compiling<T>(allowedDirectories: [String], _ body: () -> T) -> (T, refused: [String]) {
        LibXML2.initialize()
        var result: T?
        var refused: [String] = []
        compileLock.withLock { _ in
            state.withLock { $0 = CompileState(thread: pthread_self(), allowedDirectories: allowedDirectories) }
            result = body()
            refused = state.withLock { state in
                let refused = state.refused
                state = CompileState()
                return refused
            }
        }
        return (result!, refused)
    }

    /// A local filesystem path for a URL libxml2 wants to load, or nil for anything that is not
    /// plainly a local file (network schemes, percent-encoding).
    static func localPath(_ url: String) -> String? {
        var path = url
        if path.hasPrefix("file://") {
            path.removeFirst("file://".count)
            if path.hasPrefix("localhost/") { path.removeFirst("localhost".count) }
            guard path.hasPrefix("/") else { return nil }
        } else if path.contains("://") || path.hasPrefix("//") {
            return nil
        }
        if path.contains("%") || path.isEmpty { return nil }
        return path
    }

    /// `realpath(3)`, or nil when the file does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
