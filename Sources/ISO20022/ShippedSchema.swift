/// The project's own schema: an rtpstream profile of the Pix SPI pacs.008 1.16 envelope,
/// embedded so `rtpstream serve` validates without any file. See docs/iso20022.md for what it
/// covers and how it differs from the official SPI catalogue 5.13.1 XSD.
enum ShippedSchema {
    static let name = "rtpstream-pacs.008.spi.1.16-profile.xsd"
    static let namespace = "https://www.bcb.gov.br/pi/pacs.008/1.16"

    static let pacs008SPI116 = #"""
<?xml version="1.0" encoding="UTF-8"?>
<!--
  rtpstream profile of the Pix SPI pacs.008 (FIToFICustomerCreditTransfer) envelope, version 1.16.
  Written for rtpstream; it is not the BCB file. It accepts the envelope shape SPI 1.16 defines
  (AppHdr + Document in one namespace) and is stricter where the hub relies on a field:
    * ISPBs (AppHdr Fr/To, agents, referred-document issuer) are 8 digits;
    * BizMsgIdr / MsgId = "M" + 8-digit ISPB + 23 alphanumerics;
      EndToEndId = "E" + 8-digit ISPB + yyyyMMddHHmm + 11 alphanumerics; InstrId starts E or D;
    * timestamps are UTC with milliseconds (yyyy-MM-ddThh:mm:ss.sssZ) and valid xs:dateTime;
    * amounts are BRL with at most 2 decimals; the settlement amount must be positive;
    * MsgDefIdr is exactly pacs.008.spi.1.16;
    * Sgntr holds exactly one XMLDSig element, checked laxly (the hub does not verify signatures).
-->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:spi="https://www.bcb.gov.br/pi/pacs.008/1.16"
           targetNamespace="https://www.bcb.gov.br/pi/pacs.008/1.16"
           elementFormDefault="qualified">

  <xs:element name="Envelope">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="AppHdr" type="spi:BusinessHeader"/>
        <xs:element name="Document" type="spi:CreditTransferDocument"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>

  <!-- ===== identifiers and scalars ===== -->
  <xs:simpleType name="Ispb">
    <xs:restriction base="xs:string"><xs:pattern value="[0-9]{8}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="MessageIdentifier">
    <xs:restriction base="xs:string"><xs:pattern value="M[0-9]{8}[a-zA-Z0-9]{23}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="EndToEndIdentifier">
    <xs:restriction base="xs:string">
      <xs:pattern value="E[0-9]{8}[0-9]{4}[0-1][0-9][0-3][0-9][0-2][0-9][0-5][0-9][a-zA-Z0-9]{11}"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="InstructionIdentifier">
    <xs:restriction base="xs:string">
      <xs:pattern value="[ED][0-9]{8}[0-9]{4}[0-1][0-9][0-3][0-9][0-2][0-9][0-5][0-9][a-zA-Z0-9]{11}"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="TransactionIdentifier">
    <xs:restriction base="xs:string"><xs:pattern value="[a-zA-Z0-9]{1,35}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="UtcMillis">
    <xs:restriction base="xs:dateTime">
      <xs:pattern value="[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="Text140">
    <xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="140"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="Text77">
    <xs:restriction base="xs:string"><xs:minLength value="1"/><xs:maxLength value="77"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="Count">
    <xs:restriction base="xs:integer"><xs:pattern value="[0-9]{1,15}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="CpfOrCnpj">
    <xs:restriction base="xs:string"><xs:pattern value="[0-9]{11}|[0-9A-Z]{12}[0-9]{2}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="Cnpj">
    <xs:restriction base="xs:string"><xs:pattern value="[0-9A-Z]{12}[0-9]{2}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="AccountNumber">
    <xs:restriction base="xs:string"><xs:pattern value="[0-9A-Z]{1,20}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="BranchNumber">
    <xs:restriction base="xs:integer"><xs:pattern value="[0-9]{1,4}"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="FiscalDocument">
    <xs:restriction base="xs:string"><xs:pattern value="[a-zA-Z0-9]{1,50}"/></xs:restriction>
  </xs:simpleType>

