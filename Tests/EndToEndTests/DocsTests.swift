import Foundation
import HTTP
import Hub
import TestSupport
import XCTest

/// docs/ is part of the contract: every problem type and every option must be documented.
final class DocsTests: XCTestCase {
    func read(_ name: String) throws -> String {
        try String(contentsOf: Paths.packageRoot.appendingPathComponent("docs/\(name)"), encoding: .utf8)
    }

    func testEveryProblemTypeIsInTheCatalog() throws {
        let doc = try read("errors.md")
        for p in ProblemType.all {
            XCTAssertTrue(doc.contains("| `\(p.slug)` | \(p.status) |"), "docs/errors.md lacks \(p.slug) (\(p.status))")
        }
    }

    func testEveryOptionIsDocumented() throws {
        let doc = try read("configuration.md")
        for o in HubConfiguration.options {
            XCTAssertTrue(doc.contains("`--\(o.name)"), "docs/configuration.md lacks --\(o.name)")
            XCTAssertTrue(doc.contains("`\(o.environmentName)`"), "docs/configuration.md lacks \(o.environmentName)")
        }
    }
}
