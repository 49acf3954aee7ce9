import Foundation

public enum Paths {
    /// The package root, from this file's location.
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The shared ISO 20022 fixtures (never copied into the repository): `$RTPSTREAM_FIXTURES`,
    /// else `../shared/fixtures/iso20022` next to the repository, else next to the repository
    /// this one was cloned from (a throw-away clone in a temporary directory has no `../shared`).
    public static let fixtures: URL = {
        if let p = ProcessInfo.processInfo.environment["RTPSTREAM_FIXTURES"] { return URL(fileURLWithPath: p) }
        let relative = "shared/fixtures/iso20022"
        let beside = packageRoot.deletingLastPathComponent().appendingPathComponent(relative).standardizedFileURL
        if FileManager.default.fileExists(atPath: beside.path) { return beside }
        if let origin = try? runCommand("/usr/bin/git", ["-C", packageRoot.path, "config", "--get", "remote.origin.url"]),
           origin.0 == 0 {
            let url = origin.1.trimmingCharacters(in: .whitespacesAndNewlines)
            if url.hasPrefix("/") {
                let there = URL(fileURLWithPath: url).standardizedFileURL.deletingLastPathComponent().appendingPathComponent(relative).standardizedFileURL
                if FileManager.default.fileExists(atPath: there.path) { return there }
            }
        }
        return beside
    }()

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
