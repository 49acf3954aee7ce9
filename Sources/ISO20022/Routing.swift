import CLibXML2

/// Extracts the routing facts of a schema-valid business message (see docs/iso20022.md,
/// "Routing"). Works on local names, so the SPI envelope (one namespace), bare ISO documents and
/// wrapped AppHdr + Document pairs share one implementation.
struct Router {
    typealias Node = XMLTree.Node

    let directory: ParticipantDirectory
    let hubISPB: String
    let limits: ValidationLimits

    /// - Parameters:
    ///   - appHdr: the business application header, when the message has one.
    ///   - document: the `Document` element.
    ///   - namespace: the namespace reported in `MessageInfo` (the document's).
    ///   - messageIdFromAppHdr: SPI takes the id from `AppHdr/BizMsgIdr`, ISO from `GrpHdr/MsgId`.
    func route(appHdr: Node?, document: Node, namespace: String, messageIdFromAppHdr: Bool) -> ValidationOutcome {
        guard let messageType = Router.messageType(fromNamespace: namespace) else {
            return reject(.notBusinessMessage, "no message type in namespace '\(namespace)'")
        }
        guard let message = XMLTree.elements(of: document).first(where: { _ in true }) else {
            return reject(.notBusinessMessage, "Document holds no message")
        }
        let groupHeader = XMLTree.child(message, "GrpHdr")
        let transactions = XMLTree.children(message, "CdtTrfTxInf") + XMLTree.children(message, "TxInfAndSts")

        let idNode = messageIdFromAppHdr ? XMLTree.child(appHdr!, "BizMsgIdr") : XMLTree.descend(groupHeader, ["MsgId"])
        let idPath = messageIdFromAppHdr ? "AppHdr/BizMsgIdr" : "GrpHdr/MsgId"
        guard let idNode else { return reject(.messageIdInvalid, "\(idPath) is missing") }
        let messageId = XMLTree.text(idNode)
        if let problem = Router.messageIdProblem(messageId, bytesMax: limits.messageIdBytesMax) {
            return reject(.messageIdInvalid, "\(idPath) \(problem)")
        }

        let sender = resolve([
            Source(path: "AppHdr/Fr", agents: [XMLTree.descend(appHdr, ["Fr", "FIId", "FinInstnId"])]),
            Source(path: "GrpHdr/InstgAgt", agents: [XMLTree.descend(groupHeader, ["InstgAgt", "FinInstnId"])]),
            Source(path: "InstgAgt", agents: transactions.map { XMLTree.descend($0, ["InstgAgt", "FinInstnId"]) }),
            Source(path: "DbtrAgt", agents: transactions.map { XMLTree.descend($0, ["DbtrAgt", "FinInstnId"]) }),
        ])
        let senderISPB: String
        switch sender {
        case .resolved(let ispb, _): senderISPB = ispb
        case .absent: return reject(.senderUnresolved, "no sender: none of AppHdr/Fr, InstgAgt or DbtrAgt identifies an institution")
        case .unknown(let identifier, let path): return reject(.senderUnresolved, "\(path) '\(identifier)' is not a known participant")
        case .conflicting(let path): return reject(.senderUnresolved, "the transactions name different \(path) institutions")
        }

        let creditorAgents = Source(path: "CdtrAgt", agents: transactions.map { XMLTree.descend($0, ["CdtrAgt", "FinInstnId"]) })
        var recipient = resolve([
            Source(path: "AppHdr/To", agents: [XMLTree.descend(appHdr, ["To", "FIId", "FinInstnId"])]),
            Source(path: "GrpHdr/InstdAgt", agents: [XMLTree.descend(groupHeader, ["InstdAgt", "FinInstnId"])]),
            Source(path: "InstdAgt", agents: transactions.map { XMLTree.descend($0, ["InstdAgt", "FinInstnId"]) }),
            creditorAgents,
        ])
        var viaHub = false
        if case .resolved(let ispb, _) = recipient, ispb == hubISPB {
            viaHub = true
            recipient = resolve([creditorAgents])
        }
        let recipientISPB: String
        switch recipient {
        case .resolved(let ispb, _):
            if ispb == hubISPB { return reject(.recipientUnresolved, "the creditor agent is the hub itself") }
            recipientISPB = ispb
        case .absent where viaHub:
            return reject(.recipientUnresolved, "addressed to the hub (\(hubISPB)) but no creditor agent identifies an institution")
        case .absent:
            return reject(.recipientUnresolved, "no recipient: none of AppHdr/To, InstdAgt or CdtrAgt identifies an institution")
        case .unknown(let identifier, let path):
            return reject(.recipientUnresolved, "\(path) '\(identifier)' is not a known participant")
        case .conflicting(let path):
            return reject(.recipientAmbiguous, "the transactions name different \(path) institutions")
        }
        guard directory.admits(recipientISPB) else {
            return reject(.unknownRecipient, "recipient \(recipientISPB) is not a participant")
        }
        return .accepted(MessageInfo(senderISPB: senderISPB, recipientISPB: recipientISPB, messageId: messageId,
                                     messageType: messageType, namespace: namespace))
    }

