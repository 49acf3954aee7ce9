import COpenSSL

/// How the 8-digit ISPB is read from a client certificate's subject.
///
/// Written as `ATTRIBUTE[:MATCH]`:
/// - `ATTRIBUTE` is any subject attribute OpenSSL names (`CN`, `OU`, `O`, `serialNumber`,
///   `UID`, a dotted OID, ...). Every value of that attribute is examined, in subject order.
/// - `MATCH` is `run` (default): the first run of exactly 8 ASCII digits, bounded by
///   non-digits or the ends of the value (runs of 7 or 9+ digits never match, so a 14-digit
///   CNPJ is not mistaken for an ISPB); or `whole`: the value is exactly 8 ASCII digits.
///
/// Every value is examined; the subject must yield exactly one distinct ISPB. A certificate
/// whose subject yields none, or two different ones, is refused during the handshake.
/// Default: `CN:whole` (the safe rule: nothing else in the value can be mistaken for an ISPB).
public struct ISPBRule: Sendable, Equatable, CustomStringConvertible {
    public enum Match: String, Sendable {
        /// First run of exactly 8 ASCII digits in the value.
        case run
        /// The whole value is exactly 8 ASCII digits.
        case whole
    }

    /// The attribute as written in the rule (e.g. "CN").
    public let attribute: String
    public let match: Match
    /// OpenSSL's numeric id of `attribute`.
    let nid: Int32

    /// `CN:whole`.
    public static let `default` = try! ISPBRule(parsing: TLSDefaults.ispbRule)

    /// Parses `ATTRIBUTE[:MATCH]`; throws a one-line reason for an unknown attribute or match.
    public init(parsing text: String) throws(TLSConfigError) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let attribute = String(parts[0])
        var match = Match.run
        if parts.count == 2 {
            guard let parsed = Match(rawValue: String(parts[1])) else {
                throw TLSConfigError("ISPB rule \"\(text)\": match must be \"run\" or \"whole\"")
            }
            match = parsed
        }
        let nid = OBJ_txt2nid(attribute)
        guard !attribute.isEmpty, nid != NID_undef else {
            throw TLSConfigError("ISPB rule \"\(text)\": unknown subject attribute \"\(attribute)\"")
        }
        self.attribute = attribute
        self.match = match
        self.nid = nid
        ERR_clear_error()  // OBJ_txt2nid may queue an error for unknown names
    }

    public var description: String { "\(attribute):\(match.rawValue)" }

    public static func == (lhs: ISPBRule, rhs: ISPBRule) -> Bool {
        lhs.nid == rhs.nid && lhs.match == rhs.match
    }

    /// The ISPB found in `values` (the attribute's values in subject order), or nil when none
    /// or more than one distinct ISPB is found: a subject that names two ISPBs is ambiguous and
    /// never resolves to either (`CN=87654321 12345678` under `run` is refused).
    public func ispb(inValues values: [String]) -> String? {
        var found: String?
        for value in values {
            for candidate in ispbs(in: value) {
                if let found, found != candidate { return nil }
                found = candidate
            }
        }
        return found
    }

    /// Every ISPB `value` yields under this rule's match, in order.
    func ispbs(in value: String) -> [String] {
        let bytes = Array(value.utf8)
        switch match {
        case .whole:
            guard bytes.count == ISPBRule.digitsCount, bytes.allSatisfy(ISPBRule.isDigit) else { return [] }
            return [value]
        case .run:
            var runs: [String] = []
            var index = 0
            while index < bytes.count {
                guard ISPBRule.isDigit(bytes[index]) else { index += 1; continue }
                let start = index
                while index < bytes.count, ISPBRule.isDigit(bytes[index]) { index += 1 }
                if index - start == ISPBRule.digitsCount {
                    runs.append(String(decoding: bytes[start..<index], as: UTF8.self))
                }
            }
            return runs
        }
    }

    static let digitsCount = 8
    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
