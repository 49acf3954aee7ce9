import Glibc

/// Development PKI for `rtpstream certs` and the TLS tests: a CA, a server certificate, client
/// certificates for given ISPBs, a CRL, and optionally the bad certificates tests need.
/// RSA 2048 keys (so ECDHE-RSA suites work), SHA-256 signatures, PEM files:
///
/// | file                                   | what                                            |
/// |----------------------------------------|-------------------------------------------------|
/// | `ca.pem`, `ca-key.pem`                 | development CA (`--tls-client-ca`)              |
/// | `server.pem`, `server-key.pem`         | server; SAN localhost, 127.0.0.1, ::1 (+ names) |
/// | `client-<ISPB>.pem`, `-key.pem`        | client, subject `CN=<ISPB>`, EKU clientAuth     |
/// | `crl.pem`                              | CRL by the CA (`--tls-crl`): lists client-revoked |
/// | `other-ca.pem`, `other-ca-key.pem`     | test: a CA nobody trusts                        |
/// | `client-other-ca.pem`, `-key.pem`      | test: client signed by the other CA             |
/// | `client-expired.pem`, `-key.pem`       | test: client whose validity ended yesterday     |
/// | `client-revoked.pem`, `-key.pem`       | test: client listed in `crl.pem`                |
///
/// Keys are written with mode 0600. Not for production: keys are unencrypted.
public enum DevCertificates {
    public struct CertificateFiles: Sendable, Equatable {
        public let certificate: String
        public let key: String
    }

    public struct TestFiles: Sendable, Equatable {
        public let otherAuthority: CertificateFiles
        public let otherAuthorityClient: CertificateFiles
        public let expiredClient: CertificateFiles
        public let revokedClient: CertificateFiles
        /// The ISPB in the subjects of the test clients (the first client ISPB).
        public let ispb: String
    }

    public struct Files: Sendable, Equatable {
        public let directory: String
        public let authority: CertificateFiles
        public let server: CertificateFiles
        /// Keyed by ISPB.
        public let clients: [String: CertificateFiles]
        public let crl: String
        public let test: TestFiles?
    }

    public struct Options: Sendable {
        /// One client certificate per ISPB (8 digits each).
        public var clientISPBs: [String]
        /// DNS names of the server certificate (IP SANs 127.0.0.1 and ::1 are always added).
        public var serverDNSNames: [String]
        public var validityDays: Int
        /// Also write the other-CA, expired and revoked clients (needs at least one ISPB).
        public var includeTestCertificates: Bool
        /// Replace existing files; otherwise an existing file is an error.
        public var overwrite: Bool

        public init(clientISPBs: [String], serverDNSNames: [String] = ["localhost"],
                    validityDays: Int = DevCertificates.validityDaysDefault,
                    includeTestCertificates: Bool = false, overwrite: Bool = false) {
            self.clientISPBs = clientISPBs
            self.serverDNSNames = serverDNSNames
            self.validityDays = validityDays
            self.includeTestCertificates = includeTestCertificates
            self.overwrite = overwrite
        }
    }

    public static let validityDaysDefault = 365
    static let authorityValidityDays = 3650
    static let crlValidityDays = 30
    static let serverIPAddresses = ["127.0.0.1", "::1"]
    static let organization = "rtpstream development"

    /// The file names `generate` uses in `directory`.
    public static func layout(directory: String, clientISPBs: [String], includeTestCertificates: Bool) -> Files {
        func pair(_ stem: String) -> CertificateFiles {
            CertificateFiles(certificate: "\(directory)/\(stem).pem", key: "\(directory)/\(stem)-key.pem")
        }
        var clients: [String: CertificateFiles] = [:]
        for ispb in clientISPBs { clients[ispb] = pair("client-\(ispb)") }
        var test: TestFiles?
        if includeTestCertificates, let ispb = clientISPBs.first {
            test = TestFiles(otherAuthority: pair("other-ca"), otherAuthorityClient: pair("client-other-ca"),
                             expiredClient: pair("client-expired"), revokedClient: pair("client-revoked"),
                             ispb: ispb)
        }
        return Files(directory: directory, authority: pair("ca"), server: pair("server"), clients: clients,
                     crl: "\(directory)/crl.pem", test: test)
    }

