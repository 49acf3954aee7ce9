import Foundation
import XCTest
@testable import ISO20022

final class ParticipantDirectoryTests: XCTestCase {
    func testLookupRules() {
        let directory = ParticipantDirectory(entries: ["BOFAUS3N": "11111111", "USABA:021000021": "22222222",
                                                       "999999997": "33333333", "PSP-X": "44444444"])
        XCTAssertEqual(directory.ispb(for: .init(kind: .other, value: "00038166")), "00038166", "8 digits map to themselves")
        XCTAssertEqual(directory.ispb(for: .init(kind: .bic, value: "BOFAUS3NXXX")), "11111111")
        XCTAssertEqual(directory.ispb(for: .init(kind: .bic, value: "BOFAUS3N")), "11111111")
        XCTAssertNil(directory.ispb(for: .init(kind: .bic, value: "BOFAUS3NABC")), "a branch BIC is a different entry")
        XCTAssertEqual(directory.ispb(for: .init(kind: .clearingMember(system: "USABA"), value: "021000021")), "22222222")
        XCTAssertNil(directory.ispb(for: .init(kind: .clearingMember(system: nil), value: "021000021")))
        XCTAssertEqual(directory.ispb(for: .init(kind: .clearingMember(system: "USABA"), value: "999999997")), "33333333", "bare fallback")
        XCTAssertEqual(directory.ispb(for: .init(kind: .other, value: " PSP-X ")), "44444444")
        XCTAssertNil(directory.ispb(for: .init(kind: .other, value: "0003816")), "7 digits are not an ISPB")
    }

    func testLoadFile() throws {
        let path = NSTemporaryDirectory() + "directory-\(UInt32.random(in: 0...UInt32.max)).txt"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "# identifier ISPB\nBOFAUS3NXXX 11111111\r\n\nUSABA:021000021\t22222222\n".write(toFile: path, atomically: true, encoding: .utf8)
        let directory = try ParticipantDirectory.load(path: path)
        XCTAssertEqual(directory.ispb(for: .init(kind: .bic, value: "BOFAUS3N")), "11111111")
        XCTAssertEqual(directory.ispb(for: .init(kind: .clearingMember(system: "USABA"), value: "021000021")), "22222222")
        // A loaded directory is closed: its ISPBs are the participants, nothing else.
        XCTAssertEqual(directory.participants, ["11111111", "22222222"])
        XCTAssertTrue(directory.admits("22222222"))
        XCTAssertFalse(directory.admits("33333333"), "an 8-digit ISPB the directory does not list")
        XCTAssertTrue(ParticipantDirectory.empty.admits("33333333"), "no directory: any ISPB")
        XCTAssertTrue(ParticipantDirectory(entries: ["X": "11111111"]).admits("33333333"), "entries alone do not close it")
    }

    func testLoadErrorsNameTheLine() {
        XCTAssertThrowsError(try ParticipantDirectory.parse("A 11111111\nB 1234\n", name: "d.txt")) {
            XCTAssertEqual(($0 as? DirectoryError)?.reason, "d.txt:2: ISPB '1234' is not 8 digits")
        }
        XCTAssertThrowsError(try ParticipantDirectory.parse("A 11111111 extra\n", name: "d.txt")) {
            XCTAssertEqual(($0 as? DirectoryError)?.reason, "d.txt:1: expected 'identifier ISPB'")
        }
        XCTAssertThrowsError(try ParticipantDirectory.parse("A 11111111\nA 22222222\n", name: "d.txt")) {
            XCTAssertEqual(($0 as? DirectoryError)?.reason, "d.txt:2: A is listed twice with different ISPBs")
        }
    }
}
