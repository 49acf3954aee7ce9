import Dispatch
@testable import LogStore

/// The real disk, except that opening an idempotency key file blocks until `release()`:
/// holds the store in its "index still loading" state for as long as a test needs.
final class GatedFileIO: FileIO, @unchecked Sendable {
    private let disk = PosixFileIO()
    private let gate = DispatchSemaphore(value: 0)
    private var released = false

    func release() {
        released = true
        gate.signal()
    }

    deinit { if !released { gate.signal() } }

    func open(_ path: String, create: Bool) throws(FileIOError) -> FileDescriptor {
        if path.hasSuffix(".keys") && !create {
            gate.wait()
            gate.signal()  // stay open for later readers
        }
        return try disk.open(path, create: create)
    }
    func close(_ file: FileDescriptor) { disk.close(file) }
    func read(_ file: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(FileIOError) -> Int {
        try disk.read(file, into: buffer, at: offset)
    }
    func write(_ file: FileDescriptor, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(FileIOError) -> Int {
        try disk.write(file, bytes, at: offset)
    }
    func sync(_ file: FileDescriptor) throws(FileIOError) { try disk.sync(file) }
    func truncate(_ file: FileDescriptor, to length: Int64) throws(FileIOError) { try disk.truncate(file, to: length) }
    func size(_ file: FileDescriptor) throws(FileIOError) -> Int64 { try disk.size(file) }
    func size(atPath path: String) throws(FileIOError) -> Int64 { try disk.size(atPath: path) }
    func makeDirectory(_ path: String) throws(FileIOError) { try disk.makeDirectory(path) }
    func list(_ directory: String) throws(FileIOError) -> [String] { try disk.list(directory) }
    func syncDirectory(_ path: String) throws(FileIOError) { try disk.syncDirectory(path) }
    func rename(_ from: String, to: String) throws(FileIOError) { try disk.rename(from, to: to) }
    func remove(_ path: String) throws(FileIOError) { try disk.remove(path) }
    func lockExclusive(_ path: String) throws(FileIOError) -> FileDescriptor { try disk.lockExclusive(path) }
    func unlock(_ file: FileDescriptor) { disk.unlock(file) }
}
