import COpenSSL
import Glibc

/// Reading certificates, names and times into Swift values (all pointers borrowed).
enum X509Text {
    /// "CN=12345678,O=Bank" (RFC 2253 order and escaping, UTF-8 kept).
    static func name(_ name: OpaquePointer?) -> String {
        guard let name, let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard X509_NAME_print_ex(bio, name, 0, rtp_name_print_flags()) >= 0 else { return "" }
        return drain(bio)
    }

    static func subject(_ cert: OpaquePointer?) -> String {
        guard let cert else { return "" }
        return name(X509_get_subject_name(cert))
    }

    /// The UTF-8 values of every entry of `nid` in the subject, in subject order.
    static func subjectValues(_ cert: OpaquePointer, nid: Int32) -> [String] {
        guard let name = X509_get_subject_name(cert) else { return [] }
        var values: [String] = []
        var position: Int32 = -1
        while true {
            position = X509_NAME_get_index_by_NID(name, nid, position)
            guard position >= 0 else { break }
            guard let entry = X509_NAME_get_entry(name, position),
                  let data = X509_NAME_ENTRY_get_data(entry) else { continue }
            var utf8: UnsafeMutablePointer<UInt8>?
            let length = ASN1_STRING_to_UTF8(&utf8, data)
            guard length >= 0, let utf8 else { continue }
            values.append(String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self))
            rtp_OPENSSL_free(utf8)
        }
        return values
    }

    /// Serial number in upper-case hex, as `openssl x509 -serial` prints it.
    static func serialHex(_ cert: OpaquePointer) -> String {
        guard let serial = X509_get0_serialNumber(cert),
              let bignum = ASN1_INTEGER_to_BN(serial, nil) else { return "" }
        defer { BN_free(bignum) }
        guard let hex = BN_bn2hex(bignum) else { return "" }
        defer { rtp_OPENSSL_free(hex) }
        return String(cString: hex)
    }

    /// Seconds since the Unix epoch, or nil if the time cannot be read.
    static func epochSeconds(_ time: UnsafePointer<ASN1_TIME>?) -> Int64? {
        guard let time else { return nil }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return nil }
        return Int64(timegm(&parts))
    }

    /// "2026-01-31T12:00:00Z" for messages.
    static func iso8601(epochSeconds: Int64) -> String {
        var seconds = time_t(epochSeconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    static func nowEpochSeconds() -> Int64 { Int64(time(nil)) }

    /// Everything buffered in a memory BIO, as UTF-8.
    static func drain(_ bio: OpaquePointer) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32($0.count)) }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[0..<Int(count)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
