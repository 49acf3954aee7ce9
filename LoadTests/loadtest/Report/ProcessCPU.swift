import Foundation
import Glibc

/// CPU use of processes from /proc (user + system ticks), sampled once a second: how the
/// 2 cores are shared between the hub, Redis and the load generator.
struct ProcessCPU {
    let name: String
    let pid: Int32
    private var lastTicks: UInt64
    private var lastNs: UInt64

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    init(name: String, pid: Int32) {
        self.name = name
        self.pid = pid
        lastTicks = ProcessCPU.ticks(pid: pid) ?? 0
        lastNs = ProcessCPU.nowNs()
    }

    /// Percent of one core used since the previous call (100 = one full core).
    mutating func percentSinceLast() -> Double {
        guard let t = ProcessCPU.ticks(pid: pid) else { return 0 }
        let now = ProcessCPU.nowNs()
        let seconds = Double(now - lastNs) / 1e9
        defer {
            lastTicks = t
            lastNs = now
        }
        guard seconds > 0 else { return 0 }
        return Double(t &- lastTicks) / ProcessCPU.ticksPerSecond / seconds * 100
    }

    /// User + system time in clock ticks, nil when the process is gone.
    static func ticks(pid: Int32) -> UInt64? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        guard let paren = buffer[0..<n].lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = buffer[(paren + 2)..<n].split(separator: UInt8(ascii: " "))
        guard fields.count > 13, let u = UInt64(String(decoding: fields[11], as: UTF8.self)),
              let s = UInt64(String(decoding: fields[12], as: UTF8.self)) else { return nil }
        return u + s
    }

    static func nowNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Resident set size in KiB (`/proc/<pid>/statm`, resident pages), nil when the process is gone.
    static func residentKiB(pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * sysconf(Int32(_SC_PAGESIZE)) / 1024
    }

    /// The 1-minute load average.
    static func loadAverage() -> Double {
        var loads = [Double](repeating: 0, count: 3)
        return getloadavg(&loads, 3) > 0 ? loads[0] : -1
    }
}
