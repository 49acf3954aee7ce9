import Glibc

/// Generates valid SPI pacs.008 1.16 envelopes (one transaction each) for `rtpstream send
/// --generate` and the load tests. Every message validates against the shipped profile and
/// against the official SPI XSD + XMLDSig driver: its `Sgntr` holds a structurally valid but
/// cryptographically meaningless `ds:Signature`.
///
/// Ids are unique per (runTag, sequence): `BizMsgIdr` = `MsgId` = "M" + sender + runTag +
/// 15-digit sequence; `EndToEndId` = "E" + sender + yyyyMMddHHmm + runTag[0..<3] + 8 base-36
/// digits of the sequence.
public struct Pacs008Generator: Sendable {
    /// Where the message is addressed.
    public enum Addressing: Sendable, Equatable {
        /// `AppHdr/To` is the hub (as Pix does); the recipient is named as the creditor agent.
        case viaHub(String)
        /// `AppHdr/To` is the recipient itself.
        case direct
    }

    /// 8 alphanumerics that make this run's ids distinct from other runs'.
    public let runTag: String
    public let addressing: Addressing

    public static let sequenceMax: UInt64 = 999_999_999_999_999

    public init(runTag: String = Pacs008Generator.randomRunTag(), addressing: Addressing = .viaHub("99999010")) {
        precondition(runTag.utf8.count == 8 && runTag.utf8.allSatisfy(Pacs008Generator.isAlphanumeric), "runTag must be 8 alphanumerics")
        if case .viaHub(let hub) = addressing { precondition(ParticipantDirectory.isISPB(hub), "hub ISPB must be 8 digits") }
        self.runTag = runTag
        self.addressing = addressing
    }

    /// A random run tag (8 characters of [0-9A-Z]).
    public static func randomRunTag() -> String {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        var generator = SystemRandomNumberGenerator()
        return String(decoding: (0..<8).map { _ in alphabet.randomElement(using: &generator)! }, as: UTF8.self)
    }

    /// The message id `make` uses for `sender` and `sequence`.
    public func messageId(sender: String, sequence: UInt64) -> String {
        precondition(sequence <= Pacs008Generator.sequenceMax, "sequence too large")
        return "M" + sender + runTag + Pacs008Generator.padded(String(sequence), 15)
    }

    /// One envelope from `sender` to `recipient` (8-digit ISPBs), timestamped `createdAtMillis`
    /// (milliseconds since the Unix epoch, UTC).
    public func make(sender: String, recipient: String, sequence: UInt64,
                     createdAtMillis: Int64 = Pacs008Generator.nowMillis()) -> [UInt8] {
        precondition(ParticipantDirectory.isISPB(sender) && ParticipantDirectory.isISPB(recipient), "ISPBs must be 8 digits")
        let messageId = messageId(sender: sender, sequence: sequence)
        let time = UTCTime(millis: createdAtMillis)
        let endToEndId = "E" + sender + time.compact + String(runTag.prefix(3))
            + Pacs008Generator.padded(String(sequence % 2_821_109_907_456, radix: 36, uppercase: true), 8)
        let cents = sequence % 99_999 + 1
        let amount = "\(cents / 100).\(Pacs008Generator.padded(String(cents % 100), 2))"
        let to: String
        switch addressing {
        case .viaHub(let hub): to = hub
        case .direct: to = recipient
        }
        let xml = """
        <?xml version="1.0" encoding="UTF-8"?>
        <Envelope xmlns="https://www.bcb.gov.br/pi/pacs.008/1.16">
        <AppHdr>
        <Fr><FIId><FinInstnId><Othr><Id>\(sender)</Id></Othr></FinInstnId></FIId></Fr>
        <To><FIId><FinInstnId><Othr><Id>\(to)</Id></Othr></FinInstnId></FIId></To>
        <BizMsgIdr>\(messageId)</BizMsgIdr>
        <MsgDefIdr>pacs.008.spi.1.16</MsgDefIdr>
        <CreDt>\(time.iso)</CreDt>
        <Sgntr>\(Pacs008Generator.dummySignature)</Sgntr>
        </AppHdr>
        <Document>
        <FIToFICstmrCdtTrf>
        <GrpHdr>
        <MsgId>\(messageId)</MsgId>
        <CreDtTm>\(time.iso)</CreDtTm>
        <NbOfTxs>1</NbOfTxs>
        <SttlmInf><SttlmMtd>CLRG</SttlmMtd></SttlmInf>
        <PmtTpInf><InstrPrty>HIGH</InstrPrty><SvcLvl><Prtry>PAGPRI</Prtry></SvcLvl></PmtTpInf>
        </GrpHdr>
        <CdtTrfTxInf>
        <PmtId><EndToEndId>\(endToEndId)</EndToEndId></PmtId>
        <IntrBkSttlmAmt Ccy="BRL">\(amount)</IntrBkSttlmAmt>
        <AccptncDtTm>\(time.iso)</AccptncDtTm>
        <ChrgBr>SLEV</ChrgBr>
        <MndtRltdInf><Tp><LclInstrm><Prtry>MANU</Prtry></LclInstrm></Tp></MndtRltdInf>
        <Dbtr><Nm>Pagador de Teste</Nm><Id><PrvtId><Othr><Id>12345678909</Id></Othr></PrvtId></Id></Dbtr>
        <DbtrAcct><Id><Othr><Id>1234567</Id><Issr>1</Issr></Othr></Id><Tp><Cd>CACC</Cd></Tp></DbtrAcct>
        <DbtrAgt><FinInstnId><ClrSysMmbId><MmbId>\(sender)</MmbId></ClrSysMmbId></FinInstnId></DbtrAgt>
        <CdtrAgt><FinInstnId><ClrSysMmbId><MmbId>\(recipient)</MmbId></ClrSysMmbId></FinInstnId></CdtrAgt>
        <Cdtr><Id><PrvtId><Othr><Id>98765432100</Id></Othr></PrvtId></Id></Cdtr>
        <CdtrAcct><Id><Othr><Id>7654321</Id><Issr>2</Issr></Othr></Id><Tp><Cd>SVGS</Cd></Tp></CdtrAcct>
        <Purp><Cd>IPAY</Cd></Purp>
        <RmtInf><Ustrd>rtpstream generated \(sequence)</Ustrd></RmtInf>
        </CdtTrfTxInf>
        </FIToFICstmrCdtTrf>
        </Document>
        </Envelope>

        """
        return Array(xml.utf8)
    }