  <!-- ===== money: BRL only, 2 decimals ===== -->
  <xs:simpleType name="Brl">
    <xs:restriction base="xs:string"><xs:enumeration value="BRL"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="AmountValue">
    <xs:restriction base="xs:decimal">
      <xs:totalDigits value="18"/><xs:fractionDigits value="2"/><xs:minInclusive value="0"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="PositiveAmountValue">
    <xs:restriction base="spi:AmountValue"><xs:minExclusive value="0"/></xs:restriction>
  </xs:simpleType>
  <xs:complexType name="BrlAmount">
    <xs:simpleContent>
      <xs:extension base="spi:AmountValue"><xs:attribute name="Ccy" type="spi:Brl" use="required"/></xs:extension>
    </xs:simpleContent>
  </xs:complexType>
  <xs:complexType name="PositiveBrlAmount">
    <xs:simpleContent>
      <xs:extension base="spi:PositiveAmountValue"><xs:attribute name="Ccy" type="spi:Brl" use="required"/></xs:extension>
    </xs:simpleContent>
  </xs:complexType>

  <!-- ===== code lists ===== -->
  <xs:simpleType name="AccountTypeCode">
    <xs:restriction base="xs:string">
      <xs:enumeration value="CACC"/><xs:enumeration value="OTHR"/><xs:enumeration value="SLRY"/>
      <xs:enumeration value="SVGS"/><xs:enumeration value="TRAN"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="PurposeCode">
    <xs:restriction base="xs:string">
      <xs:enumeration value="GSCB"/><xs:enumeration value="IPAY"/><xs:enumeration value="IPRT"/>
      <xs:enumeration value="OTHR"/><xs:enumeration value="REFU"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="InitiationCode">
    <xs:restriction base="xs:string">
      <xs:enumeration value="APDN"/><xs:enumeration value="APES"/><xs:enumeration value="AUTO"/>
      <xs:enumeration value="DICT"/><xs:enumeration value="INIC"/><xs:enumeration value="MANU"/>
      <xs:enumeration value="QRDN"/><xs:enumeration value="QRES"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="ServiceLevelCode">
    <xs:restriction base="xs:string">
      <xs:enumeration value="PAGAGD"/><xs:enumeration value="PAGFRD"/><xs:enumeration value="PAGPRI"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="PriorityCode">
    <xs:restriction base="xs:string"><xs:enumeration value="HIGH"/><xs:enumeration value="NORM"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="AgentModalityCode">
    <xs:restriction base="xs:string">
      <xs:enumeration value="AGFSS"/><xs:enumeration value="AGTEC"/><xs:enumeration value="AGTOT"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="AdjustmentReasonCode">
    <xs:restriction base="xs:string"><xs:enumeration value="VLCP"/><xs:enumeration value="VLDN"/></xs:restriction>
  </xs:simpleType>
  <xs:simpleType name="TaxTypeCode">
    <xs:restriction base="xs:string"><xs:enumeration value="CBSSPLIT"/><xs:enumeration value="IBSSPLIT"/></xs:restriction>
  </xs:simpleType>

  <!-- ===== business application header ===== -->
  <xs:complexType name="BusinessHeader">
    <xs:sequence>
      <xs:element name="Fr" type="spi:Participant"/>
      <xs:element name="To" type="spi:Participant"/>
      <xs:element name="BizMsgIdr" type="spi:MessageIdentifier"/>
      <xs:element name="MsgDefIdr">
        <xs:simpleType>
          <xs:restriction base="xs:string"><xs:enumeration value="pacs.008.spi.1.16"/></xs:restriction>
        </xs:simpleType>
      </xs:element>
      <xs:element name="CreDt" type="spi:UtcMillis"/>
      <xs:element name="Sgntr">
        <xs:complexType>
          <xs:sequence>
            <xs:any namespace="http://www.w3.org/2000/09/xmldsig#" processContents="lax"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="Participant">
    <xs:sequence>
      <xs:element name="FIId">
        <xs:complexType><xs:sequence>
          <xs:element name="FinInstnId">
            <xs:complexType><xs:sequence>
              <xs:element name="Othr">
                <xs:complexType><xs:sequence>
                  <xs:element name="Id" type="spi:Ispb"/>
                </xs:sequence></xs:complexType>
              </xs:element>
            </xs:sequence></xs:complexType>
          </xs:element>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence>
  </xs:complexType>

