import EventLoop
import TLS

/// Scratch buffers shared by every TLS connection of one server (one loop thread): each use
/// is synchronous and ends before the next begins (`deliver` only copies into the parser), so
/// 10,000 idle keep-alive connections hold no plaintext buffers of their own.
final class TLSScratch {
    /// Plaintext decrypted from one record, on its way to the parser (a record holds at most
    /// 16 KiB of plaintext).
    let decrypted = UnsafeMutableRawBufferPointer.allocate(byteCount: 16_384, alignment: 16)
    /// A response's head and body joined for one SSL_write.
    var joined: [UInt8] = []
    /// Capacity kept between uses; a larger join (a big response) is released.
    static let keptBytesMax = 256 * 1024

    deinit { decrypted.deallocate() }
}

/// Mutual TLS between the socket and the HTTP layer: ciphertext in, plaintext to the parser;
/// plaintext out in as few records as possible, ciphertext to the socket: written from
/// OpenSSL's buffer straight to the kernel while nothing is queued (`TCPSocket.writeNow`),
/// queued otherwise.
final class TLSTransport: ConnectionTransport {
    private let socket: TCPSocket
    private let engine: TLSEngine
    private let scratch: TLSScratch
    private(set) var peer: PeerInfo
    private(set) var failureReason: String?

    init(socket: TCPSocket, context: TLSContext, scratch: TLSScratch) {
        self.socket = socket
        self.scratch = scratch
        engine = TLSEngine(context: context)
        peer = PeerInfo(address: socket.peerAddress)
        // The engine is owned by this transport, which owns the socket: no cycle.
        engine.directOutput = { [socket] record in socket.writeNow(record) }
    }

    var isEstablished: Bool { engine.handshakeComplete }
    var peerIdentity: PeerIdentity? { engine.handshakeComplete ? engine.peerIdentity : nil }

    func receive(_ bytes: UnsafeRawBufferPointer, deliver: (UnsafeRawBufferPointer) -> Void) -> Bool {
        engine.feed(bytes)
        var result: TLSResult
        repeat {
            let wasEstablished = engine.handshakeComplete
            let count: Int
            (count, result) = engine.readPlaintext(into: scratch.decrypted)
            if !wasEstablished && engine.handshakeComplete, let identity = engine.peerIdentity {
                peer = PeerInfo(address: peer.address, ispb: identity.ispb, subject: identity.subject)
            }
            if count > 0 { deliver(UnsafeRawBufferPointer(rebasing: scratch.decrypted[0..<count])) }
        } while result == .ok
        flushCiphertext()
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
            scratch.joined.removeAll(keepingCapacity: true)
            for c in chunks { scratch.joined.append(contentsOf: c) }
            scratch.joined.withUnsafeBytes { _ = engine.writePlaintext($0) }
            if scratch.joined.capacity > TLSScratch.keptBytesMax { scratch.joined = [] }
        }
        flushCiphertext()
    }

    /// Queues close_notify.
    func shutdown() {
        engine.shutdown()
        flushCiphertext()
    }

    /// Queues what the socket did not take directly (kernel buffer full, or bytes queued).
    private func flushCiphertext() {
        guard engine.pendingCiphertextCount > 0 else { return }
        var out: [UInt8] = []
        engine.takeCiphertext(into: &out)
        socket.enqueue(out)
    }
}
