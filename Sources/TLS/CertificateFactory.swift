import COpenSSL

/// Makes keys, certificates and CRLs with libcrypto (development and tests only).
enum CertificateFactory {
    /// What a certificate is for; decides its extensions.
    enum Profile {
        /// A root CA: CA:TRUE, keyCertSign + cRLSign.
        case authority
        /// A TLS server: SANs (DNS names and IP addresses), serverAuth.
        case server(dnsNames: [String], ipAddresses: [String])
        /// A TLS client; `extendedKeyUsage` nil leaves the extension out (tests).
        case client(extendedKeyUsage: String?, keyUsage: String = "critical,digitalSignature")
    }

    struct Issuer {
        let certificate: X509Certificate
        let key: PrivateKey
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func rsaKey(bits: UInt32 = 2048) throws(Failure) -> PrivateKey {
        ERR_clear_error()
        guard let key = rtp_EVP_RSA_gen(bits) else {
            throw Failure(description: "RSA key generation failed: \(OpenSSLErrorQueue.drainLine())")
        }
        return PrivateKey(owning: key)
    }

    /// A certificate for `key` with the given subject (attribute, value) pairs, signed by
    /// `issuer` (self-signed when nil), valid from `notBefore` to `notAfter` (Unix seconds).
    static func certificate(subject: [(String, String)], key: PrivateKey, issuer: Issuer?, profile: Profile,
                            notBefore: Int64, notAfter: Int64) throws(Failure) -> X509Certificate {
        ERR_clear_error()
        guard let raw = X509_new() else { throw Failure(description: "X509_new failed") }
        let cert = X509Certificate(owning: raw)
        guard X509_set_version(raw, 2) == 1,  // v3
              ASN1_INTEGER_set_uint64(X509_get_serialNumber(raw), randomSerial()) == 1,
              ASN1_TIME_set(X509_getm_notBefore(raw), time_t(notBefore)) != nil,
              ASN1_TIME_set(X509_getm_notAfter(raw), time_t(notAfter)) != nil,
              X509_set_pubkey(raw, key.pointer) == 1 else {
            throw Failure(description: "certificate fields: \(OpenSSLErrorQueue.drainLine())")
        }
        guard let name = X509_get_subject_name(raw) else { throw Failure(description: "no subject name") }
        for (attribute, value) in subject {
            let added = value.withCString { valueBytes in
                X509_NAME_add_entry_by_txt(name, attribute, rtp_MBSTRING_UTF8(),
                                           UnsafeRawPointer(valueBytes).assumingMemoryBound(to: UInt8.self), -1, -1, 0)
            }
            guard added == 1 else {
                throw Failure(description: "subject \(attribute)=\(value): \(OpenSSLErrorQueue.drainLine())")
            }
        }
        let issuerCert = issuer?.certificate.pointer ?? raw
        guard X509_set_issuer_name(raw, X509_get_subject_name(issuerCert)) == 1 else {
            throw Failure(description: "issuer name: \(OpenSSLErrorQueue.drainLine())")
        }
        var extensions: [(Int32, String)] = []
        switch profile {
        case .authority:
            extensions = [(NID_basic_constraints, "critical,CA:TRUE"),
                          (NID_key_usage, "critical,keyCertSign,cRLSign"),
                          (NID_subject_key_identifier, "hash")]
        case .server(let dnsNames, let ipAddresses):
            let names = dnsNames.map { "DNS:\($0)" } + ipAddresses.map { "IP:\($0)" }
            extensions = [(NID_basic_constraints, "critical,CA:FALSE"),
                          (NID_key_usage, "critical,digitalSignature,keyEncipherment"),
                          (NID_ext_key_usage, "serverAuth"),
                          (NID_subject_alt_name, names.joined(separator: ",")),
                          (NID_subject_key_identifier, "hash"),
                          (NID_authority_key_identifier, "keyid:always")]
        case .client(let extendedKeyUsage, let keyUsage):
            extensions = [(NID_basic_constraints, "critical,CA:FALSE"),
                          (NID_key_usage, keyUsage)]
            if let extendedKeyUsage { extensions.append((NID_ext_key_usage, extendedKeyUsage)) }
            extensions += [(NID_subject_key_identifier, "hash"),
                           (NID_authority_key_identifier, "keyid:always")]
        }
        var v3 = X509V3_CTX()
        X509V3_set_ctx(&v3, issuerCert, raw, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &v3, nid, value) else {
                throw Failure(description: "extension \(value): \(OpenSSLErrorQueue.drainLine())")
            }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(raw, ext, -1) == 1 else {
                throw Failure(description: "extension \(value): \(OpenSSLErrorQueue.drainLine())")
            }
        }
        let signingKey = issuer?.key.pointer ?? key.pointer
        guard X509_sign(raw, signingKey, EVP_sha256()) > 0 else {
            throw Failure(description: "signing: \(OpenSSLErrorQueue.drainLine())")
        }
        return cert
    }

