import COpenSSL
import CoreMetrics

/// An immutable OpenSSL SSL_CTX: certificates, trust, versions, ciphers, session cache.
///
/// Thread safety: a context is never mutated after it is built; OpenSSL locks the SSL_CTX's
/// session cache and reference count internally, so engines on any thread may share it.
/// Reload = build a new context from the same config and use it for new engines; each engine
/// keeps a strong reference to its own context (and OpenSSL's SSL holds an SSL_CTX reference),
/// so old connections are unaffected and the old SSL_CTX is freed with its last engine.
public final class TLSContext: @unchecked Sendable {
    let pointer: OpaquePointer
    /// Server contexts: how the ISPB is read; nil for clients.
    let ispbRule: ISPBRule?
    let requireClientAuthExtendedKeyUsage: Bool
    /// Client contexts: SNI host name (never an IP literal).
    let sniHostName: String?
    let metrics: TLSMetrics?
    /// Server contexts: the CRLs loaded (kept to check connections that predate a reload).
    private let revocationLists: [X509RevocationList]

    /// True for contexts built by `server(_:)`.
    public var isServer: Bool { ispbRule != nil }
    /// One line describing what was loaded (for the start-up and reload log).
    public let summary: String

    private init(pointer: OpaquePointer, ispbRule: ISPBRule?, requireClientAuthExtendedKeyUsage: Bool,
                 sniHostName: String?, metrics: TLSMetrics?, summary: String, revocationLists: [X509RevocationList] = []) {
        self.pointer = pointer
        self.revocationLists = revocationLists
        self.ispbRule = ispbRule
        self.requireClientAuthExtendedKeyUsage = requireClientAuthExtendedKeyUsage
        self.sniHostName = sniHostName
        self.metrics = metrics
        self.summary = summary
    }

    deinit { SSL_CTX_free(pointer) }

    /// Whether this context's CRLs revoke the certificate `identity` was read from (issuer
    /// name and serial number). A reload checks the connections established under the previous
    /// context with it, so a revocation reaches keep-alive connections too.
    public func revokes(_ identity: PeerIdentity) -> Bool {
        guard !revocationLists.isEmpty, !identity.serialNumberHex.isEmpty else { return false }
        var bignum: OpaquePointer?
        guard BN_hex2bn(&bignum, identity.serialNumberHex) > 0, let bignum else { return false }
        defer { BN_free(bignum) }
        guard let serial = BN_to_ASN1_INTEGER(bignum, nil) else { ERR_clear_error(); return false }
        defer { ASN1_INTEGER_free(serial) }
        for list in revocationLists where list.issuer == identity.issuer {
            var entry: OpaquePointer?
            if X509_CRL_get0_by_serial(list.pointer, &entry, serial) == 1 { return true }
        }
        return false
    }