  <!-- ===== document ===== -->
  <xs:complexType name="CreditTransferDocument">
    <xs:sequence>
      <xs:element name="FIToFICstmrCdtTrf">
        <xs:complexType>
          <xs:sequence>
            <xs:element name="GrpHdr" type="spi:GroupHeader"/>
            <xs:element name="CdtTrfTxInf" type="spi:Transaction" maxOccurs="unbounded"/>
          </xs:sequence>
        </xs:complexType>
      </xs:element>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="GroupHeader">
    <xs:sequence>
      <xs:element name="MsgId" type="spi:MessageIdentifier"/>
      <xs:element name="CreDtTm" type="spi:UtcMillis"/>
      <xs:element name="NbOfTxs" type="spi:Count"/>
      <xs:element name="SttlmInf">
        <xs:complexType><xs:sequence>
          <xs:element name="SttlmMtd">
            <xs:simpleType><xs:restriction base="xs:string"><xs:enumeration value="CLRG"/></xs:restriction></xs:simpleType>
          </xs:element>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="PmtTpInf">
        <xs:complexType><xs:sequence>
          <xs:element name="InstrPrty" type="spi:PriorityCode"/>
          <xs:element name="SvcLvl">
            <xs:complexType><xs:sequence>
              <xs:element name="Prtry" type="spi:ServiceLevelCode"/>
            </xs:sequence></xs:complexType>
          </xs:element>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence>
  </xs:complexType>

  <xs:complexType name="Transaction">
    <xs:sequence>
      <xs:element name="PmtId">
        <xs:complexType><xs:sequence>
          <xs:element name="InstrId" type="spi:InstructionIdentifier" minOccurs="0"/>
          <xs:element name="EndToEndId" type="spi:EndToEndIdentifier"/>
          <xs:element name="TxId" type="spi:TransactionIdentifier" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="IntrBkSttlmAmt" type="spi:PositiveBrlAmount"/>
      <xs:element name="AccptncDtTm" type="spi:UtcMillis"/>
      <xs:element name="ChrgBr">
        <xs:simpleType><xs:restriction base="xs:string"><xs:enumeration value="SLEV"/></xs:restriction></xs:simpleType>
      </xs:element>
      <xs:element name="MndtRltdInf">
        <xs:complexType><xs:sequence>
          <xs:element name="Tp">
            <xs:complexType><xs:sequence>
              <xs:element name="LclInstrm">
                <xs:complexType><xs:sequence>
                  <xs:element name="Prtry" type="spi:InitiationCode"/>
                </xs:sequence></xs:complexType>
              </xs:element>
            </xs:sequence></xs:complexType>
          </xs:element>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="InitgPty" minOccurs="0">
        <xs:complexType><xs:sequence>
          <xs:element name="Id">
            <xs:complexType><xs:sequence>
              <xs:element name="OrgId">
                <xs:complexType><xs:sequence>
                  <xs:element name="Othr">
                    <xs:complexType><xs:sequence>
                      <xs:element name="Id" type="spi:Cnpj"/>
                    </xs:sequence></xs:complexType>
                  </xs:element>
                </xs:sequence></xs:complexType>
              </xs:element>
            </xs:sequence></xs:complexType>
          </xs:element>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="Dbtr">
        <xs:complexType><xs:sequence>
          <xs:element name="Nm" type="spi:Text140"/>
          <xs:element name="Id" type="spi:PersonId"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="DbtrAcct" type="spi:DebtorAccount"/>
      <xs:element name="DbtrAgt" type="spi:Agent"/>
      <xs:element name="CdtrAgt" type="spi:Agent"/>
      <xs:element name="Cdtr">
        <xs:complexType><xs:sequence>
          <xs:element name="Id" type="spi:PersonId"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="CdtrAcct" type="spi:CreditorAccount"/>
      <xs:element name="Purp">
        <xs:complexType><xs:sequence>
          <xs:element name="Cd" type="spi:PurposeCode"/>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="Tax" type="spi:Tax" minOccurs="0"/>
      <xs:element name="RmtInf" type="spi:Remittance" minOccurs="0"/>
    </xs:sequence>
  </xs:complexType>

