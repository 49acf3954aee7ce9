import COpenSSL

/// A TLS protocol version the hub speaks.
public enum TLSVersion: String, Sendable, CaseIterable, CustomStringConvertible {
    case tls12 = "1.2"
    case tls13 = "1.3"

    /// Parses "1.2", "1.3", "TLSv1.2" or "TLSv1.3" (case-insensitive).
    public init?(parsing text: String) {
        var value = text.lowercased()
        if value.hasPrefix("tlsv") { value.removeFirst(4) }
        self.init(rawValue: value)
    }

    public var description: String { "TLSv" + rawValue }

    var openSSLValue: Int32 {
        switch self {
        case .tls12: return TLS1_2_VERSION
        case .tls13: return TLS1_3_VERSION
        }
    }
}

/// Everything the API listener's TLS needs. Paths are PEM files; building a `TLSContext`
/// reads them all, so a reload is "build again from the same config".
public struct TLSServerConfig: Sendable {
    /// Server certificate, optionally followed by its intermediates (leaf first).
    public var certPath: String
    /// Private key of the server certificate (unencrypted PEM).
    public var keyPath: String
    /// CA bundle that client certificates must chain to (`--tls-client-ca`).
    public var clientCAPath: String
    /// Optional CRL file (one or more PEM CRLs, `--tls-crl`); enables revocation checks of
    /// client certificates (leaf only).
    public var crlPath: String?
    public var minVersion: TLSVersion
    public var maxVersion: TLSVersion
    /// TLS 1.2 cipher list, OpenSSL syntax.
    public var cipherList: String
    /// TLS 1.3 cipher suites, OpenSSL syntax.
    public var ciphersuites: String
    /// How the ISPB is read from the client certificate subject.
    public var ispbRule: ISPBRule
    /// Lifetime of resumable sessions (cache entries and tickets).
    public var sessionTimeoutSeconds: Int
    /// Server session cache size.
    public var sessionCacheEntriesMax: Int
    /// Refuse client certificates without extended key usage clientAuth.
    public var requireClientAuthExtendedKeyUsage: Bool

    public init(certPath: String, keyPath: String, clientCAPath: String, crlPath: String? = nil,
                minVersion: TLSVersion = TLSDefaults.minVersion,
                maxVersion: TLSVersion = TLSDefaults.maxVersion,
                cipherList: String = TLSDefaults.cipherList,
                ciphersuites: String = TLSDefaults.ciphersuites,
                ispbRule: ISPBRule = .default,
                sessionTimeoutSeconds: Int = TLSDefaults.sessionTimeoutSeconds,
                sessionCacheEntriesMax: Int = TLSDefaults.sessionCacheEntriesMax,
                requireClientAuthExtendedKeyUsage: Bool = TLSDefaults.requireClientAuthExtendedKeyUsage) {
        self.certPath = certPath
        self.keyPath = keyPath
        self.clientCAPath = clientCAPath
        self.crlPath = crlPath
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.cipherList = cipherList
        self.ciphersuites = ciphersuites
        self.ispbRule = ispbRule
        self.sessionTimeoutSeconds = sessionTimeoutSeconds
        self.sessionCacheEntriesMax = sessionCacheEntriesMax
        self.requireClientAuthExtendedKeyUsage = requireClientAuthExtendedKeyUsage
    }
}

/// A TLS client (load tests, tests): trusts `caPath`, optionally presents a certificate.
public struct TLSClientConfig: Sendable {
    /// Client certificate (leaf first) and its key; both or neither.
    public var certPath: String?
    public var keyPath: String?
    /// CA bundle the server certificate must chain to.
    public var caPath: String
    /// Host name or IP address the server certificate must match (and SNI for names);
    /// nil checks the chain only.
    public var serverName: String?
    public var minVersion: TLSVersion
    public var maxVersion: TLSVersion
    public var cipherList: String
    public var ciphersuites: String
    /// Accept session tickets (TLS 1.2 and 1.3). False makes TLS 1.2 resume by session id,
    /// from the server's session cache.
    public var sessionTickets: Bool

    public init(certPath: String? = nil, keyPath: String? = nil, caPath: String,
                serverName: String? = nil,
                minVersion: TLSVersion = TLSDefaults.minVersion,
                maxVersion: TLSVersion = TLSDefaults.maxVersion,
                cipherList: String = TLSDefaults.cipherList,
                ciphersuites: String = TLSDefaults.ciphersuites,
                sessionTickets: Bool = true) {
        self.certPath = certPath
        self.keyPath = keyPath
        self.caPath = caPath
        self.serverName = serverName
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.cipherList = cipherList
        self.ciphersuites = ciphersuites
        self.sessionTickets = sessionTickets
    }
}

/// A configuration problem, as one line naming the file or setting at fault.
public struct TLSConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