    /// Builds the API listener's context. Throws a one-line reason naming the file or setting.
    /// Metrics go to `metricsFactory`, by default the process-wide `MetricsSystem`.
    public static func server(_ config: TLSServerConfig,
                              metricsFactory: (any MetricsFactory)? = nil) throws(TLSConfigError) -> TLSContext {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw TLSConfigError("TLS: cannot create server context: \(OpenSSLErrorQueue.drainLine())")
        }
        do throws(TLSConfigError) {
            try configureProtocol(ctx, min: config.minVersion, max: config.maxVersion,
                                  cipherList: config.cipherList, ciphersuites: config.ciphersuites)
            rtp_SSL_CTX_set_server_options(ctx)
            // Idle keep-alive connections hold no record buffers (≈ 17 KiB each), as nginx
            // does; the malloc and free per burst cost ≈ 1% of a request (docs/benchmarks.md).
            // Clients (the load generator among them) keep theirs.
            rtp_SSL_CTX_set_mode_release_buffers(ctx)
            let leaf = try loadIdentity(ctx, certPath: config.certPath, keyPath: config.keyPath,
                                        role: "TLS certificate", refuseExpired: true)
            let caCount = try loadClientTrust(ctx, caPath: config.clientCAPath)
            var crlNextUpdate: Int64?
            var revocationLists: [X509RevocationList] = []
            if let crlPath = config.crlPath {
                (crlNextUpdate, revocationLists) = try loadRevocationLists(ctx, crlPath: crlPath, caPath: config.clientCAPath)
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verifyCallback)
            SSL_CTX_set_verify_depth(ctx, TLSDefaults.verifyDepthMax)
            guard SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1 else {
                throw TLSConfigError("TLS: cannot require the client-authentication purpose: \(OpenSSLErrorQueue.drainLine())")
            }
            try configureSessions(ctx, timeoutSeconds: config.sessionTimeoutSeconds,
                                  cacheEntriesMax: config.sessionCacheEntriesMax)
            let notAfter = leaf.notAfterEpochSeconds
            var summary = "TLS \(config.minVersion)-\(config.maxVersion); certificate \(leaf.subject)"
            if let notAfter { summary += " valid until \(X509Text.iso8601(epochSeconds: notAfter))" }
            summary += "; client CA \(config.clientCAPath) (\(caCount) certificates)"
            if let crlPath = config.crlPath, let crlNextUpdate {
                summary += "; CRL \(crlPath) next update \(X509Text.iso8601(epochSeconds: crlNextUpdate))"
            } else {
                summary += "; no CRL"
            }
            summary += "; ISPB rule \(config.ispbRule)"
            let metrics = TLSMetrics(factory: metricsFactory, serverNotAfterEpochSeconds: notAfter, crlNextUpdateEpochSeconds: crlNextUpdate)
            return TLSContext(pointer: ctx, ispbRule: config.ispbRule,
                              requireClientAuthExtendedKeyUsage: config.requireClientAuthExtendedKeyUsage,
                              sniHostName: nil, metrics: metrics, summary: summary, revocationLists: revocationLists)
        } catch {
            SSL_CTX_free(ctx)
            ERR_clear_error()
            throw error
        }
    }

    /// Builds a client context (load tests, tests). Throws a one-line reason.
    public static func client(_ config: TLSClientConfig) throws(TLSConfigError) -> TLSContext {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw TLSConfigError("TLS: cannot create client context: \(OpenSSLErrorQueue.drainLine())")
        }
        do throws(TLSConfigError) {
            try configureProtocol(ctx, min: config.minVersion, max: config.maxVersion,
                                  cipherList: config.cipherList, ciphersuites: config.ciphersuites)
            rtp_SSL_CTX_set_client_options(ctx)
            if !config.sessionTickets { rtp_SSL_CTX_set_no_ticket(ctx) }
            var summary = "TLS client \(config.minVersion)-\(config.maxVersion)"
            switch (config.certPath, config.keyPath) {
            case let (certPath?, keyPath?):
                // An expired client certificate is loaded: testing servers needs one.
                let leaf = try loadIdentity(ctx, certPath: certPath, keyPath: keyPath,
                                            role: "TLS client certificate", refuseExpired: false)
                summary += "; certificate \(leaf.subject)"
            case (nil, nil):
                summary += "; no certificate"
            default:
                throw TLSConfigError("TLS client: certificate and key must be given together")
            }
            try PEMFile.checkReadable(config.caPath, role: "TLS CA")
            guard SSL_CTX_load_verify_locations(ctx, config.caPath, nil) == 1 else {
                throw TLSConfigError("TLS CA \(config.caPath): \(OpenSSLErrorQueue.drainLine())")
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            var sniHostName: String?
            if let serverName = config.serverName {
                let param = SSL_CTX_get0_param(ctx)
                let isAddress = serverName.contains(":") || serverName.allSatisfy { $0 == "." || $0.isNumber }
                if isAddress {
                    guard X509_VERIFY_PARAM_set1_ip_asc(param, serverName) == 1 else {
                        throw TLSConfigError("TLS client: bad server address \"\(serverName)\"")
                    }
                } else {
                    guard X509_VERIFY_PARAM_set1_host(param, serverName, 0) == 1 else {
                        throw TLSConfigError("TLS client: bad server name \"\(serverName)\"")
                    }
                    sniHostName = serverName
                }
                summary += "; server \(serverName)"
            }
            rtp_SSL_CTX_set_session_cache_off(ctx)  // sessions are kept by the caller (TLSSession)
            return TLSContext(pointer: ctx, ispbRule: nil, requireClientAuthExtendedKeyUsage: false,
                              sniHostName: sniHostName, metrics: nil, summary: summary)
        } catch {
            SSL_CTX_free(ctx)
            ERR_clear_error()
            throw error
        }
    }
}

