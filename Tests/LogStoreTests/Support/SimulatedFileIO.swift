import TestSupport
import Foundation
@testable import LogStore

/// A simulated disk with the failure modes of a real one (TigerBeetle-style):
/// - data written but not fdatasync'd is volatile: a power loss keeps a random subset of it,
///   each write possibly torn at sector granularity, unwritten gaps read as zeros;
/// - directory entries (create, rename, unlink) are durable only after fsync of the directory;
///   a power loss applies a random prefix of the pending ones;
/// - short writes, failing writes, failing fdatasync (which, as on Linux, may still persist
///   part of the data and forgets the rest of the pending writes);
/// - a crash after N more operations (everything after it fails with EIO until `powerLoss()`);
/// - bit flips in stored data.
/// Everything is driven by a seeded generator.
final class SimulatedFileIO: FileIO, @unchecked Sendable {
    struct Faults {
        var shortWriteProbability = 0.0
        var writeErrorProbability = 0.0
        var syncErrorProbability = 0.0
    }

    private enum PendingData {
        case write(offset: Int, bytes: [UInt8])
        case truncate(Int)
    }

    private final class Inode {
        var volatile: [UInt8] = []
        var durable: [UInt8] = []
        var pending: [PendingData] = []
    }

    private enum DirOp {
        case mkdir(String)
        case link(String, Int)
        case unlink(String)
        case rename(String, String, Int)
    }

