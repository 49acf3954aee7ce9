import Foundation
import Glibc
import HTTP
import ISO20022
import Streaming
import TestSupport
import XCTest

/// Shared pieces of the pull-path end-to-end tests: sending numbered messages, pulling and
/// parsing batches, metrics and Redis inspection.
enum Pull {
    static let a = "12345678"
    static let b = "87654321"
    static let c = "11111111"
    static let multipart = "multipart/mixed"
    static let xml = "application/xml"

    static func startPath(_ ispb: String) -> String { "/api/v1/out/\(ispb)/stream/start" }

    static func nowMs() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6
    }
}

/// One response of the pull path as a client sees it, its messages parsed.
struct Batch {
    let status: Int
    let ids: [String]
    let bodies: [[UInt8]]
    let next: String?
    let response: HTTPClientResponse
    let elapsedMs: Double

    var token: String? { next.map { String($0.split(separator: "/").last!) } }
    var problemType: String? {
        guard let r = response.body.split(separator: UInt8(ascii: "<")).first(where: { $0.starts(with: Array("type>".utf8)) }) else { return nil }
        return String(decoding: r.dropFirst(5), as: UTF8.self)
    }
}

/// The `boundary` parameter of a multipart Content-Type.
func boundary(of contentType: String) -> String? {
    for p in contentType.split(separator: ";").dropFirst() {
        let kv = p.trimmingCharacters(in: .whitespaces)
        if kv.lowercased().hasPrefix("boundary=") { return String(kv.dropFirst(9)).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
    }
    return nil
}

extension HubClient {
    /// GET of a pull path; the body is decompressed (gzip) and split into messages with the
    /// HTTP module's multipart parser (independent checks are in PullRepresentationTests).
    func pull(_ path: String, accept: String? = Pull.multipart, gzip: Bool = false,
              file: StaticString = #filePath, line: UInt = #line) throws -> Batch {
        var headers: [(String, String)] = []
        if let accept { headers.append(("Accept", accept)) }
        if gzip { headers.append(("Accept-Encoding", "gzip")) }
        let t0 = Pull.nowMs()
        let r = try request("GET", path, headers: headers)
        let elapsed = Pull.nowMs() - t0
        guard r.status == 200 else {
            return Batch(status: r.status, ids: [], bodies: [], next: r.header("PI-Pull-Next"), response: r, elapsedMs: elapsed)
        }
        var body = r.body
        if r.header("Content-Encoding") == "gzip" { body = try Gzip.decompress(body, maxBytes: 64 << 20) }
        let contentType = try XCTUnwrap(r.header("Content-Type"), file: file, line: line)
        if contentType.hasPrefix("multipart/mixed") {
            let parts = try Multipart.parse(body, boundary: XCTUnwrap(boundary(of: contentType)), partsMax: 10)
            return Batch(status: 200, ids: try parts.map { try XCTUnwrap($0.header("PI-ResourceId"), file: file, line: line) },
                         bodies: parts.map(\.body), next: r.header("PI-Pull-Next"), response: r, elapsedMs: elapsed)
        }
        let id = try XCTUnwrap(r.header("PI-ResourceId"), file: file, line: line)
        return Batch(status: 200, ids: [id], bodies: [body], next: r.header("PI-Pull-Next"), response: r, elapsedMs: elapsed)
    }

    func start(_ ispb: String? = nil, accept: String? = Pull.multipart) throws -> Batch {
        try pull(Pull.startPath(ispb ?? self.ispb), accept: accept)
    }
}

/// Numbered pacs.008 messages of one test run, sent ten per multipart request.
final class Outbox {
    let generator = Pacs008Generator(runTag: Pacs008Generator.randomRunTag(), addressing: .direct)
    private var sequence: UInt64 = 0
    /// Every message sent, by resource id.
    private(set) var bodies: [String: [UInt8]] = [:]
    /// Resource ids in the order they were stored (= log order per recipient).
    private(set) var order: [String: [String]] = [:]

    /// Sends `count` messages from `client` to `recipient`; returns their ids in log order.
    @discardableResult
    func send(_ count: Int, from client: HubClient, to recipient: String,
              file: StaticString = #filePath, line: UInt = #line) throws -> [String] {
        var ids: [String] = []
        var remaining = count
        while remaining > 0 {
            let n = min(remaining, 10)
            var xmls: [[UInt8]] = []
            for _ in 0..<n {
                sequence += 1
                xmls.append(generator.make(sender: client.ispb, recipient: recipient, sequence: sequence))
            }
            let stored = try post(xmls, from: client, file: file, line: line)
            for (id, xml) in zip(stored, xmls) { bodies[id] = xml }
            ids += stored
            remaining -= n
        }
        order[recipient, default: []] += ids
        return ids
    }

    private func post(_ xmls: [[UInt8]], from client: HubClient, file: StaticString, line: UInt) throws -> [String] {
        if xmls.count == 1 {
            let r = try client.send(xmls[0], as: client.ispb)
            XCTAssertEqual(r.status, 201, String(decoding: r.body, as: UTF8.self), file: file, line: line)
            return [try XCTUnwrap(r.header("PI-ResourceId"), file: file, line: line)]
        }
        let b = "outbox\(sequence)"
        var body: [UInt8] = []
        for x in xmls { body += Array("--\(b)\r\nContent-Type: application/xml\r\n\r\n".utf8) + x + Array("\r\n".utf8) }
        body += Array("--\(b)--\r\n".utf8)
        let r = try client.request("POST", "/api/v1/in/\(client.ispb)/msgs",
                                   headers: [("Content-Type", "multipart/mixed; boundary=\(b)")], body: body)
        XCTAssertEqual(r.status, 201, String(decoding: r.body, as: UTF8.self), file: file, line: line)
        let parts = try Multipart.parse(r.body, boundary: XCTUnwrap(boundary(of: XCTUnwrap(r.header("Content-Type")))), partsMax: 10)
        XCTAssertEqual(parts.count, xmls.count, file: file, line: line)
        return try parts.map { try XCTUnwrap($0.header("PI-ResourceId"), file: file, line: line) }
    }
}

extension HubHarness {
    /// The admin listener's /metrics as (series with labels → value).
    func metrics() throws -> [String: Double] { try server.metrics() }

    /// Members of the ISPB's slot set in Redis.
    func redisSlots(_ ispb: String) throws -> [String] {
        guard case .array(let items?) = try redis.command(["ZRANGE", "rtp:{\(ispb)}:slots", "0", "-1"]) else { return [] }
        return items.compactMap(\.text)
    }

    func redisCursorExists(_ ispb: String, stream: UInt64) throws -> Bool {
        try redis.command(["EXISTS", "rtp:{\(ispb)}:cur:\(stream)"]).integer == 1
    }

    /// Waits until `condition` holds (checked every 50 ms) or `timeoutMs` passes.
    func eventually(timeoutMs: Double = 5000, _ what: String, file: StaticString = #filePath, line: UInt = #line,
                    _ condition: () throws -> Bool) rethrows {
        let deadline = Pull.nowMs() + timeoutMs
        while Pull.nowMs() < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        XCTFail("timed out waiting for: \(what)", file: file, line: line)
    }
}

/// The stream id inside a pointer (the token's first 8 bytes, see PullToken).
func streamID(ofPointer pointer: String) -> UInt64? {
    guard let token = pointer.split(separator: "/").last, let raw = Base64URL.decode(token), raw.count == 28 else { return nil }
    return raw[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
}

/// Runs `body` on `count` threads at once and waits for all of them.
func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        Thread.detachNewThread {
            body(i)
            group.leave()
        }
    }
    group.wait()
}

/// A value shared between test threads under a lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// A non-Sendable value handed to exactly one other thread.
final class Handoff<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
