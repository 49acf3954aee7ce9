// libFuzzer harness for the validator's pre-scan (encoding and per-document work bounds).
//
//   make fuzz-prescan FUZZ_SECONDS=60
//
// Without FUZZING it replays files (the seed corpus runs in the test command). Properties: the
// scan never traps, is deterministic, and accepts only what Swift's own UTF-8 decoder accepts
// and holds no NUL byte.
import ISO20022

enum FuzzPreScanTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        let bytes = Array(input)
        let limits = ValidationLimits()
        let first = DocumentPreScan.scan(bytes, limits: limits)
        let again = DocumentPreScan.scan(bytes, limits: limits)
        precondition(first == again, "scan is not deterministic")
        if first == nil {
            precondition(String(validating: bytes, as: UTF8.self) != nil, "accepted bytes that are not UTF-8")
            precondition(!bytes.contains(0), "accepted a NUL byte")
        }
    }
}

import FuzzDriver

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPreScanOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzPreScanTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main
struct FuzzPreScanMain {
    static func main() {
        FuzzDriver.main(testOneInput: fuzzPreScanOne) { FuzzPreScanTarget.run($0) }
    }
}
