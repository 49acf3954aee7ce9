import CLibXML2
import Glibc

/// Collects the libxml2 errors raised on one thread during one operation (a parse, a schema
/// compilation, a validation). Only the first error is kept as text; later ones are counted.
/// Installed through structured error handlers, never through libxml2's stderr default.
final class ErrorCapture {
    struct Captured {
        let message: [UInt8]
        let line: Int?
    }

    private(set) var first: Captured?
    private(set) var errorCount = 0
    /// First message bytes kept (before sanitizing), so one huge message costs nothing.
    static let messageBytesKept = 4096

    func reset() {
        first = nil
        errorCount = 0
    }

    fileprivate func record(_ error: UnsafeMutablePointer<xmlError>) {
        guard error.pointee.level.rawValue >= XML_ERR_ERROR.rawValue else { return }
        errorCount += 1
        guard first == nil else { return }
        var bytes: [UInt8] = []
        if let message = error.pointee.message {
            let length = strnlen(message, ErrorCapture.messageBytesKept)
            bytes = message.withMemoryRebound(to: UInt8.self, capacity: length) {
                Array(UnsafeBufferPointer(start: $0, count: length))
            }
        }
        let line = error.pointee.line > 0 ? Int(error.pointee.line) : nil
        first = Captured(message: bytes, line: line)
    }

    /// The first error as a sanitized detail, or `fallback` when libxml2 reported none.
    func detail(limits: ValidationLimits, fallback: String) -> String {
        guard let first, !first.message.isEmpty else { return fallback }
        return DetailSanitizer.sanitize(first.message, bytesMax: limits.detailBytesMax, quotedBytesMax: limits.detailQuotedBytesMax)
    }

    var firstLine: Int? { first?.line }

    /// The `userData` to hand to libxml2 with `errorHandler`. Unretained: the owner keeps the
    /// capture alive for as long as the handler is installed.
    var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    /// Structured error handler; its `userData` must be an `ErrorCapture.opaque`.
    static let errorHandler: xmlStructuredErrorFunc = { userData, error in
        guard let userData, let error else { return }
        Unmanaged<ErrorCapture>.fromOpaque(userData).takeUnretainedValue().record(error)
    }

    /// Routes every libxml2 error raised on this thread to `capture` until the returned scope
    /// ends (structured errors to the capture, unstructured ones discarded, never to stderr).
    static func installed<T>(_ capture: ErrorCapture, _ body: () throws -> T) rethrows -> T {
        xmlSetStructuredErrorFunc(capture.opaque, errorHandler)
        rtp_xml_discard_generic_errors()
        defer {
            xmlSetStructuredErrorFunc(nil, nil)
            rtp_xml_default_generic_errors()
        }
        return try body()
    }
}
