import COpenSSL
import Glibc

/// An owned X509* (freed on deinit).
final class X509Certificate {
    let pointer: OpaquePointer
    init(owning pointer: OpaquePointer) { self.pointer = pointer }
    deinit { X509_free(pointer) }

    var subject: String { X509Text.subject(pointer) }
    var notAfterEpochSeconds: Int64? { X509Text.epochSeconds(X509_get0_notAfter(pointer)) }
}

/// An owned X509_CRL*.
final class X509RevocationList {
    let pointer: OpaquePointer
    init(owning pointer: OpaquePointer) { self.pointer = pointer }
    deinit { X509_CRL_free(pointer) }

    var issuer: String { X509Text.name(X509_CRL_get_issuer(pointer)) }
    var nextUpdateEpochSeconds: Int64? { X509Text.epochSeconds(X509_CRL_get0_nextUpdate(pointer)) }
}

/// An owned EVP_PKEY*.
final class PrivateKey {
    let pointer: OpaquePointer
    init(owning pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }
}

/// Reading PEM files, with one-line errors that name the file.
enum PEMFile {
    /// Fails unless `path` is a readable file.
    static func checkReadable(_ path: String, role: String) throws(TLSConfigError) {
        var info = stat()
        if stat(path, &info) != 0 || access(path, R_OK) != 0 {
            throw TLSConfigError("\(role) \(path): \(String(cString: strerror(errno)))")
        }
        if (info.st_mode & S_IFMT) != S_IFREG {
            throw TLSConfigError("\(role) \(path): not a regular file")
        }
    }

    static func readCertificates(_ path: String, role: String) throws(TLSConfigError) -> [X509Certificate] {
        try read(path, role: role, what: "certificate") { bio in
            PEM_read_bio_X509(bio, nil, nil, nil).map(X509Certificate.init(owning:))
        }
    }

    static func readRevocationLists(_ path: String, role: String) throws(TLSConfigError) -> [X509RevocationList] {
        try read(path, role: role, what: "CRL") { bio in
            PEM_read_bio_X509_CRL(bio, nil, nil, nil).map(X509RevocationList.init(owning:))
        }
    }

    /// The first private key of the file (unencrypted PEM; an encrypted key is an error).
    static func readPrivateKey(_ path: String, role: String) throws(TLSConfigError) -> PrivateKey {
        try checkReadable(path, role: role)
        ERR_clear_error()
        guard let bio = BIO_new_file(path, "r") else {
            throw TLSConfigError("\(role) \(path): \(OpenSSLErrorQueue.drainLine())")
        }
        defer { BIO_free(bio) }
        guard let key = PEM_read_bio_PrivateKey(bio, nil, refusePassword, nil) else {
            throw TLSConfigError("\(role) \(path): no usable unencrypted PEM private key: \(OpenSSLErrorQueue.drainLine())")
        }
        ERR_clear_error()
        return PrivateKey(owning: key)
    }

    /// Encrypted keys are refused instead of prompting on a terminal.
    private static let refusePassword: @convention(c) (UnsafeMutablePointer<CChar>?, Int32, Int32,
                                                        UnsafeMutableRawPointer?) -> Int32 = { _, _, _, _ in -1 }

    /// Reads PEM objects until the end of the file; at least one must be present.
    private static func read<T>(_ path: String, role: String, what: String,
                                next: (OpaquePointer) -> T?) throws(TLSConfigError) -> [T] {
        try checkReadable(path, role: role)
        ERR_clear_error()
        guard let bio = BIO_new_file(path, "r") else {
            throw TLSConfigError("\(role) \(path): \(OpenSSLErrorQueue.drainLine())")
        }
        defer { BIO_free(bio) }
        var objects: [T] = []
        while let object = next(bio) { objects.append(object) }
        // The loop ends on "no start line" at end of file; anything else is a broken file.
        let errors = OpenSSLErrorQueue.drain()
        let endOfFile = errors.allSatisfy { $0.library == ERR_LIB_PEM && $0.reason == PEM_R_NO_START_LINE }
        guard endOfFile else {
            throw TLSConfigError("\(role) \(path): unreadable \(what): \(errors.map(\.text).joined(separator: "; "))")
        }
        guard !objects.isEmpty else {
            throw TLSConfigError("\(role) \(path): no PEM \(what) found")
        }
        return objects
    }
}
