#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The real disk: POSIX calls, EINTR retried, errors mapped to `FileIOError`.
public struct PosixFileIO: FileIO {
    public init() {}

    private static func fail(_ operation: String, _ path: String) -> FileIOError {
        FileIOError(errno: errno, operation: operation, path: path)
    }

    /// Retries `call` while it fails with EINTR.
    private static func retrying<T: BinaryInteger>(_ call: () -> T) -> T {
        while true {
            let rc = call()
            if rc >= 0 || errno != EINTR { return rc }
        }
    }

    public func open(_ path: String, create: Bool) throws(FileIOError) -> FileDescriptor {
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = Self.retrying { sysOpen(path, flags, 0o644) }
        if fd < 0 { throw Self.fail("open", path) }
        return FileDescriptor(rawValue: fd)
    }

    public func close(_ file: FileDescriptor) {
        let rc = sysClose(file.rawValue)
        precondition(rc == 0 || errno != EBADF, "close of a descriptor that is not open: a bug")
    }

    public func read(_ file: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(FileIOError) -> Int {
        guard buffer.count > 0 else { return 0 }
        let n = Self.retrying { pread(file.rawValue, buffer.baseAddress, buffer.count, off_t(offset)) }
        if n < 0 { throw Self.fail("pread", "fd \(file.rawValue)") }
        return n
    }

    public func write(_ file: FileDescriptor, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(FileIOError) -> Int {
        precondition(bytes.count > 0)
        let n = Self.retrying { pwrite(file.rawValue, bytes.baseAddress, bytes.count, off_t(offset)) }
        if n < 0 { throw Self.fail("pwrite", "fd \(file.rawValue)") }
        return n
    }

    public func sync(_ file: FileDescriptor) throws(FileIOError) {
        #if os(Linux)
        let rc = Self.retrying { fdatasync(file.rawValue) }
        #else
        let rc = Self.retrying { fcntl(file.rawValue, F_FULLFSYNC) }
        #endif
        if rc != 0 { throw Self.fail("fdatasync", "fd \(file.rawValue)") }
    }

    public func truncate(_ file: FileDescriptor, to length: Int64) throws(FileIOError) {
        let rc = Self.retrying { ftruncate(file.rawValue, off_t(length)) }
        if rc != 0 { throw Self.fail("ftruncate", "fd \(file.rawValue)") }
    }

    public func size(_ file: FileDescriptor) throws(FileIOError) -> Int64 {
        var st = stat()
        if fstat(file.rawValue, &st) != 0 { throw Self.fail("fstat", "fd \(file.rawValue)") }
        return Int64(st.st_size)
    }

    public func size(atPath path: String) throws(FileIOError) -> Int64 {
        var st = stat()
        if stat(path, &st) != 0 { throw Self.fail("stat", path) }
        return Int64(st.st_size)
    }

    public func makeDirectory(_ path: String) throws(FileIOError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw Self.fail("mkdir", path) }
    }

    public func list(_ directory: String) throws(FileIOError) -> [String] {
        guard let dir = opendir(directory) else { throw Self.fail("opendir", directory) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func syncDirectory(_ path: String) throws(FileIOError) {
        let fd = Self.retrying { sysOpen(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0) }
        if fd < 0 { throw Self.fail("open", path) }
        defer { _ = sysClose(fd) }
        let rc = Self.retrying { fsync(fd) }
        if rc != 0 { throw Self.fail("fsync", path) }
    }

    public func rename(_ from: String, to: String) throws(FileIOError) {
        if sysRename(from, to) != 0 { throw Self.fail("rename", from) }
    }

    public func remove(_ path: String) throws(FileIOError) {
        if unlink(path) != 0 { throw Self.fail("unlink", path) }
    }

    public func lockExclusive(_ path: String) throws(FileIOError) -> FileDescriptor {
        let fd = try open(path, create: true)
        if Self.retrying({ flock(fd.rawValue, LOCK_EX | LOCK_NB) }) != 0 {
            let error = Self.fail("flock", path)
            close(fd)
            throw error
        }
        return fd
    }

    public func unlock(_ file: FileDescriptor) {
        _ = flock(file.rawValue, LOCK_UN)
        close(file)
    }
}

// The module-level C functions, named so they do not collide with the protocol's methods.
@inline(__always) private func sysOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    #if canImport(Glibc)
    Glibc.open(path, flags, mode)
    #else
    Darwin.open(path, flags, mode)
    #endif
}

@inline(__always) private func sysClose(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    Glibc.close(fd)
    #else
    Darwin.close(fd)
    #endif
}

@inline(__always) private func sysRename(_ from: String, _ to: String) -> Int32 {
    #if canImport(Glibc)
    Glibc.rename(from, to)
    #else
    Darwin.rename(from, to)
    #endif
}
