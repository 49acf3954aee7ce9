import ArgumentParser
import TLS

struct Certs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a development CA, a server certificate and client certificates for ISPBs.",
        discussion: """
        Writes PEM files into --out: ca.pem, server.pem (+ server-key.pem), client-<ISPB>.pem \
        (+ key), crl.pem; with --test-certificates also a client of another CA, an expired and a \
        revoked client. For development and tests only. See docs/tls.md.
        """)

    @Option(help: "Output directory.") var out = "./dev-certs"
    @Option(name: .customLong("ispb"), help: "Client ISPB (repeatable).") var ispbs: [String] = []
    @Option(name: .customLong("server-name"), help: "DNS name for the server certificate (repeatable; default localhost).") var serverNames: [String] = []
    @Option(help: "Validity in days.") var days = DevCertificates.validityDaysDefault
    @Flag(name: .customLong("test-certificates"), help: "Also create other-CA, expired and revoked clients.") var testCertificates = false
    @Flag(help: "Replace existing files.") var force = false
    @Option(name: .customLong("revoke"), help: "Certificate file to list in a new crl.pem of the CA in --out (repeatable); creates nothing else.") var revoke: [String] = []

    func run() throws {
        if !revoke.isEmpty {
            do {
                print("CRL:     \(try DevCertificates.revoke(in: out, certificates: revoke))")
            } catch {
                fail("\(error)")
            }
            return
        }
        guard !ispbs.isEmpty else { fail("give at least one --ispb") }
        for i in ispbs where i.utf8.count != 8 || !i.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            fail("--ispb \(i) is not 8 digits")
        }
        do {
            let files = try DevCertificates.generate(in: out, options: .init(
                clientISPBs: ispbs, serverDNSNames: serverNames.isEmpty ? ["localhost"] : serverNames,
                validityDays: days, includeTestCertificates: testCertificates, overwrite: force))
            print("CA:      \(files.authority.certificate)")
            print("server:  \(files.server.certificate) \(files.server.key)")
            for (ispb, c) in files.clients.sorted(by: { $0.key < $1.key }) {
                print("client \(ispb): \(c.certificate) \(c.key)")
            }
            print("CRL:     \(files.crl)")
        } catch {
            fail("\(error)")
        }
    }
}
