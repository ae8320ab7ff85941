import NIOCore

extension StartTLSGate.Command {
    /// Whether the command word appears anywhere in `bytes` (ASCII case-insensitive). After a
    /// read that mentions it, the server releases the gate if TLS did not start.
    public func isMentioned(in bytes: some Collection<UInt8>) -> Bool {
        let bytes = Array(bytes)
        guard bytes.count >= word.count else { return false }
        return (0...(bytes.count - word.count)).contains { start in
            (0..<word.count).allSatisfy { bytes[start + $0] | 0x20 == word[$0] | 0x20 }
        }
    }
}

public enum ClientAddress {
    /// A client on the loopback interface (where dev setups may allow plaintext authentication).
    public static func isLoopback(_ address: SocketAddress?) -> Bool {
        guard let ip = address?.ipAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }
}
