import COpenSSL

/// Who is at the other end, read once from the peer certificate when the handshake completes.
public struct PeerIdentity: Sendable, Equatable {
    /// Subject distinguished name, RFC 2253 ("CN=12345678,O=Bank").
    public let subject: String
    public let issuer: String
    /// 8 ASCII digits found by the context's `ISPBRule`. Always set on server engines (a
    /// certificate without one is refused); nil on client engines.
    public let ispb: String?
    /// Serial number, upper-case hex.
    public let serialNumberHex: String
    /// End of validity, seconds since the Unix epoch.
    public let notAfterEpochSeconds: Int64

    init(certificate cert: OpaquePointer, ispbRule: ISPBRule?) {
        subject = X509Text.subject(cert)
        issuer = X509Text.name(X509_get_issuer_name(cert))
        ispb = ispbRule.flatMap { $0.ispb(inValues: X509Text.subjectValues(cert, nid: $0.nid)) }
        serialNumberHex = X509Text.serialHex(cert)
        notAfterEpochSeconds = X509Text.epochSeconds(X509_get0_notAfter(cert)) ?? 0
    }
}

/// A resumable session a client engine got from a server; offer it to the next engine that
/// connects to the same server (`TLSEngine(context:resuming:)`). SSL_SESSION is reference
/// counted and not modified once handed out, so it may cross threads.
public final class TLSSession: @unchecked Sendable {
    let pointer: OpaquePointer
    init(owning pointer: OpaquePointer) { self.pointer = pointer }
    deinit { SSL_SESSION_free(pointer) }
}
