/// What an engine call asks the event loop to do next. Every call can also have produced
/// ciphertext (handshake messages, records, alerts): flush `takeCiphertext` after each call.
public enum TLSResult: Sendable, Equatable {
    /// The call completed (handshake done, plaintext fully accepted, ...).
    case ok
    /// More ciphertext from the peer is needed: keep reading the socket, then `feed` it.
    case wantRead
    /// The peer sent close_notify (or we did): send pending ciphertext, then close.
    case closed
    /// Fatal: send pending ciphertext (it may carry an alert), then close. Sticky.
    case failed(TLSFailure)
}

/// Why a TLS connection failed, precise enough to log and to count.
public struct TLSFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// We refused the peer's certificate.
        case peerCertificate(CertificateProblem)
        /// The peer aborted with a fatal alert (for a client: often "it refused our certificate").
        case alertReceived
        /// Malformed or unacceptable traffic: no shared version or cipher, bad record, ...
        case protocolViolation
        /// The transport ended without close_notify.
        case unexpectedEOF
        /// A failure that points at a bug or at resource exhaustion.
        case `internal`
    }

    public let kind: Kind
    /// One line for logs: what went wrong, with OpenSSL's own words and the subject when known.
    public let reason: String

    public init(_ kind: Kind, _ reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var description: String { reason }

    /// A short, stable label for a metrics dimension (`certificate_revoked`, `alert`, ...).
    public var label: String {
        switch kind {
        case .peerCertificate(let problem): return "certificate_" + problem.rawValue
        case .alertReceived: return "alert"
        case .protocolViolation: return "protocol"
        case .unexpectedEOF: return "unexpected_eof"
        case .internal: return "internal"
        }
    }
}

/// Why a peer certificate was refused.
public enum CertificateProblem: String, Sendable, CaseIterable {
    /// The client sent no certificate.
    case missing
    /// The chain does not lead to a configured CA ("unknown CA").
    case unknownCA = "unknown_ca"
    case expired
    case notYetValid = "not_yet_valid"
    /// Listed in the configured CRL.
    case revoked
    /// Key usage / extended key usage / purpose does not allow client authentication.
    case wrongPurpose = "wrong_purpose"
    /// The subject yields no ISPB under the configured `ISPBRule`.
    case noISPB = "no_ispb"
    /// CRL checking is on but no valid CRL covers the issuer (missing, expired, bad signature).
    case crlUnusable = "crl_unusable"
    /// Bad signature, malformed, wrong host name, chain too long, ...
    case invalid
}
