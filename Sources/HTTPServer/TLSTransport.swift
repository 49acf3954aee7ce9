import EventLoop
import TLS

/// Mutual TLS between the socket and the HTTP layer: ciphertext in, plaintext to the parser;
/// plaintext out coalesced into as few records as possible, ciphertext to the socket.
final class TLSTransport: ConnectionTransport {
    private let socket: TCPSocket
    private let engine: TLSEngine
    private var plain: [UInt8] = []
    private(set) var peer: PeerInfo
    private(set) var failureReason: String?

    init(socket: TCPSocket, context: TLSContext) {
        self.socket = socket
        engine = TLSEngine(context: context)
        peer = PeerInfo(address: socket.peerAddress)
    }

    var isEstablished: Bool { engine.handshakeComplete }

    func receive(_ bytes: UnsafeRawBufferPointer, deliver: (UnsafeRawBufferPointer) -> Void) -> Bool {
        let wasEstablished = engine.handshakeComplete
        engine.feed(bytes)
        plain.removeAll(keepingCapacity: true)
        let result = engine.readPlaintext(into: &plain)
        flushCiphertext()
        if !wasEstablished && engine.handshakeComplete, let identity = engine.peerIdentity {
            peer = PeerInfo(address: peer.address, ispb: identity.ispb, subject: identity.subject)
        }
        if !plain.isEmpty { plain.withUnsafeBytes(deliver) }
        switch result {
        case .ok, .wantRead:
            return true
        case .closed:
            return false
        case .failed(let failure):
            failureReason = failure.reason
            return false
        }
    }

    func send(_ chunks: [[UInt8]]) {
        if chunks.count == 1 {
            chunks[0].withUnsafeBytes { _ = engine.writePlaintext($0) }
        } else {
            // One contiguous write lets OpenSSL emit full-size records instead of one per chunk.
            var joined: [UInt8] = []
            joined.reserveCapacity(chunks.reduce(0) { $0 + $1.count })
            for c in chunks { joined.append(contentsOf: c) }
            joined.withUnsafeBytes { _ = engine.writePlaintext($0) }
        }
        flushCiphertext()
    }

    /// Queues close_notify.
    func shutdown() {
        engine.shutdown()
        flushCiphertext()
    }

    private func flushCiphertext() {
        guard engine.pendingCiphertextCount > 0 else { return }
        var out: [UInt8] = []
        engine.takeCiphertext(into: &out)
        socket.enqueue(out)
    }
}
