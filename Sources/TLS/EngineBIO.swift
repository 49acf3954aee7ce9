import COpenSSL

/// The BIO between an engine's SSL and its byte buffers: OpenSSL reads ciphertext from the
/// engine's inbound buffer; the record of a one-record write goes to the engine's
/// `directOutput` first (the socket, when nothing is pending) and whatever that does not take,
/// like every other record, is appended to the outbound buffer, which the caller takes without
/// another copy (`TLSEngine.takeCiphertext`).
/// Writes never block.
enum EngineBIO {
    nonisolated(unsafe) static let method: OpaquePointer = {
        let type = BIO_get_new_index() | BIO_TYPE_SOURCE_SINK
        guard let method = BIO_meth_new(type, "rtpstream-tls-engine") else {
            fatalError("TLS: BIO_meth_new failed: \(OpenSSLErrorQueue.drainLine())")
        }
        let installed = BIO_meth_set_write_ex(method, write) == 1
            && BIO_meth_set_read_ex(method, read) == 1
            && BIO_meth_set_ctrl(method, control) == 1
            && BIO_meth_set_destroy(method, destroy) == 1
        precondition(installed, "TLS: cannot install the engine BIO callbacks")
        return method
    }()

    /// A BIO bound to `engine` (unretained: the engine owns the SSL that owns the BIO).
    static func make(for engine: TLSEngine) -> OpaquePointer {
        guard let bio = BIO_new(method) else {
            fatalError("TLS: BIO_new failed: \(OpenSSLErrorQueue.drainLine())")
        }
        BIO_set_data(bio, Unmanaged.passUnretained(engine).toOpaque())
        BIO_set_init(bio, 1)
        return bio
    }

    private static func engine(_ bio: OpaquePointer?) -> TLSEngine? {
        guard let bio, let data = BIO_get_data(bio) else { return nil }
        return Unmanaged<TLSEngine>.fromOpaque(data).takeUnretainedValue()
    }

    private static let write: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, Int,
                                              UnsafeMutablePointer<Int>?) -> Int32 = { bio, data, count, written in
        rtp_BIO_clear_retry_flags(bio)
        guard let engine = engine(bio), let data else { return 0 }
        var record = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: count)
        if engine.offersDirectOutput, engine.outbound.isEmpty, let direct = engine.directOutput {
            // Nothing waits before this record: offer it straight from OpenSSL's buffer.
            let taken = direct(record)
            record = UnsafeRawBufferPointer(rebasing: record[taken...])
        }
        if !record.isEmpty {
            engine.outbound.append(contentsOf: record.assumingMemoryBound(to: UInt8.self))
        }
        written?.pointee = count
        return 1
    }

    private static let read: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?, Int,
                                             UnsafeMutablePointer<Int>?) -> Int32 = { bio, destination, count, readCount in
        rtp_BIO_clear_retry_flags(bio)
        guard let engine = engine(bio), let destination else { return 0 }
        let copied = engine.consumeInbound(into: UnsafeMutableRawBufferPointer(start: destination, count: count))
        readCount?.pointee = copied
        if copied == 0 {
            rtp_BIO_set_retry_read(bio)  // no bytes yet: SSL_ERROR_WANT_READ, not end of stream
            return 0
        }
        return 1
    }

    private static let control: @convention(c) (OpaquePointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int = {
        bio, command, _, _ in
        switch command {
        case BIO_CTRL_FLUSH:
            return 1  // the outbound buffer is the destination; nothing to flush
        case BIO_CTRL_PENDING:
            return engine(bio)?.inboundCount ?? 0
        case BIO_CTRL_WPENDING:
            return 0
        default:
            return 0
        }
    }

    private static let destroy: @convention(c) (OpaquePointer?) -> Int32 = { bio in
        BIO_set_data(bio, nil)
        BIO_set_init(bio, 0)
        return 1
    }
}
