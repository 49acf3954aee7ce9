#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import LogStore

func nowSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func benchLogger() -> Logger {
    var logger = Logger(label: "logbench")
    logger.logLevel = .warning
    return logger
}

/// A fresh directory `name` under `root`, removed first if present.
func freshDirectory(_ root: String, _ name: String) throws -> String {
    let path = root + "/" + name
    try? FileManager.default.removeItem(atPath: path)
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func format(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }
