import Foundation

public enum Paths {
    /// The package root, from this file's location.
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// ../shared/fixtures/iso20022 next to the repository.
    public static var fixtures: URL {
        if let p = ProcessInfo.processInfo.environment["RTPSTREAM_FIXTURES"] { return URL(fileURLWithPath: p) }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures/iso20022")
    }

    /// Directory holding the built executables (next to the test bundle), or RTPSTREAM_BIN_DIR.
    public static var binDir: URL {
        if let p = ProcessInfo.processInfo.environment["RTPSTREAM_BIN_DIR"] { return URL(fileURLWithPath: p) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // Inside a .xctest bundle on some platforms; walk up to the directory with the binaries.
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("rtpstream").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }

    public static func executable(_ name: String) -> URL { binDir.appendingPathComponent(name) }
}

/// A temporary directory removed when released.
public final class TempDir {
    public let url: URL
    public var path: String { url.path }

    public init(_ prefix: String = "rtpstream-test") {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}
