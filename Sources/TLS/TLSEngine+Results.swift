import COpenSSL

extension TLSEngine {
    /// THE mapping from an SSL_* return code (plus SSL_get_error and the per-thread error
    /// queue) to what the event loop does next. The caller cleared the queue before the SSL
    /// call (SSL_get_error is only reliable then); failures drain it completely here. The
    /// hot paths (success, want-read) leave nothing behind and skip a second clear.
    ///
    /// | OpenSSL                    | TLSResult                                         |
    /// |----------------------------|---------------------------------------------------|
    /// | return > 0                 | .ok                                               |
    /// | SSL_ERROR_WANT_READ        | .wantRead (feed more ciphertext)                  |
    /// | SSL_ERROR_ZERO_RETURN      | .closed (peer's close_notify)                     |
    /// | SSL_ERROR_WANT_WRITE       | .failed(internal): the engine's output never blocks |
    /// | SSL_ERROR_SYSCALL          | .failed(unexpectedEOF), or what the queue says    |
    /// | SSL_ERROR_SSL              | .failed(classified: certificate, alert, protocol) |
    /// | WANT_X509_LOOKUP, ASYNC... | .failed(internal): no such callbacks installed    |
    func mapResult(_ returnCode: Int32) -> TLSResult {
        if returnCode > 0 {
            return .ok
        }
        let code = SSL_get_error(ssl, returnCode)
        switch code {
        case SSL_ERROR_NONE:
            ERR_clear_error()
            return .ok
        case SSL_ERROR_WANT_READ:
            return .wantRead
        case SSL_ERROR_ZERO_RETURN:
            ERR_clear_error()
            closeNotifyReceived = true
            return .closed
        case SSL_ERROR_WANT_WRITE:
            let detail = OpenSSLErrorQueue.drainLine()
            return .failed(TLSFailure(.internal, "TLS: OpenSSL wanted to write although output never blocks (\(detail))"))
        case SSL_ERROR_SYSCALL:
            let errors = OpenSSLErrorQueue.drain()
            if errors.isEmpty {
                return .failed(TLSFailure(.unexpectedEOF, "TLS: connection ended without close_notify"))
            }
            return .failed(classify(errors))
        case SSL_ERROR_SSL:
            return .failed(classify(OpenSSLErrorQueue.drain()))
        default:
            let detail = OpenSSLErrorQueue.drainLine()
            return .failed(TLSFailure(.internal, "TLS: unexpected SSL_get_error \(code) (\(detail))"))
        }
    }

    /// Turns a fatal error queue into a precise failure: our certificate verdict first, then
    /// a missing certificate, an alert from the peer, end of stream, anything else.
    private func classify(_ errors: [QueuedError]) -> TLSFailure {
        let detail = errors.isEmpty ? "no OpenSSL detail" : errors.map(\.text).joined(separator: "; ")
        if let refusal = verifyRefusal {
            return TLSFailure(.peerCertificate(refusal.problem), refusal.reason)
        }
        let verifyCode = Int32(SSL_get_verify_result(ssl))
        let verifyFailed = errors.contains { $0.library == ERR_LIB_SSL && $0.reason == SSL_R_CERTIFICATE_VERIFY_FAILED }
        if verifyFailed, verifyCode != X509_V_OK {
            return certificateFailure(verifyCode: verifyCode)
        }
        for error in errors where error.library == ERR_LIB_SSL {
            if error.reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE {
                return TLSFailure(.peerCertificate(.missing), "certificate refused: client certificate required, none presented")
            }
            if error.reason >= SSL_AD_REASON_OFFSET {
                return TLSFailure(.alertReceived, "TLS alert from peer: \(error.text)")
            }
            if error.reason == SSL_R_UNEXPECTED_EOF_WHILE_READING {
                return TLSFailure(.unexpectedEOF, "TLS: connection ended without close_notify")
            }
        }
        return TLSFailure(.protocolViolation, "TLS: \(detail)")
    }