// MARK: - building blocks

extension TLSContext {
    private static func configureProtocol(_ ctx: OpaquePointer, min: TLSVersion, max: TLSVersion,
                                          cipherList: String, ciphersuites: String) throws(TLSConfigError) {
        guard min.openSSLValue <= max.openSSLValue else {
            throw TLSConfigError("TLS: minimum version \(min) is above maximum version \(max)")
        }
        guard rtp_SSL_CTX_set_min_proto_version(ctx, min.openSSLValue) == 1,
              rtp_SSL_CTX_set_max_proto_version(ctx, max.openSSLValue) == 1 else {
            throw TLSConfigError("TLS: cannot set versions \(min)-\(max): \(OpenSSLErrorQueue.drainLine())")
        }
        if min == .tls12 {
            guard SSL_CTX_set_cipher_list(ctx, cipherList) == 1 else {
                throw TLSConfigError("TLS: no usable cipher in cipher list \"\(cipherList)\"")
            }
        }
        if max == .tls13 {
            guard SSL_CTX_set_ciphersuites(ctx, ciphersuites) == 1 else {
                throw TLSConfigError("TLS: no usable suite in TLS 1.3 ciphersuites \"\(ciphersuites)\"")
            }
        }
        // Swift may move a buffer between a write that wanted more input and its retry.
        rtp_SSL_CTX_set_mode_accept_moving_write_buffer(ctx)
        // The BIO is memory: reading ahead costs nothing and halves the BIO calls per record.
        rtp_SSL_CTX_set_read_ahead(ctx)
    }

    /// Certificate chain (leaf first) and matching private key.
    private static func loadIdentity(_ ctx: OpaquePointer, certPath: String, keyPath: String,
                                     role: String, refuseExpired: Bool) throws(TLSConfigError) -> X509Certificate {
        let chain = try PEMFile.readCertificates(certPath, role: role)
        let leaf = chain[0]
        if refuseExpired, X509_cmp_current_time(X509_get0_notAfter(leaf.pointer)) < 0 {
            let when = leaf.notAfterEpochSeconds.map { X509Text.iso8601(epochSeconds: $0) } ?? "?"
            throw TLSConfigError("\(role) \(certPath): expired at \(when)")
        }
        guard SSL_CTX_use_certificate_chain_file(ctx, certPath) == 1 else {
            throw TLSConfigError("\(role) \(certPath): \(OpenSSLErrorQueue.drainLine())")
        }
        let key = try PEMFile.readPrivateKey(keyPath, role: "TLS key")
        guard SSL_CTX_use_PrivateKey(ctx, key.pointer) == 1 else {
            // OpenSSL compares the key with the certificate here ("key values mismatch").
            throw TLSConfigError("TLS key \(keyPath): does not match certificate \(certPath) (\(OpenSSLErrorQueue.drainLine()))")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            ERR_clear_error()
            throw TLSConfigError("TLS key \(keyPath): does not match certificate \(certPath)")
        }
        return leaf
    }

    /// Trust anchors for client certificates, and the CA names sent in CertificateRequest.
    private static func loadClientTrust(_ ctx: OpaquePointer, caPath: String) throws(TLSConfigError) -> Int {
        let certificates = try PEMFile.readCertificates(caPath, role: "TLS client CA")
        guard SSL_CTX_load_verify_locations(ctx, caPath, nil) == 1 else {
            throw TLSConfigError("TLS client CA \(caPath): \(OpenSSLErrorQueue.drainLine())")
        }
        guard let names = SSL_load_client_CA_file(caPath), rtp_sk_X509_NAME_num(names) > 0 else {
            throw TLSConfigError("TLS client CA \(caPath): no CA names: \(OpenSSLErrorQueue.drainLine())")
        }
        SSL_CTX_set_client_CA_list(ctx, names)  // takes ownership
        return certificates.count
    }