    /// Creates `directory` if needed and writes the files; returns their paths.
    public static func generate(in directory: String, options: Options) throws(DevCertificatesError) -> Files {
        for ispb in options.clientISPBs where !(ispb.utf8.count == 8 && ispb.utf8.allSatisfy(ISPBRule.isDigit)) {
            throw DevCertificatesError("certs: ISPB \"\(ispb)\" is not 8 digits")
        }
        if options.includeTestCertificates && options.clientISPBs.isEmpty {
            throw DevCertificatesError("certs: test certificates need at least one client ISPB")
        }
        guard options.validityDays > 0 else { throw DevCertificatesError("certs: validity must be positive") }
        let files = layout(directory: directory, clientISPBs: options.clientISPBs,
                           includeTestCertificates: options.includeTestCertificates)
        try makeDirectory(directory)
        if !options.overwrite {
            for path in allPaths(files) where access(path, F_OK) == 0 {
                throw DevCertificatesError("certs: \(path) exists (use overwrite to replace)")
            }
        }
        do {
            try writeAll(files, options: options)
        } catch let failure as CertificateFactory.Failure {
            throw DevCertificatesError("certs: \(failure.description)")
        } catch let error as DevCertificatesError {
            throw error
        } catch {
            throw DevCertificatesError("certs: \(error)")
        }
        return files
    }

    private static func writeAll(_ files: Files, options: Options) throws {
        let now = X509Text.nowEpochSeconds()
        let day: Int64 = 86_400
        let notBefore = now - 3_600  // tolerate small clock skew between machines
        let leafNotAfter = now + Int64(options.validityDays) * day
        let overwrite = options.overwrite

        let caKey = try CertificateFactory.rsaKey()
        let ca = try CertificateFactory.certificate(
            subject: [("O", organization), ("CN", "rtpstream development CA")], key: caKey, issuer: nil,
            profile: .authority, notBefore: notBefore, notAfter: now + Int64(authorityValidityDays) * day)
        let issuer = CertificateFactory.Issuer(certificate: ca, key: caKey)
        try write(ca, caKey, to: files.authority, overwrite: overwrite)

        let serverKey = try CertificateFactory.rsaKey()
        let server = try CertificateFactory.certificate(
            subject: [("O", organization), ("CN", options.serverDNSNames.first ?? "localhost")], key: serverKey,
            issuer: issuer, profile: .server(dnsNames: options.serverDNSNames, ipAddresses: serverIPAddresses),
            notBefore: notBefore, notAfter: leafNotAfter)
        try write(server, serverKey, to: files.server, overwrite: overwrite)

        for ispb in options.clientISPBs {
            let key = try CertificateFactory.rsaKey()
            let cert = try clientCertificate(ispb: ispb, key: key, issuer: issuer, notBefore: notBefore, notAfter: leafNotAfter)
            try write(cert, key, to: files.clients[ispb]!, overwrite: overwrite)
        }

        var revoked: [X509Certificate] = []
        if let test = files.test {
            let otherKey = try CertificateFactory.rsaKey()
            let other = try CertificateFactory.certificate(
                subject: [("O", "untrusted"), ("CN", "rtpstream other CA")], key: otherKey, issuer: nil,
                profile: .authority, notBefore: notBefore, notAfter: now + Int64(authorityValidityDays) * day)
            try write(other, otherKey, to: test.otherAuthority, overwrite: overwrite)
            let otherIssuer = CertificateFactory.Issuer(certificate: other, key: otherKey)

            let foreignKey = try CertificateFactory.rsaKey()
            let foreign = try clientCertificate(ispb: test.ispb, key: foreignKey, issuer: otherIssuer,
                                                notBefore: notBefore, notAfter: leafNotAfter)
            try write(foreign, foreignKey, to: test.otherAuthorityClient, overwrite: overwrite)

            let expiredKey = try CertificateFactory.rsaKey()
            let expired = try clientCertificate(ispb: test.ispb, key: expiredKey, issuer: issuer,
                                                notBefore: now - 30 * day, notAfter: now - day)
            try write(expired, expiredKey, to: test.expiredClient, overwrite: overwrite)

            let revokedKey = try CertificateFactory.rsaKey()
            let revokedCert = try clientCertificate(ispb: test.ispb, key: revokedKey, issuer: issuer,
                                                    notBefore: notBefore, notAfter: leafNotAfter)
            try write(revokedCert, revokedKey, to: test.revokedClient, overwrite: overwrite)
            revoked.append(revokedCert)
        }

        let crl = try CertificateFactory.revocationList(issuer: issuer, revoked: revoked, thisUpdate: notBefore,
                                                         nextUpdate: now + Int64(crlValidityDays) * day)
        try writeFile(CertificateFactory.pem(crl), to: files.crl, mode: 0o644, overwrite: overwrite)
    }