    // MARK: - party resolution

    struct Source {
        let path: String
        /// `FinInstnId` elements; nil entries (element absent) are ignored.
        let agents: [Node?]
    }

    enum Resolution: Equatable {
        case resolved(String, path: String)
        case absent
        case unknown(identifier: String, path: String)
        case conflicting(path: String)
    }

    /// The first source that holds at least one institution identifier decides: every
    /// institution it names must map to the same ISPB.
    func resolve(_ sources: [Source]) -> Resolution {
        for source in sources {
            var found: String?
            var sawIdentifier = false
            for case let agent? in source.agents {
                let identifiers = Router.identifiers(of: agent)
                if identifiers.isEmpty { continue }
                sawIdentifier = true
                guard let ispb = identifiers.lazy.compactMap({ directory.ispb(for: $0) }).first else {
                    return .unknown(identifier: DetailSanitizer.excerpt(identifiers[0].value), path: source.path)
                }
                if let found, found != ispb { return .conflicting(path: source.path) }
                found = ispb
            }
            if sawIdentifier, let found { return .resolved(found, path: source.path) }
        }
        return .absent
    }

    /// Identifiers of one `FinInstnId`, in lookup order: Othr/Id, ClrSysMmbId/MmbId, BICFI.
    static func identifiers(of institution: Node) -> [InstitutionIdentifier] {
        var result: [InstitutionIdentifier] = []
        if let id = XMLTree.descend(institution, ["Othr", "Id"]) {
            result.append(InstitutionIdentifier(kind: .other, value: XMLTree.text(id)))
        }
        if let member = XMLTree.child(institution, "ClrSysMmbId"), let id = XMLTree.child(member, "MmbId") {
            let system = XMLTree.descend(member, ["ClrSysId", "Cd"]).map(XMLTree.text)
            result.append(InstitutionIdentifier(kind: .clearingMember(system: system), value: XMLTree.text(id)))
        }
        if let bic = XMLTree.child(institution, "BICFI") {
            result.append(InstitutionIdentifier(kind: .bic, value: XMLTree.text(bic)))
        }
        return result.filter { !$0.value.utf8.allSatisfy { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D } }
    }

    // MARK: - message id and type

    /// Why a message id is unusable as an idempotency key, or nil when it is fine: it must be
    /// 1...bytesMax printable ASCII characters without leading or trailing spaces.
    static func messageIdProblem(_ id: String, bytesMax: Int) -> String? {
        let bytes = id.utf8
        if bytes.isEmpty || bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) { return "is empty" }
        if bytes.count > bytesMax { return "is longer than \(bytesMax) bytes" }
        if !bytes.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) { return "has characters outside printable ASCII" }
        if bytes.first == 0x20 || bytes.last == 0x20 { return "has leading or trailing spaces" }
        return nil
    }

    /// "pacs.008" from "urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08" or
    /// "https://www.bcb.gov.br/pi/pacs.008/1.16": the first four lowercase letters, a dot and
    /// three digits.
    static func messageType(fromNamespace namespace: String) -> String? {
        let bytes = Array(namespace.utf8)
        guard bytes.count >= 8 else { return nil }
        func lower(_ b: UInt8) -> Bool { b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") }
        func digit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        for start in 0...(bytes.count - 8) {
            let s = bytes[start..<(start + 8)]
            let i = s.startIndex
            if (start == 0 || !lower(bytes[start - 1])) && lower(s[i]) && lower(s[i + 1]) && lower(s[i + 2]) && lower(s[i + 3])
                && s[i + 4] == UInt8(ascii: ".") && digit(s[i + 5]) && digit(s[i + 6]) && digit(s[i + 7])
                && (start + 8 == bytes.count || !digit(bytes[start + 8])) {
                return String(decoding: s, as: UTF8.self)
            }
        }
        return nil
    }

    private func reject(_ code: RejectCode, _ detail: String) -> ValidationOutcome {
        .rejected(Rejection(code: code, detail: DetailSanitizer.sanitize(detail.utf8, bytesMax: limits.detailBytesMax,
                                                                        quotedBytesMax: limits.detailQuotedBytesMax)))
    }
}
