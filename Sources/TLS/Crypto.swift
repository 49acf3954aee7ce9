import COpenSSL

/// Small cryptographic primitives for the rest of the hub (e.g. PI-Pull-Next tokens), so
/// that OpenSSL stays imported by this module only.
public enum Crypto {
    /// Bytes of an HMAC-SHA256 tag.
    public static let sha256ByteCount = 32

    /// HMAC-SHA256 of `message` under `key` (RFC 2104).
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        key.withUnsafeBytes { key in
            message.withUnsafeBytes { message in hmacSHA256(key: key, message: message) }
        }
    }

    /// HMAC-SHA256 over raw buffers. Uses a pre-fetched HMAC/SHA256 template, so a call
    /// costs one context copy, no algorithm lookup.
    public static func hmacSHA256(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) -> [UInt8] {
        guard let context = EVP_MAC_CTX_dup(hmacSHA256Template) else {
            fatalError("Crypto: EVP_MAC_CTX_dup failed: \(OpenSSLErrorQueue.drainLine())")
        }
        defer { EVP_MAC_CTX_free(context) }
        // An empty key is valid HMAC; OpenSSL wants a non-null pointer for it.
        let emptyKey: [UInt8] = [0]
        let ok = emptyKey.withUnsafeBytes { empty in
            EVP_MAC_init(context, (key.isEmpty ? empty : key).baseAddress?.assumingMemoryBound(to: UInt8.self),
                         key.count, nil) == 1
        }
        precondition(ok, "Crypto: HMAC key setup failed: \(OpenSSLErrorQueue.drainLine())")
        return finish(context, message)
    }

    /// An HMAC-SHA256 key prepared once (key schedule done), for hot paths that sign with
    /// a fixed key, e.g. PI-Pull-Next tokens. Safe to share across threads: each call works
    /// on its own copy of the prepared state.
    public final class HMACSHA256Key: @unchecked Sendable {
        private let prepared: OpaquePointer

        public init(_ key: [UInt8]) {
            guard let context = EVP_MAC_CTX_dup(hmacSHA256Template) else {
                fatalError("Crypto: EVP_MAC_CTX_dup failed: \(OpenSSLErrorQueue.drainLine())")
            }
            let emptyKey: [UInt8] = [0]
            let ok = (key.isEmpty ? emptyKey : key).withUnsafeBytes {
                EVP_MAC_init(context, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count, nil) == 1
            }
            precondition(ok, "Crypto: HMAC key setup failed: \(OpenSSLErrorQueue.drainLine())")
            prepared = context
        }

        deinit { EVP_MAC_CTX_free(prepared) }

        /// The tag of `message` (equal to `Crypto.hmacSHA256(key:message:)`).
        public func tag(_ message: UnsafeRawBufferPointer) -> [UInt8] {
            guard let context = EVP_MAC_CTX_dup(prepared) else {
                fatalError("Crypto: EVP_MAC_CTX_dup failed: \(OpenSSLErrorQueue.drainLine())")
            }
            defer { EVP_MAC_CTX_free(context) }
            return finish(context, message)
        }

        public func tag(_ message: [UInt8]) -> [UInt8] { message.withUnsafeBytes { tag($0) } }
    }

    fileprivate static func finish(_ context: OpaquePointer, _ message: UnsafeRawBufferPointer) -> [UInt8] {
        var tag = [UInt8](repeating: 0, count: sha256ByteCount)
        var tagCount = 0
        let ok = EVP_MAC_update(context, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count) == 1
            && tag.withUnsafeMutableBytes {
                EVP_MAC_final(context, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), &tagCount, $0.count) == 1
            }
        precondition(ok && tagCount == sha256ByteCount, "Crypto: HMAC-SHA256 failed: \(OpenSSLErrorQueue.drainLine())")
        return tag
    }

    /// `count` bytes from OpenSSL's CSPRNG. A failing CSPRNG is fatal: nothing secret can
    /// be made without it.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0)
        var bytes = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return bytes }
        let ok = bytes.withUnsafeMutableBytes { RAND_bytes($0.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32($0.count)) }
        precondition(ok == 1, "Crypto: RAND_bytes failed: \(OpenSSLErrorQueue.drainLine())")
        return bytes
    }

    /// Equality whose running time does not depend on where the inputs differ (lengths are
    /// not secret).
    public static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        guard !lhs.isEmpty else { return true }
        return lhs.withUnsafeBytes { l in rhs.withUnsafeBytes { r in CRYPTO_memcmp(l.baseAddress, r.baseAddress, l.count) == 0 } }
    }

    /// An HMAC context with SHA256 selected and no key: copied per call, never used directly.
    nonisolated(unsafe) fileprivate static let hmacSHA256Template: OpaquePointer = {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else {
            fatalError("Crypto: HMAC unavailable: \(OpenSSLErrorQueue.drainLine())")
        }
        defer { EVP_MAC_free(mac) }
        guard let context = EVP_MAC_CTX_new(mac) else {
            fatalError("Crypto: EVP_MAC_CTX_new failed: \(OpenSSLErrorQueue.drainLine())")
        }
        let ok = "SHA256".withCString { name in
            "digest".withCString { key in
                let params = [OSSL_PARAM_construct_utf8_string(key, UnsafeMutablePointer(mutating: name), 0),
                              OSSL_PARAM_construct_end()]
                return EVP_MAC_CTX_set_params(context, params) == 1
            }
        }
        precondition(ok, "Crypto: cannot select SHA256 for HMAC: \(OpenSSLErrorQueue.drainLine())")
        return context
    }()
}
