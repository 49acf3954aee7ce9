// libFuzzer harness for the HTTP request parser.
//
//   make fuzz-http FUZZ_SECONDS=60     (builds with -sanitize=fuzzer,address -DFUZZING)
//
// Without FUZZING (a normal `swift build`) the same target is a replay tool: it runs the
// harness over the files named on the command line, so a crash input can be reproduced in a
// debugger and the seed corpus is exercised by the test command.
import HTTP

enum FuzzHTTPTarget {
    /// Parses the input whole and in pieces whose sizes come from the input itself; the two
    /// must agree exactly, and every request must respect the limits.
    static func run(_ input: UnsafeRawBufferPointer) {
        var limits = HTTPLimits()
        limits.requestLineBytesMax = 512
        limits.headerBytesMax = 2048
        limits.headerCountMax = 16
        limits.bodyBytesMax = 4096
        limits.allowedHeaders = input.first.map { $0 & 1 == 0 } ?? false ? HTTPLimits.icomAllowedHeaders : nil
        let bytes = Array(input)
        let whole = parse(bytes, limits: limits, pieces: [bytes.count])
        var pieces: [Int] = []
        var i = 0
        while pieces.reduce(0, +) < bytes.count {
            pieces.append(Int(bytes.isEmpty ? 1 : bytes[i % bytes.count] % 7) + 1)
            i += 1
        }
        let split = parse(bytes, limits: limits, pieces: pieces)
        precondition(whole == split, "whole and split parses differ: \(whole) vs \(split)")
    }

    static func parse(_ bytes: [UInt8], limits: HTTPLimits, pieces: [Int]) -> [String] {
        var parser = HTTPRequestParser(limits: limits)
        var out: [String] = []
        var offset = 0
        var pieceIndex = 0
        while offset < bytes.count {
            let n = min(max(pieces[pieceIndex % max(pieces.count, 1)], 1), bytes.count - offset)
            pieceIndex += 1
            parser.feed(Array(bytes[offset..<offset + n]))
            offset += n
            loop: while true {
                switch parser.next() {
                case .needMore:
                    break loop
                case .request(let r):
                    precondition(r.body.count <= limits.bodyBytesMax)
                    precondition(r.headers.count <= limits.headerCountMax)
                    precondition(r.target.utf8.count <= limits.requestLineBytesMax)
                    out.append("\(r.method) \(r.target) \(r.headers.count) \(r.body.count) \(r.keepAlive)")
                case .error(let e):
                    out.append("error \(e.status)")
                    return out
                }
            }
        }
        return out
    }
}

import FuzzDriver

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzHTTPTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main
struct FuzzHTTPMain {
    static func main() {
        FuzzDriver.main(testOneInput: fuzzHTTPOne) { FuzzHTTPTarget.run($0) }
    }
}