    /// A v2 CRL by `issuer` listing `revoked` (certificates, revoked at `thisUpdate`).
    static func revocationList(issuer: Issuer, revoked: [X509Certificate], thisUpdate: Int64,
                               nextUpdate: Int64) throws(Failure) -> X509RevocationList {
        ERR_clear_error()
        guard let raw = X509_CRL_new() else { throw Failure(description: "X509_CRL_new failed") }
        let list = X509RevocationList(owning: raw)
        guard let thisTime = ASN1_TIME_set(nil, time_t(thisUpdate)) else { throw Failure(description: "time") }
        defer { ASN1_TIME_free(thisTime) }
        guard let nextTime = ASN1_TIME_set(nil, time_t(nextUpdate)) else { throw Failure(description: "time") }
        defer { ASN1_TIME_free(nextTime) }
        guard X509_CRL_set_version(raw, 1) == 1,
              X509_CRL_set_issuer_name(raw, X509_get_subject_name(issuer.certificate.pointer)) == 1,
              X509_CRL_set1_lastUpdate(raw, thisTime) == 1,
              X509_CRL_set1_nextUpdate(raw, nextTime) == 1 else {
            throw Failure(description: "CRL fields: \(OpenSSLErrorQueue.drainLine())")
        }
        for cert in revoked {
            guard let entry = X509_REVOKED_new() else { throw Failure(description: "X509_REVOKED_new failed") }
            guard X509_REVOKED_set_serialNumber(entry, X509_get_serialNumber(cert.pointer)) == 1,
                  X509_REVOKED_set_revocationDate(entry, thisTime) == 1,
                  X509_CRL_add0_revoked(raw, entry) == 1 else {
                X509_REVOKED_free(entry)
                throw Failure(description: "CRL entry: \(OpenSSLErrorQueue.drainLine())")
            }
        }
        guard X509_CRL_sort(raw) == 1 else { throw Failure(description: "CRL sort failed") }
        guard let number = ASN1_INTEGER_new() else { throw Failure(description: "ASN1_INTEGER_new failed") }
        defer { ASN1_INTEGER_free(number) }
        guard ASN1_INTEGER_set_uint64(number, UInt64(thisUpdate)) == 1,
              X509_CRL_add1_ext_i2d(raw, NID_crl_number, number, 0, 0) == 1 else {
            throw Failure(description: "CRL number: \(OpenSSLErrorQueue.drainLine())")
        }
        var v3 = X509V3_CTX()
        X509V3_set_ctx(&v3, issuer.certificate.pointer, nil, nil, raw, 0)
        if let ext = X509V3_EXT_conf_nid(nil, &v3, NID_authority_key_identifier, "keyid:always") {
            defer { X509_EXTENSION_free(ext) }
            guard X509_CRL_add_ext(raw, ext, -1) == 1 else {
                throw Failure(description: "CRL extension: \(OpenSSLErrorQueue.drainLine())")
            }
        }
        guard X509_CRL_sign(raw, issuer.key.pointer, EVP_sha256()) > 0 else {
            throw Failure(description: "CRL signing: \(OpenSSLErrorQueue.drainLine())")
        }
        return list
    }

    // MARK: - PEM text

    static func pem(_ cert: X509Certificate) -> String {
        withMemoryBIO { PEM_write_bio_X509($0, cert.pointer) }
    }

    static func pem(_ key: PrivateKey) -> String {
        withMemoryBIO { PEM_write_bio_PrivateKey($0, key.pointer, nil, nil, 0, nil, nil) }
    }

    static func pem(_ list: X509RevocationList) -> String {
        withMemoryBIO { PEM_write_bio_X509_CRL($0, list.pointer) }
    }

    private static func withMemoryBIO(_ write: (OpaquePointer) -> Int32) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { fatalError("BIO_new failed") }
        defer { BIO_free(bio) }
        precondition(write(bio) == 1, "PEM write failed: \(OpenSSLErrorQueue.drainLine())")
        return X509Text.drain(bio)
    }

    /// Random positive 63-bit serial (never 0).
    private static func randomSerial() -> UInt64 {
        let bytes = Crypto.randomBytes(8)
        let value = bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) } & 0x7fff_ffff_ffff_ffff
        return value == 0 ? 1 : value
    }
}
