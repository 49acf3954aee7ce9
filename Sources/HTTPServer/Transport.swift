import EventLoop
import TLS

/// Moves bytes between a socket and the HTTP layer: plaintext passes through, TLS decrypts what
/// arrives and encrypts what leaves. Loop thread only.
protocol ConnectionTransport: AnyObject {
    /// Socket bytes in; plaintext handed to `deliver` (synchronously, possibly several times).
    /// Returns false when the connection must be closed (TLS failure or close_notify).
    func receive(_ bytes: UnsafeRawBufferPointer, deliver: (UnsafeRawBufferPointer) -> Void) -> Bool
    /// Plaintext out; queued on the socket (the caller flushes).
    func send(_ chunks: [[UInt8]])
    /// True once the peer is authenticated (always for plaintext).
    var isEstablished: Bool { get }
    /// Who the peer is; complete once `isEstablished`.
    var peer: PeerInfo { get }
    /// Why the transport failed, for logs.
    var failureReason: String? { get }
    /// Announces the end of the connection (TLS close_notify); nothing for plaintext.
    func shutdown()
    /// The verified client certificate's identity (TLS, once established); nil for plaintext.
    var peerIdentity: PeerIdentity? { get }
}

final class PlainTransport: ConnectionTransport {
    private let socket: TCPSocket
    let peer: PeerInfo

    init(socket: TCPSocket) {
        self.socket = socket
        peer = PeerInfo(address: socket.peerAddress)
    }

    func receive(_ bytes: UnsafeRawBufferPointer, deliver: (UnsafeRawBufferPointer) -> Void) -> Bool {
        deliver(bytes)
        return true
    }

    func send(_ chunks: [[UInt8]]) {
        for c in chunks { socket.enqueue(c) }
    }

    var isEstablished: Bool { true }
    var failureReason: String? { nil }
    var peerIdentity: PeerIdentity? { nil }
    func shutdown() {}
}
