import CLogStore

/// CRC32C (Castagnoli), the checksum of every frame the store writes. Hardware-accelerated
/// through the CLogStore shim when the CPU has the instruction.
enum CRC32C {
    static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return rtp_crc32c(crc, base, bytes.count)
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// The portable (bitwise) implementation, for checking the hardware one.
    static func portableChecksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return 0 }
            return rtp_crc32c_bitwise(0, base.assumingMemoryBound(to: UInt8.self), raw.count)
        }
    }

    /// True when the hardware instruction is used on this CPU.
    static var isHardwareAccelerated: Bool { rtp_crc32c_hardware() != 0 }
}
