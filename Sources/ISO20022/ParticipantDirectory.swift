/// Maps the institution identifiers found in messages to 8-digit ISPBs.
///
/// An identifier that is itself 8 ASCII digits is an ISPB and maps to itself without an entry.
/// Other identifiers need an entry: a BIC ("BOFAUS3N"; an 11-character BIC ending in "XXX" and
/// its 8-character form are the same entry), a clearing member id qualified by its clearing
/// system code ("USABA:111111111") or bare ("111111111"), or an `Othr/Id` value.
public struct ParticipantDirectory: Sendable, Equatable {
    private var ispbByIdentifier: [String: String]
    /// When set, only these ISPBs (every ISPB the directory lists) may receive messages: any
    /// other recipient is refused before anything is stored, so senders cannot create
    /// partitions for invented ISPBs. nil: any 8-digit recipient is accepted.
    public let participants: Set<String>?

    /// An empty directory: only 8-digit identifiers resolve.
    public static let empty = ParticipantDirectory(entries: [:])

    /// `entries` maps identifier to ISPB; every ISPB must be 8 ASCII digits. `closed`: only
    /// the listed ISPBs are participants (`admits`).
    public init(entries: [String: String], closed: Bool = false) {
        var map: [String: String] = [:]
        for (identifier, ispb) in entries {
            precondition(ParticipantDirectory.isISPB(ispb), "ISPB for \(identifier) must be 8 digits")
            let key = ParticipantDirectory.trimmed(identifier)
            precondition(!key.isEmpty, "empty identifier")
            map[key] = ispb
            map[ParticipantDirectory.bic8(key)] = ispb
        }
        ispbByIdentifier = map
        participants = closed ? Set(entries.values) : nil
    }

    /// Whether `ispb` may receive messages: always without a closed directory.
    public func admits(_ ispb: String) -> Bool { participants?.contains(ispb) ?? true }

    /// Loads a directory file: one `identifier ISPB` pair per line, separated by spaces or tabs;
    /// blank lines and lines starting with '#' are ignored. A loaded directory is closed: the
    /// ISPBs it lists are the participants (a line `ISPB ISPB` lists one with no other name). Throws on a malformed line, a
    /// non-8-digit ISPB, or an identifier listed twice with different ISPBs.
    public static func load(path: String) throws -> ParticipantDirectory {
        let bytes = try readFile(path, bytesMax: 64 * 1024 * 1024)
        return try parse(String(decoding: bytes, as: UTF8.self), name: path)
    }

    static func parse(_ text: String, name: String) throws -> ParticipantDirectory {
        var entries: [String: String] = [:]
        for (index, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.isEmpty || fields[0].hasPrefix("#") { continue }
            let where_ = "\(name):\(index + 1)"
            guard fields.count == 2 else { throw DirectoryError("\(where_): expected 'identifier ISPB'") }
            let identifier = String(fields[0]), ispb = String(fields[1])
            guard isISPB(ispb) else { throw DirectoryError("\(where_): ISPB '\(DetailSanitizer.excerpt(ispb))' is not 8 digits") }
            if let previous = entries[identifier], previous != ispb {
                throw DirectoryError("\(where_): \(DetailSanitizer.excerpt(identifier)) is listed twice with different ISPBs")
            }
            entries[identifier] = ispb
        }
        return ParticipantDirectory(entries: entries, closed: true)
    }

    /// Number of identifiers (after BIC normalization).
    public var count: Int { ispbByIdentifier.count }

    /// The ISPB for one identifier of the given kind, or nil when it is unknown.
    func ispb(for identifier: InstitutionIdentifier) -> String? {
        let value = ParticipantDirectory.trimmed(identifier.value)
        if ParticipantDirectory.isISPB(value) { return value }
        switch identifier.kind {
        case .bic:
            return ispbByIdentifier[value] ?? ispbByIdentifier[ParticipantDirectory.bic8(value)]
        case .clearingMember(let system):
            if let system, let ispb = ispbByIdentifier["\(ParticipantDirectory.trimmed(system)):\(value)"] { return ispb }
            return ispbByIdentifier[value]
        case .other:
            return ispbByIdentifier[value]
        }
    }

    static func isISPB(_ value: String) -> Bool {
        value.utf8.count == 8 && value.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// Without leading and trailing XML whitespace (space, tab, CR, LF).
    private static func trimmed(_ value: String) -> String {
        let bytes = value.utf8
        func space(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }
        guard let first = bytes.firstIndex(where: { !space($0) }), let last = bytes.lastIndex(where: { !space($0) }) else { return "" }
        if first == bytes.startIndex && last == bytes.index(before: bytes.endIndex) { return value }
        return String(value[first...last])
    }

    /// "AAAABBCCXXX" -> "AAAABBCC" (the primary office); anything else unchanged.
    private static func bic8(_ value: String) -> String {
        value.utf8.count == 11 && value.hasSuffix("XXX") ? String(value.prefix(8)) : value
    }
}

/// A directory file error; `reason` names the file and line.
public struct DirectoryError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// One identifier of a financial institution (`FinInstnId`), as found in a message.
struct InstitutionIdentifier: Equatable {
    enum Kind: Equatable {
        case other                              // Othr/Id
        case clearingMember(system: String?)    // ClrSysMmbId/MmbId with ClrSysId/Cd
        case bic                                // BICFI
    }
    let kind: Kind
    let value: String
}