    private let lock = NSLock()
    private var rng: SplitMix64
    private var inodes: [Int: Inode] = [:]
    private var nextInode = 1
    private var names: [String: Int] = [:]
    private var durableNames: [String: Int] = [:]
    private var directories: Set<String> = ["/"]
    private var durableDirectories: Set<String> = ["/"]
    private var pendingDirOps: [DirOp] = []
    private var descriptors: [Int32: Int] = [:]
    private var nextDescriptor: Int32 = 3
    private var opsUntilCrash: Int?
    private(set) var crashed = false
    var faults = Faults()
    /// Counters for assertions in tests.
    private(set) var syncCount = 0
    private(set) var injectedFaults = 0

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "/" }
        let p = String(path[..<slash])
        return p.isEmpty ? "/" : p
    }

    private func fail(_ op: String, _ path: String, _ code: Int32 = 5) -> FileIOError {
        FileIOError(errno: code, operation: op, path: path)
    }

    /// Counts a mutating operation toward a scheduled crash.
    private func step(_ op: String, _ path: String) throws(FileIOError) {
        if crashed { throw fail(op, path) }
        if let n = opsUntilCrash {
            if n <= 0 {
                crashed = true
                throw fail(op, path)
            }
            opsUntilCrash = n - 1
        }
    }

    // MARK: Test controls

    /// The disk stops after `operations` more mutating calls (a crash at an arbitrary point).
    func crash(afterOperations operations: Int) { locked { opsUntilCrash = operations } }

    /// Crash now.
    func crashNow() { locked { crashed = true } }

    /// Power loss: keep only what was durable plus a random, possibly torn, part of what was
    /// not; forget every open descriptor.
    func powerLoss() {
        locked {
            for id in inodes.keys.sorted() {
                let inode = inodes[id]!
                for op in inode.pending {
                    switch op {
                    case .truncate(let n):
                        if rng.chance(0.5) { resize(&inode.durable, n) }
                    case .write(let offset, let bytes):
                        let choice = rng.next() % 3
                        if choice == 0 { continue }
                        if choice == 1 {
                            apply(&inode.durable, offset, bytes[...])
                        } else {
                            // Torn: each 512-byte sector independently.
                            var at = 0
                            while at < bytes.count {
                                let sectorEnd = min(bytes.count, ((offset + at) / 512 + 1) * 512 - offset)
                                if rng.chance(0.5) { apply(&inode.durable, offset + at, bytes[at..<sectorEnd]) }
                                at = sectorEnd
                            }
                        }
                    }
                }
                inode.pending.removeAll()
            }
            let keep = pendingDirOps.isEmpty ? 0 : Int(rng.next() % UInt64(pendingDirOps.count + 1))
            for op in pendingDirOps.prefix(keep) { commit(op) }
            pendingDirOps.removeAll()
            restart(fromDurable: true)
        }
    }

    /// A process restart (kill -9): the page cache survives, descriptors do not.
    func processRestart() { locked { restart(fromDurable: false) } }

    private func restart(fromDurable: Bool) {
        if fromDurable {
            // Directories and files whose ancestors did not all survive are unreachable: gone.
            func reachable(_ path: String) -> Bool {
                var p = Self.parent(path)
                while p != "/" {
                    if !durableDirectories.contains(p) { return false }
                    p = Self.parent(p)
                }
                return true
            }
            durableDirectories = durableDirectories.filter { $0 == "/" || reachable($0) }
            durableNames = durableNames.filter { reachable($0.key) }
            names = durableNames
            directories = durableDirectories
            for inode in inodes.values { inode.volatile = inode.durable }
            let live = Set(names.values)
            inodes = inodes.filter { live.contains($0.key) }
        }
        descriptors.removeAll()
        crashed = false
        opsUntilCrash = nil
    }

    /// Flips one random bit of `path` within `range` (durable and cached copies alike).
    func flipBit(_ path: String, in range: Range<Int>) -> Int? {
        locked {
            guard let id = names[path], let inode = inodes[id] else { return nil }
            let upper = min(range.upperBound, inode.volatile.count)
            guard range.lowerBound < upper else { return nil }
            let at = range.lowerBound + Int(rng.next() % UInt64(upper - range.lowerBound))
            let bit = UInt8(1) << UInt8(rng.next() % 8)
            inode.volatile[at] ^= bit
            if at < inode.durable.count { inode.durable[at] ^= bit }
            return at
        }
    }

    func contents(_ path: String) -> [UInt8]? { locked { names[path].flatMap { inodes[$0]?.volatile } } }

    /// Overwrites part of a file durably (test setup of corrupt states).
    func overwrite(_ path: String, at offset: Int, with bytes: [UInt8]) {
        locked {
            guard let id = names[path], let inode = inodes[id] else { return }
            apply(&inode.volatile, offset, bytes[...])
            apply(&inode.durable, offset, bytes[...])
        }
    }

    func allPaths() -> [String] { locked { names.keys.sorted() } }

    // MARK: Helpers

    private func resize(_ data: inout [UInt8], _ n: Int) {
        if n < data.count { data.removeLast(data.count - n) } else { data.append(contentsOf: [UInt8](repeating: 0, count: n - data.count)) }
    }

    private func apply(_ data: inout [UInt8], _ offset: Int, _ bytes: ArraySlice<UInt8>) {
        if data.count < offset + bytes.count { resize(&data, offset + bytes.count) }
        data.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
    }

    private func commit(_ op: DirOp) {
        switch op {
        case .mkdir(let d): durableDirectories.insert(d)
        case .link(let p, let id): durableNames[p] = id
        case .unlink(let p): durableNames[p] = nil
        case .rename(let from, let to, let id):
            durableNames[from] = nil
            durableNames[to] = id
        }
    }

    private func inode(_ fd: FileDescriptor, _ op: String) throws(FileIOError) -> Inode {
        guard let id = descriptors[fd.rawValue], let inode = inodes[id] else { throw fail(op, "fd \(fd.rawValue)", 9) }
        return inode
    }

    // MARK: FileIO

    func open(_ path: String, create: Bool) throws(FileIOError) -> FileDescriptor {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw fail("open", path) }
        let id: Int
        if let existing = names[path] {
            id = existing
        } else {
            guard create else { throw fail("open", path, FileIOError.noEntry) }
            guard directories.contains(Self.parent(path)) else { throw fail("open", path, FileIOError.noEntry) }
            try step("open", path)
            id = nextInode
            nextInode += 1
            inodes[id] = Inode()
            names[path] = id
            pendingDirOps.append(.link(path, id))
        }
        let fd = nextDescriptor
        nextDescriptor += 1
        descriptors[fd] = id
        return FileDescriptor(rawValue: fd)
    }

    func close(_ file: FileDescriptor) { _ = locked { descriptors.removeValue(forKey: file.rawValue) } }

    func read(_ file: FileDescriptor, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(FileIOError) -> Int {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw fail("pread", "fd \(file.rawValue)") }
        let inode = try inode(file, "pread")
        let start = Int(offset)
        guard start < inode.volatile.count else { return 0 }
        let n = min(buffer.count, inode.volatile.count - start)
        inode.volatile.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + start, byteCount: n)
        }
        return n
    }

    func write(_ file: FileDescriptor, _ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(FileIOError) -> Int {
        lock.lock()
        defer { lock.unlock() }
        try step("pwrite", "fd \(file.rawValue)")
        let inode = try inode(file, "pwrite")
        if rng.chance(faults.writeErrorProbability) {
            injectedFaults += 1
            throw fail("pwrite", "fd \(file.rawValue)", rng.chance(0.5) ? 5 : 28)
        }
        var n = bytes.count
        if n > 1 && rng.chance(faults.shortWriteProbability) {
            injectedFaults += 1
            n = 1 + Int(rng.next() % UInt64(n - 1))
        }
        let data = Array(UnsafeRawBufferPointer(rebasing: bytes[..<n]))
        apply(&inode.volatile, Int(offset), data[...])
        inode.pending.append(.write(offset: Int(offset), bytes: data))
        return n
    }

    func sync(_ file: FileDescriptor) throws(FileIOError) {
        lock.lock()
        defer { lock.unlock() }
        try step("fdatasync", "fd \(file.rawValue)")
        let inode = try inode(file, "fdatasync")
        syncCount += 1
        if rng.chance(faults.syncErrorProbability) {
            injectedFaults += 1
            // As on Linux: some of the data may have reached the disk, the rest is forgotten
            // (the pages are marked clean), and the error is reported once.
            for op in inode.pending where rng.chance(0.5) {
                switch op {
                case .truncate(let n): resize(&inode.durable, n)
                case .write(let offset, let bytes): apply(&inode.durable, offset, bytes[...])
                }
            }
            inode.pending.removeAll()
            throw fail("fdatasync", "fd \(file.rawValue)")
        }
        for op in inode.pending {
            switch op {
            case .truncate(let n): resize(&inode.durable, n)
            case .write(let offset, let bytes): apply(&inode.durable, offset, bytes[...])
            }
        }
        inode.pending.removeAll()
    }

    func truncate(_ file: FileDescriptor, to length: Int64) throws(FileIOError) {
        lock.lock()
        defer { lock.unlock() }
        try step("ftruncate", "fd \(file.rawValue)")
        let inode = try inode(file, "ftruncate")
        resize(&inode.volatile, Int(length))
        inode.pending.append(.truncate(Int(length)))
    }

    func size(_ file: FileDescriptor) throws(FileIOError) -> Int64 {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw fail("fstat", "fd \(file.rawValue)") }
        return Int64(try inode(file, "fstat").volatile.count)
    }

    func size(atPath path: String) throws(FileIOError) -> Int64 {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw fail("stat", path) }
        if directories.contains(path) { return 0 }
        guard let id = names[path], let inode = inodes[id] else { throw fail("stat", path, FileIOError.noEntry) }
        return Int64(inode.volatile.count)
    }

    func makeDirectory(_ path: String) throws(FileIOError) {
        lock.lock()
        defer { lock.unlock() }
        if directories.contains(path) { return }
        guard directories.contains(Self.parent(path)) else { throw fail("mkdir", path, FileIOError.noEntry) }
        try step("mkdir", path)
        directories.insert(path)
        pendingDirOps.append(.mkdir(path))
    }

    func list(_ directory: String) throws(FileIOError) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        if crashed { throw fail("opendir", directory) }
        guard directories.contains(directory) else { throw fail("opendir", directory, FileIOError.noEntry) }
        let prefix = directory == "/" ? "/" : directory + "/"
        let children = (Array(names.keys) + Array(directories)).filter {
            $0.hasPrefix(prefix) && $0 != directory && !$0.dropFirst(prefix.count).contains("/")
        }
        return children.map { String($0.dropFirst(prefix.count)) }.sorted()
    }

    func syncDirectory(_ path: String) throws(FileIOError) {
        lock.lock()
        defer { lock.unlock() }
        try step("fsync", path)
        guard directories.contains(path) else { throw fail("fsync", path, FileIOError.noEntry) }
        var rest: [DirOp] = []
        for op in pendingDirOps {
            let affected: Bool
            switch op {
            case .mkdir(let d): affected = Self.parent(d) == path
            case .link(let p, _), .unlink(let p): affected = Self.parent(p) == path
            case .rename(let from, let to, _): affected = Self.parent(from) == path || Self.parent(to) == path
            }
            if affected { commit(op) } else { rest.append(op) }
        }
        pendingDirOps = rest
    }

    func rename(_ from: String, to: String) throws(FileIOError) {
        lock.lock()
        defer { lock.unlock() }
        try step("rename", from)
        guard let id = names[from] else { throw fail("rename", from, FileIOError.noEntry) }
        names[from] = nil
        names[to] = id
        pendingDirOps.append(.rename(from, to, id))
    }

    /// One simulated process: the lock is always free (released by restarts).
    func lockExclusive(_ path: String) throws(FileIOError) -> FileDescriptor { try open(path, create: true) }
    func unlock(_ file: FileDescriptor) { close(file) }

    func remove(_ path: String) throws(FileIOError) {
        lock.lock()
        defer { lock.unlock() }
        try step("unlink", path)
        guard names[path] != nil else { throw fail("unlink", path, FileIOError.noEntry) }
        names[path] = nil
        pendingDirOps.append(.unlink(path))
    }
}
