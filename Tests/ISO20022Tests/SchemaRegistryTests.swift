import Glibc
import XCTest
@testable import ISO20022

/// Registry construction: namespace claims, startup errors, and the entity loader during compilation.
final class SchemaRegistryTests: XCTestCase {
    static let spi008 = "https://www.bcb.gov.br/pi/pacs.008/1.16"
    static let spi002 = "https://www.bcb.gov.br/pi/pacs.002/1.17"
    static let xmldsig = "http://www.w3.org/2000/09/xmldsig#"

    private func temporaryDirectory() throws -> String {
        var template = Array("/tmp/rtpstream-xsd-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        let path = String(cString: made)
        addTeardownBlock { _ = try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    private func assertStartupError(_ body: @autoclosure () throws -> SchemaRegistry, contains fragment: String,
                                    file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let error = error as? SchemaRegistryError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertTrue(error.reason.contains(fragment), "\(error.reason)", file: file, line: line)
            XCTAssertFalse(error.reason.contains("\n"), "one line: \(error.reason)", file: file, line: line)
        }
    }

    func testDriverCoversBothImportedNamespaces() throws {
        let registry = try Fixtures.registry(Fixtures.spi008Signed)
        XCTAssertEqual(registry.namespaces, [Self.xmldsig, Self.spi008].sorted())
        XCTAssertEqual(registry.schemaName(forNamespace: Self.spi008), Fixtures.path(Fixtures.spi008Signed))
    }

    func testTwoDriversShareTheXMLDSigImport() throws {
        let registry = try Fixtures.registry(Fixtures.spi008Signed, Fixtures.spi002Signed)
        XCTAssertEqual(registry.namespaces, [Self.xmldsig, Self.spi002, Self.spi008].sorted())
        XCTAssertEqual(registry.schemaName(forNamespace: Self.xmldsig), Fixtures.path(Fixtures.spi008Signed), "first schema serves it")
        XCTAssertEqual(registry.schemaName(forNamespace: Self.spi002), Fixtures.path(Fixtures.spi002Signed))
    }

    func testOfficialISOAndSPISchemasTogether() throws {
        let registry = try Fixtures.registry(Fixtures.iso08, Fixtures.iso09, Fixtures.iso002, Fixtures.head01, Fixtures.head02,
                                             Fixtures.spi008Signed, Fixtures.spi002Signed)
        XCTAssertEqual(registry.namespaces.count, 8)
    }

    func testSameNamespaceFromTwoSchemasIsAStartupError() {
        assertStartupError(try Fixtures.registry(Fixtures.spi008, Fixtures.spi008Signed),
                           contains: "namespace \(Self.spi008) is claimed by both")
    }

    func testSameFileTwiceIsAStartupError() {
        assertStartupError(try SchemaRegistry(schemaFiles: [Fixtures.path(Fixtures.iso08), Fixtures.root + "/xsd/spi/../iso/pacs.008.001.08.xsd"]),
                           contains: "configured twice")
    }

    func testMissingAndEmptyConfigurations() {
        assertStartupError(try SchemaRegistry(schemaFiles: ["/nonexistent/x.xsd"]), contains: "does not exist")
        assertStartupError(try SchemaRegistry(schemaFiles: []), contains: "no schema configured")
    }

    func testMalformedAndUncompilableSchemas() throws {
        let directory = try temporaryDirectory()
        try "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\"><oops></xs:schema>"
            .write(toFile: directory + "/broken.xsd", atomically: true, encoding: .utf8)
        assertStartupError(try SchemaRegistry(schemaFiles: [directory + "/broken.xsd"]), contains: "is not well-formed XML")

        try """
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t" xmlns:t="urn:t">
          <xs:element name="A" type="t:Missing"/>
        </xs:schema>
        """.write(toFile: directory + "/bad.xsd", atomically: true, encoding: .utf8)
        assertStartupError(try SchemaRegistry(schemaFiles: [directory + "/bad.xsd"]), contains: "failed to compile")

        try "<root/>".write(toFile: directory + "/notxsd.xsd", atomically: true, encoding: .utf8)
        assertStartupError(try SchemaRegistry(schemaFiles: [directory + "/notxsd.xsd"]), contains: "no xs:schema root")
    }

    func testNetworkImportIsRefused() throws {
        let directory = try temporaryDirectory()
        try """
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t">
          <xs:import namespace="urn:remote" schemaLocation="http://127.0.0.1:9/remote.xsd"/>
          <xs:element name="A" type="xs:string"/>
        </xs:schema>
        """.write(toFile: directory + "/net.xsd", atomically: true, encoding: .utf8)
        assertStartupError(try SchemaRegistry(schemaFiles: [directory + "/net.xsd"]), contains: "tried to load http://127.0.0.1:9/remote.xsd")
    }

    func testEntityOutsideTheSchemaDirectoriesIsNeverRead() throws {
        let schemas = try temporaryDirectory()
        let elsewhere = try temporaryDirectory()
        let secret = "SCHEMA-SECRET-\(UInt32.random(in: 0...UInt32.max))"
        try secret.write(toFile: elsewhere + "/secret.txt", atomically: true, encoding: .utf8)
        try """
        <?xml version="1.0"?>
        <!DOCTYPE xs:schema [<!ENTITY secret SYSTEM "file://\(elsewhere)/secret.txt">]>
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:t">
          <xs:annotation><xs:documentation>&secret;</xs:documentation></xs:annotation>
          <xs:element name="A" type="xs:string"/>
        </xs:schema>
        """.write(toFile: schemas + "/entity.xsd", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try SchemaRegistry(schemaFiles: [schemas + "/entity.xsd"])) { error in
            let reason = (error as? SchemaRegistryError)?.reason ?? "\(error)"
            XCTAssertTrue(reason.contains("outside the schema directories"), reason)
            XCTAssertFalse(reason.contains(secret))
        }
    }

    func testImportsInSiblingDirectoriesAreAdmitted() throws {
        // A driver in one directory importing a schema from a sibling directory (the xsd/local layout).
        let root = try temporaryDirectory()
        XCTAssertEqual(mkdir(root + "/a", 0o700), 0)
        XCTAssertEqual(mkdir(root + "/b", 0o700), 0)
        try """
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:b"><xs:element name="B" type="xs:string"/></xs:schema>
        """.write(toFile: root + "/b/b.xsd", atomically: true, encoding: .utf8)
        try """
        <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:import namespace="urn:b" schemaLocation="../b/b.xsd"/></xs:schema>
        """.write(toFile: root + "/a/driver.xsd", atomically: true, encoding: .utf8)
        let registry = try SchemaRegistry(schemaFiles: [root + "/a/driver.xsd"])
        XCTAssertEqual(registry.namespaces, ["urn:b"])
    }

    func testShippedRegistry() throws {
        let registry = try SchemaRegistry.shipped()
        XCTAssertEqual(registry.namespaces, [Self.spi008])
        XCTAssertEqual(registry.schemaName(forNamespace: Self.spi008), "shipped:" + ShippedSchema.name)
    }
}
