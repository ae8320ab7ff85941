/// A mailbox name as it travels on the wire: modified UTF-7 (RFC 3501 §5.1.3) or, once the
/// client enabled UTF8=ACCEPT, UTF-8 (RFC 6855 §3). `INBOX` in any case is normalised to `INBOX`
/// (RFC 9051 §5.1).
public struct IMAPMailboxName: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) {
        if bytes.count == 5, bytes.map(IMAPCharacter.uppercase).elementsEqual("INBOX".utf8) {
            self.bytes = Array("INBOX".utf8)
        } else {
            self.bytes = bytes
        }
    }

    /// The wire form of a name for this client.
    public init(encoding name: String, utf8Accept: Bool) {
        self.init(utf8Accept ? Array(name.utf8) : ModifiedUTF7.encode(name))
    }

    public static let inbox = IMAPMailboxName(Array("INBOX".utf8))

    public var isInbox: Bool { bytes.elementsEqual("INBOX".utf8) }

    /// The name as Unicode: UTF-8 under UTF8=ACCEPT, modified UTF-7 otherwise. Nil when the bytes
    /// are not valid in that form (or not its canonical spelling) or contain control characters,
    /// which no mailbox name may: the session answers `NO` for such a name.
    public func decoded(utf8Accept: Bool) -> String? {
        guard !bytes.contains(where: IMAPCharacter.isCTL) else { return nil }
        if utf8Accept {
            return String(validating: bytes, as: UTF8.self)
        }
        return ModifiedUTF7.decode(bytes)
    }

    public var description: String { String(decoding: bytes, as: UTF8.self) }
}