    /// Writes a new `crl.pem` in a directory made by `generate`, signed by its CA, listing the
    /// certificates at `paths` (and `client-revoked.pem` when the directory has it, so the test
    /// certificates stay revoked). Returns the CRL's path. Install it with `--tls-crl` and SIGHUP:
    /// the hub then also closes open connections of the certificates it lists.
    public static func revoke(in directory: String, certificates paths: [String]) throws(DevCertificatesError) -> String {
        let files = layout(directory: directory, clientISPBs: [], includeTestCertificates: false)
        do {
            let issuer = CertificateFactory.Issuer(
                certificate: try PEMFile.readCertificates(files.authority.certificate, role: "CA")[0],
                key: try PEMFile.readPrivateKey(files.authority.key, role: "CA key"))
            var revoked: [X509Certificate] = []
            for path in paths { revoked.append(try PEMFile.readCertificates(path, role: "certificate to revoke")[0]) }
            let testRevoked = "\(directory)/client-revoked.pem"
            if access(testRevoked, F_OK) == 0 && !paths.contains(testRevoked) {
                revoked.append(try PEMFile.readCertificates(testRevoked, role: "certificate to revoke")[0])
            }
            let now = X509Text.nowEpochSeconds()
            let crl = try CertificateFactory.revocationList(issuer: issuer, revoked: revoked, thisUpdate: now - 3_600,
                                                             nextUpdate: now + Int64(crlValidityDays) * 86_400)
            try writeFile(CertificateFactory.pem(crl), to: files.crl, mode: 0o644, overwrite: true)
        } catch let error as DevCertificatesError {
            throw error
        } catch let failure as CertificateFactory.Failure {
            throw DevCertificatesError("certs: \(failure.description)")
        } catch {
            throw DevCertificatesError("certs: \(error)")
        }
        return files.crl
    }

    static func clientCertificate(ispb: String, key: PrivateKey, issuer: CertificateFactory.Issuer,
                                  notBefore: Int64, notAfter: Int64) throws(CertificateFactory.Failure) -> X509Certificate {
        try CertificateFactory.certificate(
            subject: [("O", "\(organization) PSP"), ("CN", ispb)], key: key, issuer: issuer,
            profile: .client(extendedKeyUsage: "clientAuth"), notBefore: notBefore, notAfter: notAfter)
    }

    private static func allPaths(_ files: Files) -> [String] {
        var pairs = [files.authority, files.server] + files.clients.values
        if let test = files.test {
            pairs += [test.otherAuthority, test.otherAuthorityClient, test.expiredClient, test.revokedClient]
        }
        return pairs.flatMap { [$0.certificate, $0.key] } + [files.crl]
    }

    static func write(_ cert: X509Certificate, _ key: PrivateKey, to files: CertificateFiles,
                      overwrite: Bool) throws(DevCertificatesError) {
        try writeFile(CertificateFactory.pem(key), to: files.key, mode: 0o600, overwrite: overwrite)
        try writeFile(CertificateFactory.pem(cert), to: files.certificate, mode: 0o644, overwrite: overwrite)
    }

    static func writeFile(_ text: String, to path: String, mode: mode_t, overwrite: Bool) throws(DevCertificatesError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (overwrite ? O_TRUNC : O_EXCL), mode)
        guard fd >= 0 else { throw DevCertificatesError("certs: \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else { throw DevCertificatesError("certs: \(path): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                throw DevCertificatesError("certs: \(path): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// `mkdir -p` with mode 0700 for new directories.
    static func makeDirectory(_ path: String) throws(DevCertificatesError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw DevCertificatesError("certs: \(prefix): \(String(cString: strerror(errno)))")
            }
        }
    }
}

/// Why the development certificates could not be written (one line).
public struct DevCertificatesError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
