import TLS

extension HubConfiguration {
    /// The API listener's TLS settings, or nil in plaintext mode.
    func tlsServerConfig() throws -> TLSServerConfig? {
        guard !insecurePlaintext, let cert = tlsCert, let key = tlsKey, let ca = tlsClientCA else { return nil }
        let rule: ISPBRule
        do {
            rule = try ISPBRule(parsing: tlsISPBRule)
        } catch {
            throw ConfigurationError("--tls-ispb-rule: \(error)")
        }
        var c = TLSServerConfig(certPath: cert, keyPath: key, clientCAPath: ca, crlPath: tlsCRL,
                                minVersion: TLSVersion(parsing: tlsMinVersion) ?? TLSDefaults.minVersion,
                                maxVersion: TLSVersion(parsing: tlsMaxVersion) ?? TLSDefaults.maxVersion,
                                ispbRule: rule)
        if let tlsCiphers { c.cipherList = tlsCiphers }
        if let tlsCiphersuites { c.ciphersuites = tlsCiphersuites }
        return c
    }

    /// Builds the context (reads every file); one line naming the option on failure
    /// (`--tls-key: /k.pem: does not match certificate /c.pem`).
    func makeTLSContext() throws -> TLSContext? {
        guard let c = try tlsServerConfig() else { return nil }
        try Self.checkReadableFile(c.certPath, option: "tls-cert")
        try Self.checkReadableFile(c.keyPath, option: "tls-key")
        try Self.checkReadableFile(c.clientCAPath, option: "tls-client-ca")
        if let crl = c.crlPath { try Self.checkReadableFile(crl, option: "tls-crl") }
        do {
            return try TLSContext.server(c)
        } catch {
            throw ConfigurationError(Self.namingOption(error.message))
        }
    }

    /// TLS errors start with the file's role ("TLS key /k.pem: ...") or "TLS: " for a setting;
    /// the role becomes the option that names that file or setting.
    static func namingOption(_ message: String) -> String {
        let roles: [(prefix: String, option: String)] = [
            ("TLS certificate ", "tls-cert"), ("TLS key ", "tls-key"), ("TLS client CA ", "tls-client-ca"),
            ("TLS CRL ", "tls-crl"), ("TLS: no usable cipher", "tls-ciphers"),
            ("TLS: no usable suite", "tls-ciphersuites"), ("TLS: minimum version", "tls-min-version"),
        ]
        for (prefix, option) in roles where message.hasPrefix(prefix) {
            let rest = prefix.hasPrefix("TLS: ") ? message.dropFirst("TLS: ".count) : message.dropFirst(prefix.count)
            return "--\(option): \(rest)"
        }
        return message
    }
}
