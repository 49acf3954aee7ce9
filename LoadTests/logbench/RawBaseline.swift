#if canImport(Glibc)
import Glibc
#endif

/// The disk's own answer: a loop of pwrite(`bytesPerSync`) + fdatasync on one file for
/// `seconds`. `preallocated`: the file is zero-filled first, so fdatasync commits no size
/// change (what the store's recycled journal gets); otherwise the file grows like a new log.
/// Returns syncs per second.
func rawWriteSyncLoop(path: String, bytesPerSync: Int, seconds: Double, preallocated: Bool) -> Double {
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
    precondition(fd >= 0, "open \(path)")
    defer {
        close(fd)
        unlink(path)
    }
    let buffer = [UInt8](repeating: 0xAB, count: bytesPerSync)
    let fileCap = 256 << 20
    if preallocated {
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var at = 0
        while at < fileCap {
            precondition(pwrite(fd, zeros, zeros.count, off_t(at)) == zeros.count)
            at += zeros.count
        }
        precondition(fdatasync(fd) == 0)
    }
    var position = 0
    var syncs = 0
    let start = nowSeconds()
    var elapsed = 0.0
    while elapsed < seconds {
        if position + bytesPerSync > fileCap {
            position = 0
            if !preallocated { precondition(ftruncate(fd, 0) == 0) }
        }
        precondition(pwrite(fd, buffer, bytesPerSync, off_t(position)) == bytesPerSync)
        precondition(fdatasync(fd) == 0)
        position += bytesPerSync
        syncs += 1
        elapsed = nowSeconds() - start
    }
    return Double(syncs) / elapsed
}
