import Glibc

/// IMF-fixdate for the `Date` header, recomputed at most once per second.
struct HTTPDate {
    private var second: time_t = -1
    private var cached = ""

    mutating func now() -> String {
        let t = time(nil)
        if t != second {
            second = t
            var tm = tm()
            var tt = t
            gmtime_r(&tt, &tm)
            var buf = [CChar](repeating: 0, count: 64)
            let n = strftime(&buf, buf.count, "%a, %d %b %Y %H:%M:%S GMT", &tm)
            cached = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return cached
    }
}