    /// Adds every CRL of the file and turns on revocation checks of client leaves
    /// (X509_V_FLAG_CRL_CHECK). Each CRL must be issued by a CA of the bundle, carry a valid
    /// signature and not be past its next update. Returns the earliest next update and the lists.
    private static func loadRevocationLists(_ ctx: OpaquePointer, crlPath: String,
                                            caPath: String) throws(TLSConfigError) -> (Int64?, [X509RevocationList]) {
        let lists = try PEMFile.readRevocationLists(crlPath, role: "TLS CRL")
        let authorities = try PEMFile.readCertificates(caPath, role: "TLS client CA")
        let store = SSL_CTX_get_cert_store(ctx)
        var earliestNextUpdate: Int64?
        for list in lists {
            let issuerName = X509_CRL_get_issuer(list.pointer)
            let issuer = authorities.first { X509_NAME_cmp(X509_get_subject_name($0.pointer), issuerName) == 0 }
            guard let issuer else {
                throw TLSConfigError("TLS CRL \(crlPath): issuer \(list.issuer) is not in client CA \(caPath)")
            }
            guard let issuerKey = X509_get0_pubkey(issuer.pointer), X509_CRL_verify(list.pointer, issuerKey) == 1 else {
                ERR_clear_error()
                throw TLSConfigError("TLS CRL \(crlPath): signature of \(list.issuer)'s CRL does not verify")
            }
            if let nextUpdate = X509_CRL_get0_nextUpdate(list.pointer), X509_cmp_current_time(nextUpdate) < 0 {
                let when = list.nextUpdateEpochSeconds.map { X509Text.iso8601(epochSeconds: $0) } ?? "?"
                throw TLSConfigError("TLS CRL \(crlPath): expired (next update was \(when))")
            }
            if let next = list.nextUpdateEpochSeconds {
                earliestNextUpdate = min(earliestNextUpdate ?? next, next)
            }
            guard X509_STORE_add_crl(store, list.pointer) == 1 else {
                throw TLSConfigError("TLS CRL \(crlPath): \(OpenSSLErrorQueue.drainLine())")
            }
        }
        guard X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), UInt(X509_V_FLAG_CRL_CHECK)) == 1 else {
            throw TLSConfigError("TLS CRL \(crlPath): cannot enable CRL checks")
        }
        return (earliestNextUpdate, lists)
    }

    /// Resumption: a server-side cache (TLS 1.2 session ids) plus tickets (TLS 1.2 and 1.3,
    /// keys random per context, so sessions never survive a reload), under one sid context.
    private static func configureSessions(_ ctx: OpaquePointer, timeoutSeconds: Int,
                                          cacheEntriesMax: Int) throws(TLSConfigError) {
        guard timeoutSeconds > 0, cacheEntriesMax > 0 else {
            throw TLSConfigError("TLS: session timeout and cache size must be positive")
        }
        let sidContext = Array(TLSDefaults.sessionIDContext.utf8)
        assert(sidContext.count <= Int(SSL_MAX_SID_CTX_LENGTH))
        guard SSL_CTX_set_session_id_context(ctx, sidContext, UInt32(sidContext.count)) == 1 else {
            throw TLSConfigError("TLS: cannot set the session id context")
        }
        rtp_SSL_CTX_set_session_cache_server(ctx, cacheEntriesMax)
        _ = SSL_CTX_set_timeout(ctx, timeoutSeconds)
        guard SSL_CTX_set_num_tickets(ctx, TLSDefaults.ticketsPerHandshake) == 1 else {
            throw TLSConfigError("TLS: cannot set the number of session tickets")
        }
    }
}
