/// A failed client operation (resolve, connect, TLS, send, receive, a malformed response):
/// what was attempted and why, in one line. Every throwing call of this module throws it.
public struct HTTPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
