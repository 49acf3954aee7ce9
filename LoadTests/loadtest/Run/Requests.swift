/// HTTP/1.1 requests as the hub's clients send them (ICOM's header whitelist only: Host,
/// Accept, Content-Type, Content-Length).
enum Requests {
    static let acceptMultipart = Array("Accept: multipart/mixed\r\n".utf8)
    static let acceptXML = Array("Accept: application/xml\r\n".utf8)

    /// `METHOD target` with the Host header and `extra` header bytes (each line CRLF-ended).
    static func make(_ method: String, target: [UInt8], host: [UInt8], extra: [UInt8] = [], body: [UInt8] = []) -> [UInt8] {
        var r: [UInt8] = []
        r.reserveCapacity(64 + target.count + host.count + extra.count + body.count)
        r.append(contentsOf: method.utf8)
        r.append(32)
        r.append(contentsOf: target)
        r.append(contentsOf: " HTTP/1.1\r\nHost: ".utf8)
        r.append(contentsOf: host)
        r.append(contentsOf: [13, 10])
        r.append(contentsOf: extra)
        if !body.isEmpty || method == "POST" {
            r.append(contentsOf: "Content-Length: \(body.count)\r\n".utf8)
        }
        r.append(contentsOf: [13, 10])
        r.append(contentsOf: body)
        return r
    }

    /// A `multipart/mixed` body with one `application/xml` part per message.
    static func multipartBody(_ messages: [[UInt8]], boundary: String) -> [UInt8] {
        let open = Array("--\(boundary)\r\nContent-Type: application/xml; charset=utf-8\r\n\r\n".utf8)
        var body: [UInt8] = []
        body.reserveCapacity(messages.reduce(0) { $0 + $1.count + open.count + 2 } + boundary.utf8.count + 8)
        for m in messages {
            body.append(contentsOf: open)
            body.append(contentsOf: m)
            body.append(contentsOf: [13, 10])
        }
        body.append(contentsOf: "--\(boundary)--\r\n".utf8)
        return body
    }
}

/// SplitMix64: a small seeded generator, so that a run's choices can be replayed.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
    }

    mutating func chance(_ p: Double) -> Bool { p > 0 && unit() < p }
}
