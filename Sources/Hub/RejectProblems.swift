import HTTP
import ISO20022

extension ProblemType {
    /// The problem type a validation reject answers with. Exhaustive: a new reject code does
    /// not compile until it has a type (never looked up by string).
    static func forReject(_ code: RejectCode) -> ProblemType {
        switch code {
        case .documentTooLarge: .documentTooLarge
        case .depthExceeded: .depthExceeded
        case .documentTooComplex: .documentTooComplex
        case .doctypeForbidden: .doctypeForbidden
        case .notWellFormed: .notWellFormed
        case .unknownNamespace: .unknownNamespace
        case .schemaInvalid: .schemaInvalid
        case .notBusinessMessage: .notBusinessMessage
        case .messageIdInvalid: .messageIDInvalid
        case .senderUnresolved: .senderUnresolved
        case .recipientUnresolved: .recipientUnresolved
        case .recipientAmbiguous: .recipientAmbiguous
        case .unknownRecipient: .unknownRecipient
        }
    }
}
