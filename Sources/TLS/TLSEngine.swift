import COpenSSL

/// One TLS connection, without sockets: the event loop feeds it the bytes it read, takes the
/// bytes to write, and reads/writes plaintext in between. Driven by one thread (the loop's).
///
/// After every call, send `takeCiphertext` to the socket: handshake messages, records,
/// session tickets and alerts all appear there.
///
/// Buffers: ciphertext read from the socket is copied once into an inbound buffer that keeps
/// its capacity. The record of a one-record write is offered to `directOutput` (the socket)
/// straight from OpenSSL's buffer while nothing is pending; otherwise, and for what it does not take,
/// OpenSSL appends them to an outbound buffer that the caller takes by swapping arrays (zero
/// copy when the caller's array is empty). Plaintext is decrypted straight into the caller's
/// buffer. In steady state the engine allocates nothing for a one-record response and one
/// ciphertext buffer for a larger one (OpenSSL itself allocates and frees its record buffers
/// per burst on servers: `SSL_MODE_RELEASE_BUFFERS`).
public final class TLSEngine {
    /// The context this engine was made from (kept alive across reloads).
    public let context: TLSContext
    let ssl: OpaquePointer

    var inbound: [UInt8] = []
    var inboundReadIndex = 0
    var outbound: [UInt8] = []

    /// Where the record of a one-record `writePlaintext` goes first while no ciphertext is
    /// pending: typically a socket's `writeNow`, which writes it from OpenSSL's own buffer (no
    /// copy, no queue). Returns how many bytes it took; the rest is kept in order for
    /// `takeCiphertext`. Called inside OpenSSL calls: it must not call back into this engine.
    ///
    /// Only one-record writes are offered: the records of a larger write, a handshake flight,
    /// session tickets and alerts are kept together for one socket write. One write per
    /// record cost more than the copy it saves (on loopback each write runs the whole TCP
    /// path and wakes the reader: 32 KiB responses written as three records each ran at
    /// 0.30 × plaintext, as one write at 0.41–0.47; docs/benchmarks.md). A record OpenSSL
    /// emits inside a one-record write (an alert, a KeyUpdate reply) is offered too; order
    /// holds either way: nothing is offered while ciphertext is pending.
    public var directOutput: ((UnsafeRawBufferPointer) -> Int)?
    /// True only inside a `writePlaintext` that fits in one record (read by the BIO).
    var offersDirectOutput = false

    enum State {
        case handshaking
        case established
        case failed(TLSFailure)
    }
    var state: State = .handshaking
    var closeNotifySent = false
    var closeNotifyReceived = false

    /// Our own reason for refusing a certificate in the verify callback (ISPB, EKU).
    var verifyRefusal: (problem: CertificateProblem, reason: String)?
    /// Subject of the certificate on which chain verification failed.
    var verifyFailureSubject: String?

    /// Set when the handshake completes: the peer certificate's identity.
    public private(set) var peerIdentity: PeerIdentity?

    /// A new connection's engine: a server engine for a server context, a client engine for
    /// a client context. A client may offer a session from an earlier connection.
    public init(context: TLSContext, resuming session: TLSSession? = nil) {
        self.context = context
        ERR_clear_error()
        guard let ssl = SSL_new(context.pointer) else {
            fatalError("TLS: SSL_new failed: \(OpenSSLErrorQueue.drainLine())")
        }
        self.ssl = ssl
        let bio = EngineBIO.make(for: self)
        SSL_set_bio(ssl, bio, bio)  // one BIO both ways; SSL owns it
        guard SSL_set_ex_data(ssl, engineExDataIndex, Unmanaged.passUnretained(self).toOpaque()) == 1 else {
            fatalError("TLS: SSL_set_ex_data failed")
        }
        if context.isServer {
            SSL_set_accept_state(ssl)
        } else {
            if let host = context.sniHostName { _ = rtp_SSL_set_tlsext_host_name(ssl, host) }
            if let session { _ = SSL_set_session(ssl, session.pointer) }
            SSL_set_connect_state(ssl)
        }
        ERR_clear_error()
    }

