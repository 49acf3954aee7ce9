/// An open file of a `FileIO` implementation (a POSIX descriptor for `PosixFileIO`).
public struct FileDescriptor: Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
}

/// A failed file operation: the errno value, the operation and the path it concerned.
public struct FileIOError: Error, Sendable, Equatable, CustomStringConvertible {
    public let errno: Int32
    public let operation: String
    public let path: String

    public init(errno: Int32, operation: String, path: String) {
        self.errno = errno
        self.operation = operation
        self.path = path
    }

    public var description: String { "\(operation)(\(path)) failed: errno \(errno)" }

    /// errno value of "no such file or directory".
    public static let noEntry: Int32 = 2
}

/// Every byte the store reads or writes goes through this interface, so tests can run the
/// same engine on a simulated disk that tears writes, fails fsync, flips bits and crashes.
///
/// Reads and writes are positional and may be short (callers loop; see `readFully` and
/// `writeAll`). Implementations must be safe to call from several threads at once.
public protocol FileIO: Sendable {
    /// Opens `path` for reading and writing, creating it (empty) when `create` is true.
    func open(_ path: String, create: Bool) throws(FileIOError) -> FileDescriptor
    func close(_ file: FileDescriptor)
    /// Reads up to `buffer.count` bytes at `offset`; returns 0 at end of file.
    func read(_ file: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(FileIOError) -> Int
    /// Writes up to `bytes.count` bytes at `offset`; returns how many were written (at least 1).
    func write(_ file: FileDescriptor, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(FileIOError) -> Int
    /// fdatasync: the file's data and size are durable when this returns without error.
    func sync(_ file: FileDescriptor) throws(FileIOError)
    func truncate(_ file: FileDescriptor, to length: Int64) throws(FileIOError)
    func size(_ file: FileDescriptor) throws(FileIOError) -> Int64
    /// Size of the file at `path` without opening it.
    func size(atPath path: String) throws(FileIOError) -> Int64
    /// Creates a directory; succeeds when it already exists.
    func makeDirectory(_ path: String) throws(FileIOError)
    /// Names (not paths) of the entries of a directory, in no particular order.
    func list(_ directory: String) throws(FileIOError) -> [String]
    /// fsync of a directory: entries created, renamed or removed in it are durable.
    func syncDirectory(_ path: String) throws(FileIOError)
    /// Atomically replaces `to` with `from`.
    func rename(_ from: String, to: String) throws(FileIOError)
    func remove(_ path: String) throws(FileIOError)
    /// Opens (creating) `path` and takes an exclusive advisory lock on it without waiting;
    /// fails when another open store holds it.
    func lockExclusive(_ path: String) throws(FileIOError) -> FileDescriptor
    /// Releases a lock taken by `lockExclusive` and closes its descriptor.
    func unlock(_ file: FileDescriptor)
}

extension FileIO {
    /// Writes all of `bytes` at `offset`, looping over short writes.
    func writeAll(_ file: FileDescriptor, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(FileIOError) {
        var done = 0
        while done < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[done...])
            let n = try write(file, rest, at: offset + Int64(done))
            assert(n > 0 && n <= rest.count, "FileIO.write must make progress")
            done += n
        }
    }

    func writeAll(_ file: FileDescriptor, _ bytes: [UInt8], at offset: Int64) throws(FileIOError) {
        try withBytes(bytes) { (raw) throws(FileIOError) in try writeAll(file, raw, at: offset) }
    }

    /// Reads until `buffer` is full or the file ends; returns the byte count read.
    func readFully(_ file: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(FileIOError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = try read(file, into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]), at: offset + Int64(done))
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Reads `count` bytes at `offset` (fewer when the file ends first).
    func readBytes(_ file: FileDescriptor, count: Int, at offset: Int64) throws(FileIOError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = try withMutableBytes(&bytes) { (raw) throws(FileIOError) in try readFully(file, into: raw, at: offset) }
        if n < count { bytes.removeLast(count - n) }
        return bytes
    }

    /// Whole content of a small file.
    func readWholeFile(_ path: String) throws(FileIOError) -> [UInt8] {
        let fd = try open(path, create: false)
        defer { close(fd) }
        return try readBytes(fd, count: Int(try size(fd)), at: 0)
    }

    /// Writes `bytes` to `path` durably and atomically: temp file, fdatasync, rename, directory
    /// fsync.
    func replaceFileDurably(_ path: String, directory: String, with bytes: [UInt8]) throws(FileIOError) {
        let temp = path + ".tmp"
        let fd = try open(temp, create: true)
        do {
            try truncate(fd, to: 0)
            try writeAll(fd, bytes, at: 0)
            try sync(fd)
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        try rename(temp, to: path)
        try syncDirectory(directory)
    }

    func exists(_ path: String) -> Bool {
        (try? size(atPath: path)) != nil
    }
}
