import Foundation
import Glibc

/// One JSON line per rejected message (sender, message id when known, reason), appended to a
/// file with O_APPEND. Values are JSON-escaped and capped; message bytes are never written.
final class AuditLog {
    private let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ConfigurationError("cannot open \(path): \(String(cString: strerror(errno)))") }
    }

    deinit { Glibc.close(fd) }

    func rejected(timeMs: Int64, peer: String, pathISPB: String, sender: String?, messageId: String?,
                  part: Int?, reason: String, detail: String) {
        var line = "{\"time\":\"\(Self.iso8601(timeMs))\",\"event\":\"message-rejected\""
        line += ",\"peer\":\(Self.json(peer)),\"pathIspb\":\(Self.json(pathISPB))"
        if let sender { line += ",\"sender\":\(Self.json(sender))" }
        if let messageId { line += ",\"messageId\":\(Self.json(messageId))" }
        if let part { line += ",\"part\":\(part)" }
        line += ",\"reason\":\(Self.json(reason)),\"detail\":\(Self.json(detail))}\n"
        line.withCString { p in _ = Glibc.write(fd, p, strlen(p)) }
    }

    static func json(_ s: String, maxBytes: Int = 512) -> String {
        var out = "\""
        var n = 0
        for u in s.unicodeScalars {
            if n >= maxBytes { out += "…"; break }
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7f {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
            n += 1
        }
        return out + "\""
    }

    static func iso8601(_ ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, Int(ms % 1000))
    }
}
