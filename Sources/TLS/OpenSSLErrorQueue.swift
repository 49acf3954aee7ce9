import COpenSSL

/// One entry of OpenSSL's per-thread error queue.
struct QueuedError: Sendable {
    let library: Int32
    let reason: Int32
    /// OpenSSL's reason string plus any detail text it attached.
    let text: String
}

/// OpenSSL keeps errors in a per-thread queue. Every engine call clears it before calling
/// OpenSSL and drains it completely after a failure, so an error never leaks into the next
/// connection handled by the same loop thread.
enum OpenSSLErrorQueue {
    /// Removes and returns every queued error, oldest first.
    static func drain() -> [QueuedError] {
        var errors: [QueuedError] = []
        while true {
            var data: UnsafePointer<CChar>?
            var flags: Int32 = 0
            let code = ERR_get_error_all(nil, nil, nil, &data, &flags)
            guard code != 0 else { break }
            var text: String
            if let reason = ERR_reason_error_string(code) {
                text = String(cString: reason)
            } else {
                text = "OpenSSL error 0x" + String(code, radix: 16)
            }
            if flags & ERR_TXT_STRING != 0, let data, data.pointee != 0 {
                text += " (" + String(cString: data) + ")"
            }
            errors.append(QueuedError(library: rtp_ERR_GET_LIB(code), reason: rtp_ERR_GET_REASON(code),
                                      text: text))
        }
        return errors
    }

    /// Empties the queue if anything is in it. Peeking is cheaper than clearing (OpenSSL 3
    /// clears all 16 slots every time), and the hot paths find the queue empty.
    @inline(__always)
    static func clearIfNeeded() {
        if ERR_peek_error() != 0 { ERR_clear_error() }
    }

    /// The queue as one line ("a; b"), emptied; `fallback` when nothing was queued.
    static func drainLine(fallback: String = "no OpenSSL detail") -> String {
        let errors = drain()
        return errors.isEmpty ? fallback : errors.map(\.text).joined(separator: "; ")
    }
}
