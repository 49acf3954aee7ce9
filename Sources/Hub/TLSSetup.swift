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

    /// Builds the context (reads every file); one-line reason on failure.
    func makeTLSContext() throws -> TLSContext? {
        guard let c = try tlsServerConfig() else { return nil }
        do {
            return try TLSContext.server(c)
        } catch {
            throw ConfigurationError("TLS: \(error)")
        }
    }
}
