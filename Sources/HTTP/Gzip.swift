import CZlib

public enum GzipError: Error, Equatable, Sendable {
    /// The decompressed size would exceed the limit (413).
    case tooLarge
    /// Not a valid gzip stream (400).
    case corrupt(String)
}

/// gzip for `Content-Encoding: gzip` requests and `Accept-Encoding: gzip` responses (zlib).
public enum Gzip {
    /// Inflates a gzip stream, refusing to produce more than `maxBytes` (a zip bomb stops at
    /// the limit, not at the end of the input). Concatenated members are accepted.
    public static func decompress(_ input: [UInt8], maxBytes: Int) throws -> [UInt8] {
        var stream = z_stream()
        guard rtp_inflate_init_gzip(&stream) == Z_OK else { throw GzipError.corrupt("inflateInit failed") }
        defer { inflateEnd(&stream) }
        var out: [UInt8] = []
        out.reserveCapacity(min(maxBytes, input.count * 4 + 1024))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        return try input.withUnsafeBufferPointer { inBuf -> [UInt8] in
            stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
            stream.avail_in = UInt32(inBuf.count)
            while true {
                let (rc, produced) = chunk.withUnsafeMutableBufferPointer { c -> (Int32, Int) in
                    stream.next_out = c.baseAddress
                    stream.avail_out = UInt32(c.count)
                    let rc = inflate(&stream, Z_NO_FLUSH)
                    return (rc, c.count - Int(stream.avail_out))
                }
                if out.count + produced > maxBytes { throw GzipError.tooLarge }
                out.append(contentsOf: chunk[0..<produced])
                switch rc {
                case Z_STREAM_END:
                    if stream.avail_in == 0 { return out }
                    // Another member follows.
                    guard inflateReset(&stream) == Z_OK else { throw GzipError.corrupt("reset failed") }
                case Z_OK:
                    continue
                case Z_BUF_ERROR:
                    if stream.avail_in == 0 { throw GzipError.corrupt("truncated gzip stream") }
                    continue
                default:
                    let msg = stream.msg.map { String(cString: $0) } ?? "error \(rc)"
                    throw GzipError.corrupt(msg)
                }
            }
        }
    }

    /// Deflates chunks into one gzip member. Level 1: speed matters more than ratio (about
    /// 30-100 MB/s). Pure and thread-safe: the pull path compresses large bodies on the worker
    /// pool and only bodies of at most 64 KiB on the loop.
    public static func compress(_ chunks: [[UInt8]], level: Int32 = 1) -> [UInt8] {
        var stream = z_stream()
        precondition(rtp_deflate_init_gzip(&stream, level) == Z_OK)
        defer { deflateEnd(&stream) }
        let total = chunks.reduce(0) { $0 + $1.count }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(total))) + 64)
        var produced = 0
        for (i, chunk) in chunks.enumerated() {
            let flush = i == chunks.count - 1 ? Z_FINISH : Z_NO_FLUSH
            chunk.withUnsafeBufferPointer { inBuf in
                stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
                stream.avail_in = UInt32(inBuf.count)
                out.withUnsafeMutableBufferPointer { o in
                    stream.next_out = o.baseAddress! + produced
                    stream.avail_out = UInt32(o.count - produced)
                    let rc = deflate(&stream, flush)
                    precondition(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR)
                    produced = o.count - Int(stream.avail_out)
                }
            }
        }
        if chunks.isEmpty {
            out.withUnsafeMutableBufferPointer { o in
                stream.next_out = o.baseAddress
                stream.avail_out = UInt32(o.count)
                _ = deflate(&stream, Z_FINISH)
                produced = o.count - Int(stream.avail_out)
            }
        }
        out.removeSubrange(produced...)
        return out
    }
}