  <xs:complexType name="Agent">
    <xs:sequence>
      <xs:element name="FinInstnId">
        <xs:complexType><xs:sequence>
          <xs:element name="ClrSysMmbId">
            <xs:complexType><xs:sequence>
              <xs:element name="MmbId" type="spi:Ispb"/>
            </xs:sequence></xs:complexType>
          </xs:element>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="PersonId">
    <xs:sequence>
      <xs:element name="PrvtId">
        <xs:complexType><xs:sequence>
          <xs:element name="Othr">
            <xs:complexType><xs:sequence>
              <xs:element name="Id" type="spi:CpfOrCnpj"/>
            </xs:sequence></xs:complexType>
          </xs:element>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="AccountId">
    <xs:sequence>
      <xs:element name="Othr">
        <xs:complexType><xs:sequence>
          <xs:element name="Id" type="spi:AccountNumber"/>
          <xs:element name="Issr" type="spi:BranchNumber" minOccurs="0"/>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="AccountType">
    <xs:sequence>
      <xs:element name="Cd" type="spi:AccountTypeCode"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="DebtorAccount">
    <xs:sequence>
      <xs:element name="Id" type="spi:AccountId"/>
      <xs:element name="Tp" type="spi:AccountType"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="CreditorAccount">
    <xs:sequence>
      <xs:element name="Id" type="spi:AccountId"/>
      <xs:element name="Tp" type="spi:AccountType"/>
      <xs:element name="Prxy" minOccurs="0">
        <xs:complexType><xs:sequence>
          <xs:element name="Id" type="spi:Text77"/>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence>
  </xs:complexType>

  <xs:complexType name="Tax">
    <xs:sequence>
      <xs:element name="RefNb" type="spi:FiscalDocument"/>
      <xs:element name="Rcrd" minOccurs="2" maxOccurs="2">
        <xs:complexType><xs:sequence>
          <xs:element name="Tp" type="spi:TaxTypeCode"/>
          <xs:element name="Ctgy">
            <xs:simpleType><xs:restriction base="xs:string"><xs:enumeration value="INF"/></xs:restriction></xs:simpleType>
          </xs:element>
          <xs:element name="TaxAmt">
            <xs:complexType><xs:sequence>
              <xs:element name="TtlAmt" type="spi:BrlAmount"/>
            </xs:sequence></xs:complexType>
          </xs:element>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence>
  </xs:complexType>

  <xs:complexType name="Remittance">
    <xs:sequence>
      <xs:element name="Ustrd" type="spi:Text140" minOccurs="0"/>
      <xs:element name="Strd" minOccurs="0">
        <xs:complexType><xs:sequence>
          <xs:element name="RfrdDocInf">
            <xs:complexType><xs:sequence>
              <xs:element name="Tp">
                <xs:complexType><xs:sequence>
                  <xs:element name="CdOrPrtry">
                    <xs:complexType><xs:sequence>
                      <xs:element name="Prtry" type="spi:AgentModalityCode"/>
                    </xs:sequence></xs:complexType>
                  </xs:element>
                  <xs:element name="Issr" type="spi:Ispb"/>
                </xs:sequence></xs:complexType>
              </xs:element>
            </xs:sequence></xs:complexType>
          </xs:element>
          <!-- Troco / Saque: at most one adjustment per reason. -->
          <xs:element name="RfrdDocAmt">
            <xs:complexType><xs:sequence>
              <xs:element name="AdjstmntAmtAndRsn" maxOccurs="2">
                <xs:complexType><xs:sequence>
                  <xs:element name="Amt" type="spi:BrlAmount"/>
                  <xs:element name="Rsn" type="spi:AdjustmentReasonCode"/>
                </xs:sequence></xs:complexType>
              </xs:element>
            </xs:sequence></xs:complexType>
            <xs:unique name="oneAdjustmentPerReason">
              <xs:selector xpath="spi:AdjstmntAmtAndRsn"/>
              <xs:field xpath="spi:Rsn"/>
            </xs:unique>
          </xs:element>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:sequence>
  </xs:complexType>
</xs:schema>
"""#
}
