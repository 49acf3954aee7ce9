import HTTP
import XCTest

/// Feeds `bytes` in the given piece sizes and collects every result until the parser wants more
/// or fails.
func parseAll(_ bytes: [UInt8], limits: HTTPLimits = HTTPLimits(), splits: [Int]? = nil) -> [HTTPParseResult] {
    var parser = HTTPRequestParser(limits: limits)
    var results: [HTTPParseResult] = []
    var offset = 0
    var pieces = splits ?? [bytes.count]
    while offset < bytes.count {
        let n = min(pieces.isEmpty ? bytes.count : pieces.removeFirst(), bytes.count - offset)
        parser.feed(Array(bytes[offset..<offset + max(n, 1)]))
        offset += max(n, 1)
        loop: while true {
            let r = parser.next()
            switch r {
            case .needMore: break loop
            case .request: results.append(r)
            case .error:
                results.append(r)
                return results
            }
        }
    }
    return results
}

func requests(_ results: [HTTPParseResult]) -> [HTTPRequest] {
    results.compactMap { if case .request(let r) = $0 { r } else { nil } }
}

func firstError(_ results: [HTTPParseResult]) -> HTTPParseError? {
    for r in results { if case .error(let e) = r { return e } }
    return nil
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// A small deterministic generator for reproducible random splits.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

final class ParserTests: XCTestCase {
    let get = "GET /api/v1/out/12345678/stream/start HTTP/1.1\r\nHost: hub\r\nAccept: multipart/mixed\r\n\r\n"
    let post = "POST /api/v1/in/12345678/msgs HTTP/1.1\r\nHost: hub\r\nContent-Type: application/xml\r\nContent-Length: 11\r\n\r\n<a>hello</a"
    let chunked = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer-A: x\r\n\r\n"

    /// The corpus used by the split-equivalence tests: valid, pipelined and invalid streams.
    var corpus: [String] {
        [get, post, chunked, get + post + chunked + get,
         "GET / HTTP/1.0\r\n\r\n",
         "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
         "GET / HTTP/1.1\nHost: a\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
         "POST / HTTP/1.1\r\nHost: a\r\n\r\n",
         "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
         "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
         "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n"]
    }

    func testSimpleGet() {
        let r = requests(parseAll(bytes(get)))
        XCTAssertEqual(r.count, 1)
        XCTAssertEqual(r[0].method, .get)
        XCTAssertEqual(r[0].target, "/api/v1/out/12345678/stream/start")
        XCTAssertEqual(r[0].header("ACCEPT"), "multipart/mixed")
        XCTAssertEqual(r[0].header("host"), "hub")
        XCTAssertTrue(r[0].keepAlive)
        XCTAssertTrue(r[0].body.isEmpty)
    }

    func testContentLengthBody() {
        let r = requests(parseAll(bytes(post + ">")))
        XCTAssertEqual(r.count, 1)
        XCTAssertEqual(String(decoding: r[0].body, as: UTF8.self), "<a>hello</a")
    }

    func testChunkedBodyWithExtensionsAndTrailers() {
        let r = requests(parseAll(bytes(chunked)))
        XCTAssertEqual(r.count, 1)
        XCTAssertEqual(String(decoding: r[0].body, as: UTF8.self), "hello world")
    }

    func testPipelinedRequestsComeOutInOrder() {
        let stream = get + post + chunked + get
        let r = requests(parseAll(bytes(stream)))
        XCTAssertEqual(r.map(\.method), [.get, .post, .post, .get])
        XCTAssertEqual(r.map(\.target), ["/api/v1/out/12345678/stream/start", "/api/v1/in/12345678/msgs", "/x",
                                         "/api/v1/out/12345678/stream/start"])
    }

    func testIncompleteRequestWaits() {
        var parser = HTTPRequestParser(limits: HTTPLimits())
        parser.feed(bytes("GET / HTTP/1.1\r\nHost: a\r\n"))
        guard case .needMore = parser.next() else { return XCTFail("expected needMore") }
        XCTAssertEqual(parser.phase, .head)
        parser.feed(bytes("\r\n"))
        guard case .request = parser.next() else { return XCTFail("expected a request") }
        XCTAssertEqual(parser.phase, .idle)
    }

    func testBodyPhaseIsReported() {
        var parser = HTTPRequestParser(limits: HTTPLimits())
        parser.feed(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab"))
        guard case .needMore = parser.next() else { return XCTFail("expected needMore") }
        XCTAssertEqual(parser.phase, .body)
    }

    /// Whole, one byte at a time and in random pieces: the same requests and the same errors.
    func testByteAtATimeAndRandomSplitsAgreeWithWholeParse() {
        var rng = SplitMix(state: 42)
        for text in corpus {
            let input = bytes(text)
            let whole = describe(parseAll(input))
            XCTAssertEqual(describe(parseAll(input, splits: Array(repeating: 1, count: input.count))), whole,
                           "byte-at-a-time differs for \(text.debugDescription)")
            for _ in 0..<50 {
                var splits: [Int] = []
                var left = input.count
                while left > 0 {
                    let n = Int.random(in: 1...max(1, min(left, 17)), using: &rng)
                    splits.append(n)
                    left -= n
                }
                XCTAssertEqual(describe(parseAll(input, splits: splits)), whole,
                               "split \(splits) differs for \(text.debugDescription)")
            }
        }
    }

    private func describe(_ results: [HTTPParseResult]) -> [String] {
        results.map {
            switch $0 {
            case .needMore: "more"
            case .request(let r): "\(r.method) \(r.target) \(r.headers.map { "\($0.name)=\($0.value)" }) \(r.body) \(r.keepAlive)"
            case .error(let e): "error \(e.status) \(e.problem.slug)"
            }
        }
    }

    // MARK: limits, each with its status

    func testRequestLineTooLongIs414() {
        var limits = HTTPLimits()
        limits.requestLineBytesMax = 64
        let long = "GET /" + String(repeating: "a", count: 100) + " HTTP/1.1\r\nHost: a\r\n\r\n"
        XCTAssertEqual(firstError(parseAll(bytes(long), limits: limits))?.status, 414)
        // Detected before the line is complete (no CRLF yet).
        XCTAssertEqual(firstError(parseAll(bytes("GET /" + String(repeating: "a", count: 100)), limits: limits))?.status, 414)
    }

    /// The first defect within the limits decides, however the bytes arrive: a bare LF beyond
    /// the request-line limit (or beyond the header limit) is never seen, so the answer is
    /// 414 (431) whole and byte at a time alike, never 400 in one case and 414 in the other
    /// (a difference the fuzzer found).
    func testLimitIsReportedBeforeADefectBeyondIt() {
        var limits = HTTPLimits()
        limits.requestLineBytesMax = 64
        limits.headerBytesMax = 100
        let overLine = bytes("GET /" + String(repeating: "a", count: 100) + "\n")
        let overHeaders = bytes("GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "b", count: 150) + "\n\r\n")
        for (input, status) in [(overLine, 414), (overHeaders, 431)] {
            let whole = firstError(parseAll(input, limits: limits))?.status
            let byByte = firstError(parseAll(input, limits: limits, splits: Array(repeating: 1, count: input.count)))?.status
            XCTAssertEqual(whole, status)
            XCTAssertEqual(byByte, status)
        }
        // Within the limits the defect itself is reported, both ways.
        let bareLF = bytes("GET / HTTP/1.1\nHost: a\r\n\r\n")
        XCTAssertEqual(firstError(parseAll(bareLF, limits: limits))?.status, 400)
        XCTAssertEqual(firstError(parseAll(bareLF, limits: limits, splits: Array(repeating: 1, count: bareLF.count)))?.status, 400)
    }

    func testHeaderSectionTooLargeIs431() {
        var limits = HTTPLimits()
        limits.headerBytesMax = 100
        let big = "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: " + String(repeating: "b", count: 200) + "\r\n\r\n"
        XCTAssertEqual(firstError(parseAll(bytes(big), limits: limits))?.status, 431)
        // Detected while still incomplete.
        let partial = "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: " + String(repeating: "b", count: 200)
        XCTAssertEqual(firstError(parseAll(bytes(partial), limits: limits))?.status, 431)
    }

    func testTooManyHeadersIs431() {
        var limits = HTTPLimits()
        limits.headerCountMax = 3
        let many = "GET / HTTP/1.1\r\nHost: a\r\nAccept: a\r\nAccept: b\r\nAccept: c\r\n\r\n"
        let e = firstError(parseAll(bytes(many), limits: limits))
        XCTAssertEqual(e?.status, 431)
        XCTAssertEqual(e?.problem, .headersTooLarge)
    }

    func testBodyTooLargeIs413() {
        var limits = HTTPLimits()
        limits.bodyBytesMax = 10
        let declared = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
        XCTAssertEqual(firstError(parseAll(bytes(declared), limits: limits))?.status, 413)
        let chunkedBig = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nabcdef\r\n0\r\n\r\n"
        XCTAssertEqual(firstError(parseAll(bytes(chunkedBig), limits: limits))?.status, 413)
    }

    func testBodyWithoutLengthIs411() {
        let e = firstError(parseAll(bytes("POST /api/v1/in/12345678/msgs HTTP/1.1\r\nHost: a\r\n\r\n")))
        XCTAssertEqual(e?.status, 411)
        XCTAssertEqual(e?.problem, .lengthRequired)
        // GET without a body is fine.
        XCTAssertEqual(requests(parseAll(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))).count, 1)
    }

    func testMalformedIs400() {
        let cases = [
            "GET / HTTP/1.1\nHost: a\r\n\r\n",                          // bare LF
            "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",              // obs-fold
            "GET / HTTP/1.1\r\nHost : a\r\n\r\n",                        // space before colon
            "GET / HTTP/1.1\r\n\r\n",                                    // no Host
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",              // two Hosts
            "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",                        // double space
            "GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n",                 // absolute-form
            "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",                         // non-token method
            "GET / HTTX/1.1\r\nHost: a\r\n\r\n",                         // bad version
            "GET / HTTP/1.1\r\nHost: a\u{01}b\r\n\r\n",                  // control char in a value
            "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",              // field without colon
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",    // empty, then a folded line
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n chunked\r\n\r\n", // unsupported, then folded
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n",         // empty element
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chu nked\r\n\r\n",         // not a token
        ]
        for c in cases {
            let e = firstError(parseAll(bytes(c)))
            XCTAssertEqual(e?.status, 400, "expected 400 for \(c.debugDescription), got \(String(describing: e))")
        }
    }

    func testUnsupportedVersionAndCoding() {
        XCTAssertEqual(firstError(parseAll(bytes("GET / HTTP/2.0\r\nHost: a\r\n\r\n")))?.status, 505)
        XCTAssertEqual(firstError(parseAll(bytes("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n")))?.status, 501)
    }

    func testHeaderWhitelist() {
        var limits = HTTPLimits()
        limits.allowedHeaders = HTTPLimits.icomAllowedHeaders
        let ok = "GET / HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\nCookie: c=1\r\nMax-Forwards: 3\r\nUser-Agent: t\r\nVia: 1.1 p\r\n\r\n"
        XCTAssertEqual(requests(parseAll(bytes(ok), limits: limits)).count, 1)
        for name in ["X-Request-Id", "Authorization", "Expect", "Origin"] {
            let e = firstError(parseAll(bytes("GET / HTTP/1.1\r\nHost: a\r\n\(name): v\r\n\r\n"), limits: limits))
            XCTAssertEqual(e?.status, 400)
            XCTAssertEqual(e?.problem, .headerNotAllowed)
            XCTAssertTrue(e?.detail.contains(name.lowercased()) ?? false)
        }
    }

    func testKeepAliveSemantics() {
        XCTAssertFalse(requests(parseAll(bytes("GET / HTTP/1.0\r\n\r\n")))[0].keepAlive)
        XCTAssertTrue(requests(parseAll(bytes("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")))[0].keepAlive)
        XCTAssertFalse(requests(parseAll(bytes("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")))[0].keepAlive)
        XCTAssertTrue(requests(parseAll(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n")))[0].keepAlive)
    }

    func testErrorIsSticky() {
        var parser = HTTPRequestParser(limits: HTTPLimits())
        parser.feed(bytes("BAD\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        guard case .error = parser.next() else { return XCTFail("expected an error") }
        guard case .error = parser.next() else { return XCTFail("the parser must not resynchronise") }
    }

    func testLargeBodyFedInPiecesDoesNotGrowWithoutBound() {
        var parser = HTTPRequestParser(limits: HTTPLimits())
        let body = [UInt8](repeating: 65, count: 1_000_000)
        parser.feed(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(body.count)\r\n\r\n"))
        var offset = 0
        while offset < body.count {
            parser.feed(Array(body[offset..<min(offset + 4096, body.count)]))
            offset += 4096
        }
        guard case .request(let r) = parser.next() else { return XCTFail("expected the request") }
        XCTAssertEqual(r.body.count, body.count)
        XCTAssertEqual(parser.bufferedBytes, 0)
    }
}
