// libFuzzer harness for the multipart parser and the Content-Type / Accept parsers.
//
//   make fuzz-multipart FUZZ_SECONDS=60
//
// Without FUZZING it replays files (the seed corpus runs in the test command).
import HTTP

enum FuzzMultipartTarget {
    static func run(_ input: UnsafeRawBufferPointer) {
        let bytes = Array(input)
        // First line: a Content-Type header value; the rest: the body.
        let nl = bytes.firstIndex(of: 10) ?? bytes.count
        let header = String(decoding: bytes[0..<nl], as: UTF8.self)
        let body = nl < bytes.count ? Array(bytes[(nl + 1)...]) : []
        _ = PullRepresentation.negotiate(accept: header)
        _ = acceptsGzip(header)
        guard let media = MediaType(header), let boundary = media.parameters["boundary"] else { return }
        guard let parts = try? Multipart.parse(body, boundary: boundary, partsMax: 10) else { return }
        precondition(parts.count <= 10)
        // What parses must survive a rebuild and reparse unchanged (when the boundary is safe).
        let rebuilt = Multipart.build(parts: parts.map { ($0.headers, $0.body) }, boundary: boundary)
        let flat = rebuilt.chunks.flatMap { $0 }
        if parts.allSatisfy({ Multipart.search(Array("\r\n--\(boundary)".utf8), in: $0.body, from: 0) == nil
                              && !$0.body.starts(with: Array("--\(boundary)".utf8)) }),
           boundary.utf8.allSatisfy({ $0 > 32 && $0 < 127 }),
           parts.allSatisfy({ $0.headers.allSatisfy { !$0.value.contains("\r") && !$0.value.contains("\n") } }) {
            let again = try? Multipart.parse(flat, boundary: boundary, partsMax: 10)
            precondition(again?.map(\.body) == parts.map(\.body), "rebuild changed the parts")
        }
    }
}

import FuzzDriver

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMultipartOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzMultipartTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main
struct FuzzMultipartMain {
    static func main() {
        FuzzDriver.main(testOneInput: fuzzMultipartOne) { FuzzMultipartTarget.run($0) }
    }
}