    /// exc-c14n / rsa-sha256 with three references (KeyInfo, the enveloped AppHdr, the
    /// Document), like SPI signatures; digests and value are placeholders.
    static let dummySignature = """
    <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>\
    <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>\
    <ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>\
    <ds:Reference URI="#key-info-id"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>\
    <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>cnRwc3RyZWFtLWR1bW15LWRpZ2VzdC0wMDAwMDAwMDA=</ds:DigestValue></ds:Reference>\
    <ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>\
    <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>\
    <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>cnRwc3RyZWFtLWR1bW15LWRpZ2VzdC0wMDAwMDAwMDE=</ds:DigestValue></ds:Reference>\
    <ds:Reference><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>\
    <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>cnRwc3RyZWFtLWR1bW15LWRpZ2VzdC0wMDAwMDAwMDI=</ds:DigestValue></ds:Reference>\
    </ds:SignedInfo><ds:SignatureValue>cnRwc3RyZWFtIGR1bW15IHNpZ25hdHVyZSwgbm90IHZlcmlmaWFibGU=</ds:SignatureValue>\
    <ds:KeyInfo Id="key-info-id"><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>CN=rtpstream test CA, O=rtpstream, C=BR</ds:X509IssuerName>\
    <ds:X509SerialNumber>1</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo></ds:Signature>
    """

    public static func nowMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func padded(_ digits: String, _ width: Int) -> String {
        digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
    }

    /// A UTC instant formatted the two ways SPI needs.
    struct UTCTime {
        /// yyyy-MM-ddThh:mm:ss.sssZ
        let iso: String
        /// yyyyMMddHHmm
        let compact: String

        init(millis: Int64) {
            precondition(millis >= 0, "timestamps before 1970 are not supported")
            var seconds = time_t(millis / 1000)
            var parts = tm()
            gmtime_r(&seconds, &parts)
            let year = padded(String(parts.tm_year + 1900), 4), month = padded(String(parts.tm_mon + 1), 2)
            let day = padded(String(parts.tm_mday), 2), hour = padded(String(parts.tm_hour), 2)
            let minute = padded(String(parts.tm_min), 2), second = padded(String(parts.tm_sec), 2)
            iso = "\(year)-\(month)-\(day)T\(hour):\(minute):\(second).\(padded(String(millis % 1000), 3))Z"
            compact = year + month + day + hour + minute
        }
    }
}