    deinit {
        // A connection that simply ends (HTTP clients rarely send close_notify; the server
        // closes idle keep-alives) would otherwise have its session removed from the cache
        // and marked not resumable by SSL_free. Like nginx, mark it shut down quietly.
        // Failed connections are not affected: OpenSSL invalidated their session already.
        if handshakeComplete {
            SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN)
        }
        SSL_free(ssl)  // frees the BIO; its destroy callback does not touch the engine
    }

    // MARK: - status

    /// True once the handshake has completed and the peer was accepted.
    public var handshakeComplete: Bool {
        if case .established = state { return true }
        return false
    }

    /// True if this connection resumed an earlier session (no certificate exchange).
    public var sessionReused: Bool { SSL_session_reused(ssl) == 1 }

    /// "TLSv1.2" or "TLSv1.3" once negotiated.
    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    /// The negotiated cipher in OpenSSL's naming (e.g. "ECDHE-RSA-AES128-GCM-SHA256").
    public var cipher: String {
        guard let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else { return "" }
        return String(cString: name)
    }

    /// Client engines: the session to offer on the next connection, once the server has
    /// sent one (TLS 1.3 tickets arrive after the handshake, read by `readPlaintext`).
    public var resumableSession: TLSSession? {
        guard let session = SSL_get1_session(ssl) else { return nil }
        guard SSL_SESSION_is_resumable(session) == 1 else {
            SSL_SESSION_free(session)
            return nil
        }
        return TLSSession(owning: session)
    }

    // MARK: - bytes in and out

    /// Hands the engine ciphertext read from the socket (copied; the buffer may be reused).
    public func feed(_ ciphertext: UnsafeRawBufferPointer) {
        guard !ciphertext.isEmpty else { return }
        if inboundReadIndex >= TLSDefaults.inboundCompactBytesMin, inboundReadIndex * 2 >= inbound.count {
            inbound.removeSubrange(0..<inboundReadIndex)
            inboundReadIndex = 0
        }
        inbound.append(contentsOf: ciphertext.assumingMemoryBound(to: UInt8.self))
    }

    /// Ciphertext fed but not yet consumed by OpenSSL.
    public var inboundCount: Int { inbound.count - inboundReadIndex }

    /// Ciphertext waiting to be written to the socket.
    public var pendingCiphertextCount: Int { outbound.count }

    /// Moves all pending ciphertext into `buffer`. When `buffer` is empty the two arrays are
    /// swapped (no copy; the engine keeps `buffer`'s capacity for the next records), otherwise
    /// the ciphertext is appended.
    public func takeCiphertext(into buffer: inout [UInt8]) {
        guard !outbound.isEmpty else { return }
        if buffer.isEmpty {
            swap(&buffer, &outbound)
        } else {
            buffer.append(contentsOf: outbound)
            outbound.removeAll(keepingCapacity: true)
        }
    }

    /// Called by the BIO: copies up to `destination.count` unread inbound bytes.
    func consumeInbound(into destination: UnsafeMutableRawBufferPointer) -> Int {
        let count = min(destination.count, inbound.count - inboundReadIndex)
        guard count > 0 else { return 0 }
        inbound.withUnsafeBytes { source in
            destination.baseAddress!.copyMemory(from: source.baseAddress! + inboundReadIndex, byteCount: count)
        }
        inboundReadIndex += count
        if inboundReadIndex == inbound.count {
            inbound.removeAll(keepingCapacity: true)
            inboundReadIndex = 0
        }
        return count
    }

    // MARK: - TLS operations

    /// Advances the handshake. A client calls this first to produce its ClientHello; a
    /// server may rely on `readPlaintext`, which also drives the handshake.
    /// `.ok` once complete, `.wantRead` while it needs the peer's next flight.
    public func handshake() -> TLSResult {
        if let settled = settledResult(forWrite: false) { return settled }
        if handshakeComplete { return .ok }
        return perform { SSL_do_handshake(ssl) }
    }

    /// Decrypts into `buffer`. `.ok` when `buffer` filled up (call again: more may be ready),
    /// `.wantRead` when every fed byte was consumed, `.closed` on the peer's close_notify
    /// (bytes before it are delivered), `.failed` on a fatal error.
    public func readPlaintext(into buffer: UnsafeMutableRawBufferPointer) -> (byteCount: Int, result: TLSResult) {
        precondition(!buffer.isEmpty, "TLS: readPlaintext needs room for at least one byte")
        var filled = 0
        while filled < buffer.count {
            if closeNotifyReceived { return (filled, .closed) }
            if case .failed(let failure) = state { return (filled, .failed(failure)) }
            var count = 0
            let result = perform { SSL_read_ex(ssl, buffer.baseAddress! + filled, buffer.count - filled, &count) }
            filled += count
            if result != .ok { return (filled, result) }
            // Every fed byte consumed and nothing buffered inside OpenSSL: another SSL_read
            // could only report want-read. Skipping it saves a call per request.
            if inboundCount == 0, SSL_has_pending(ssl) == 0 { return (filled, .wantRead) }
        }
        return (filled, .ok)
    }

    /// Appends all plaintext decryptable from the fed ciphertext to `buffer`. Returns
    /// `.wantRead` when everything fed was consumed (the normal outcome), `.closed` or `.failed`.
    public func readPlaintext(into buffer: inout [UInt8]) -> TLSResult {
        withUnsafeTemporaryAllocation(byteCount: TLSDefaults.plaintextChunkBytes, alignment: 1) { chunk in
            while true {
                let (count, result) = readPlaintext(into: chunk)
                if count > 0 {
                    buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0..<count])
                        .assumingMemoryBound(to: UInt8.self))
                }
                if result != .ok { return result }
            }
        }
    }

    /// Encrypts all of `bytes` (records of up to 16 KiB; each call ends a record, so hand a
    /// response over in one piece when you can). `.wantRead` if the handshake is not finished
    /// yet: retry with the same bytes after feeding more input. `.closed` after `shutdown()`.
    public func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> TLSResult {
        if let settled = settledResult(forWrite: true) { return settled }
        guard !bytes.isEmpty else { return .ok }
        var written = 0
        offersDirectOutput = bytes.count <= TLSDefaults.recordPlaintextBytesMax
        defer { offersDirectOutput = false }
        if !offersDirectOutput {
            // Its records are appended: room for all of them first, so that the buffer does
            // not grow (and copy what it holds) record by record.
            let records = (bytes.count + TLSDefaults.recordPlaintextBytesMax - 1) / TLSDefaults.recordPlaintextBytesMax
            outbound.reserveCapacity(outbound.count + bytes.count + records * TLSDefaults.recordOverheadBytes)
        }
        let result = perform { SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &written) }
        assert(result != .ok || written == bytes.count, "TLS: partial write without partial-write mode")
        return result
    }

    /// Queues close_notify (sent with the next `takeCiphertext`). The peer's close_notify is
    /// not awaited. Does nothing before the handshake completed or after a failure.
    public func shutdown() {
        guard handshakeComplete, !closeNotifySent else { return }
        ERR_clear_error()
        _ = SSL_shutdown(ssl)  // 0: sent, peer's not yet seen; 1: both; <0 nothing to do
        ERR_clear_error()
        closeNotifySent = true
    }

    /// Results that need no OpenSSL call: failed is sticky; nothing is written after close.
    private func settledResult(forWrite: Bool) -> TLSResult? {
        if case .failed(let failure) = state { return .failed(failure) }
        if forWrite, closeNotifySent { return .closed }
        if !forWrite, closeNotifyReceived { return .closed }
        return nil
    }

    /// Runs one SSL call with a clean error queue, maps its outcome, and completes the
    /// handshake bookkeeping when the call finished it.
    private func perform(_ call: () -> Int32) -> TLSResult {
        OpenSSLErrorQueue.clearIfNeeded()
        let returnCode = call()
        var result = mapResult(returnCode)
        if case .handshaking = state, result == .ok || result == .wantRead, SSL_is_init_finished(ssl) == 1 {
            if let failure = completeHandshake() { result = .failed(failure) }
        }
        if case .failed(let failure) = result {
            state = .failed(failure)
            context.metrics?.failed(failure)
        }
        return result
    }

    /// The identity checks that also cover resumed sessions (the verify callback does not
    /// run then): the ISPB rule, and the certificate's end of validity.
    private func completeHandshake() -> TLSFailure? {
        guard let cert = SSL_get0_peer_certificate(ssl) else {
            if context.isServer {
                return TLSFailure(.peerCertificate(.missing), "client certificate required, none presented")
            }
            return TLSFailure(.peerCertificate(.missing), "server presented no certificate")
        }
        let identity = PeerIdentity(certificate: cert, ispbRule: context.ispbRule)
        if let rule = context.ispbRule, identity.ispb == nil {
            return TLSFailure(.peerCertificate(.noISPB), "certificate refused: no single ISPB in subject under rule \(rule): \(identity.subject)")
        }
        if X509_cmp_current_time(X509_get0_notAfter(cert)) < 0 {
            return TLSFailure(.peerCertificate(.expired), "certificate expired (resumed session): \(identity.subject)")
        }
        peerIdentity = identity
        state = .established
        context.metrics?.handshakeCompleted(version: protocolVersion, resumed: sessionReused)
        return nil
    }
}

/// SSL ex_data slot holding the (unretained) engine, for the verify callback.
let engineExDataIndex: Int32 = {
    let index = rtp_SSL_get_ex_new_index()
    precondition(index >= 0, "TLS: no SSL ex_data index")
    return index
}()
