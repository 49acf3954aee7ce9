import HTTP
import ISO20022
import XCTest
@testable import Hub

/// Every validation reject code answers with the catalog type of the same name and a client
/// error status: one assertion per mapping (the mapping is an exhaustive switch, so a new code
/// cannot be forgotten; this pins what each maps to).
final class RejectProblemTests: XCTestCase {
    func testEachRejectCodeMapsToItsCatalogType() {
        for code in RejectCode.allCases {
            let type = ProblemType.forReject(code)
            XCTAssertEqual(type.slug, code.rawValue, "\(code)")
            XCTAssertTrue((400..<500).contains(type.status), "\(code) → \(type.status)")
            XCTAssertTrue(ProblemType.all.contains { $0.slug == type.slug }, "\(code) is in the catalog")
        }
    }
}
