/// The one table of TLS limits and defaults (units last in every name).
public enum TLSDefaults {
    /// Lowest protocol version accepted.
    public static let minVersion: TLSVersion = .tls12
    /// Highest protocol version offered.
    public static let maxVersion: TLSVersion = .tls13
    /// TLS 1.2 cipher list (OpenSSL syntax). ICOM's ECDHE-RSA-AES128-GCM-SHA256 first;
    /// forward-secret AEAD suites only.
    public static let cipherList = [
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-CHACHA20-POLY1305",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ].joined(separator: ":")
    /// TLS 1.3 cipher suites (OpenSSL's defaults).
    public static let ciphersuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    /// Lifetime of a resumable session (cache entry or ticket). Bounds how long a peer is
    /// trusted without its chain being verified again (a reload also ends resumption).
    public static let sessionTimeoutSeconds = 600
    /// Server-side session cache size (TLS 1.2 session-id resumption); tickets need no state.
    public static let sessionCacheEntriesMax = 20_000
    /// TLS 1.3 tickets sent after a full handshake (OpenSSL's default is 2). One is enough:
    /// OpenSSL's stateless tickets can be reused, and each carries the client certificate.
    static let ticketsPerHandshake = 1
    /// Longest accepted client chain below the trust anchor.
    public static let verifyDepthMax: Int32 = 4
    /// The ISPB rule: the subject CN is exactly 8 digits.
    public static let ispbRule = "CN:whole"
    /// Require extended key usage clientAuth in client certificates.
    public static let requireClientAuthExtendedKeyUsage = true

    /// Most plaintext one TLS record holds (RFC 8446 §5.1, RFC 5246 §6.2.1; OpenSSL's
    /// default max_send_fragment).
    static let recordPlaintextBytesMax = 16_384
    /// Bytes a record adds to its plaintext with the AEAD suites we offer (TLS 1.3: 5 header +
    /// 1 content type + 16 tag; TLS 1.2 GCM: 5 + 8 explicit nonce + 16); an estimate for
    /// reserving room, not a limit.
    static let recordOverheadBytes = 29
    /// Plaintext decrypted per SSL_read call by `readPlaintext(into: inout [UInt8])`.
    static let plaintextChunkBytes = recordPlaintextBytesMax
    /// Consumed inbound ciphertext is compacted away once this many bytes sit before the
    /// read index.
    static let inboundCompactBytesMin = 16_384
    /// Session id context (≤ 32 bytes): sessions resume only on a context with the same value.
    static let sessionIDContext = "rtpstream-mtls-v1"
}