    private func certificateFailure(verifyCode: Int32) -> TLSFailure {
        let problem: CertificateProblem
        let summary: String
        switch verifyCode {
        case X509_V_ERR_CERT_REVOKED:
            (problem, summary) = (.revoked, "certificate revoked")
        case X509_V_ERR_CERT_HAS_EXPIRED:
            (problem, summary) = (.expired, "certificate expired")
        case X509_V_ERR_CERT_NOT_YET_VALID:
            (problem, summary) = (.notYetValid, "certificate not yet valid")
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
             X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
             X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            (problem, summary) = (.unknownCA, "unknown CA")
        case X509_V_ERR_INVALID_PURPOSE:
            (problem, summary) = (.wrongPurpose, "certificate not valid for this purpose (key usage / extended key usage)")
        case X509_V_ERR_UNABLE_TO_GET_CRL, X509_V_ERR_CRL_HAS_EXPIRED, X509_V_ERR_CRL_NOT_YET_VALID,
             X509_V_ERR_CRL_SIGNATURE_FAILURE, X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE,
             X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD, X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD,
             X509_V_ERR_KEYUSAGE_NO_CRL_SIGN, X509_V_ERR_DIFFERENT_CRL_SCOPE:
            (problem, summary) = (.crlUnusable, "revocation status unknown (CRL)")
        default:
            (problem, summary) = (.invalid, "certificate invalid")
        }
        var reason = "certificate refused: \(summary) (X509 error \(verifyCode): \(String(cString: X509_verify_cert_error_string(Int(verifyCode)))))"
        if let subject = verifyFailureSubject { reason += ": \(subject)" }
        return TLSFailure(.peerCertificate(problem), reason)
    }

    /// Called by OpenSSL for each certificate of the client's chain, top down. Keeps
    /// OpenSSL's verdict (recording the failing subject) and adds ours at the leaf: extended
    /// key usage clientAuth (if required) and an ISPB under the context's rule.
    func verifyCertificate(preverifyOK: Bool, storeContext: OpaquePointer) -> Bool {
        let cert = X509_STORE_CTX_get_current_cert(storeContext)
        guard preverifyOK else {
            if verifyFailureSubject == nil { verifyFailureSubject = X509Text.subject(cert) }
            return false
        }
        guard X509_STORE_CTX_get_error_depth(storeContext) == 0, let cert, let rule = context.ispbRule else {
            return true
        }
        let subject = X509Text.subject(cert)
        if context.requireClientAuthExtendedKeyUsage {
            let hasEKU = X509_get_extension_flags(cert) & UInt32(EXFLAG_XKUSAGE) != 0
            let clientAuth = X509_get_extended_key_usage(cert) & UInt32(XKU_SSL_CLIENT) != 0
            if !(hasEKU && clientAuth) {
                return refuse(storeContext, .wrongPurpose,
                              "certificate refused: no extended key usage clientAuth: \(subject)")
            }
        }
        if rule.ispb(inValues: X509Text.subjectValues(cert, nid: rule.nid)) == nil {
            return refuse(storeContext, .noISPB, "certificate refused: no single ISPB in subject under rule \(rule): \(subject)")
        }
        return true
    }

    private func refuse(_ storeContext: OpaquePointer, _ problem: CertificateProblem, _ reason: String) -> Bool {
        verifyRefusal = (problem, reason)
        X509_STORE_CTX_set_error(storeContext, X509_V_ERR_APPLICATION_VERIFICATION)
        return false
    }
}

/// SSL_CTX verify callback of server contexts: finds the engine through SSL ex_data.
let verifyCallback: @convention(c) (Int32, OpaquePointer?) -> Int32 = { preverifyOK, storeContext in
    guard let storeContext,
          let ssl = X509_STORE_CTX_get_ex_data(storeContext, SSL_get_ex_data_X509_STORE_CTX_idx()),
          let engine = SSL_get_ex_data(OpaquePointer(ssl), engineExDataIndex) else { return 0 }
    let verified = Unmanaged<TLSEngine>.fromOpaque(engine).takeUnretainedValue()
        .verifyCertificate(preverifyOK: preverifyOK != 0, storeContext: storeContext)
    return verified ? 1 : 0
}
