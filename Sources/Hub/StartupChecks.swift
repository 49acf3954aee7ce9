import Glibc

/// Checks of files and directories named by options, made before anything is bound to the
/// loop, so that a bad value stops start-up with one line (`--option: reason`) and nothing to
/// undo. Reasons use the C library's wording (`No such file or directory`).
extension HubConfiguration {
    /// Fails unless `path` is an existing file this process can open for reading.
    public static func checkReadableFile(_ path: String, option: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ConfigurationError("--\(option): cannot read \(path): \(Self.errnoText())")
        }
        guard (info.st_mode & S_IFMT) != S_IFDIR else {
            throw ConfigurationError("--\(option): cannot read \(path): Is a directory")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ConfigurationError("--\(option): cannot read \(path): \(Self.errnoText())") }
        Glibc.close(fd)
    }

    /// Creates `path` and its missing parents (like `mkdir -p`) and proves it writable by
    /// creating and removing a file in it (permission bits alone do not stop root; a read-only
    /// file system or a parent that is a file do).
    static func prepareWritableDirectory(_ path: String, option: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw ConfigurationError("--\(option): cannot create \(prefix): \(Self.errnoText())")
            }
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ConfigurationError("--\(option): cannot use \(path): \(Self.errnoText())")
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw ConfigurationError("--\(option): \(path) is not a directory")
        }
        let probe = "\(path)/.rtpstream-write-check-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigurationError("--\(option): cannot write in \(path): \(Self.errnoText())") }
        Glibc.close(fd)
        unlink(probe)
    }

    static func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
}
