/// Nick and channel names: validity and case folding. The server announces
/// `CASEMAPPING=ascii` (ISUPPORT): only A–Z fold, so the folded form is simple and stable
/// on every node.
public enum IRCNames {
    public static let maxNickLength = 30
    public static let maxChannelLength = 50
    public static let maxTopicLength = 390
    public static let maxKeyLength = 23
    public static let maxAwayLength = 200
    public static let maxKickReasonLength = 255

    public static func fold(_ name: String) -> String {
        String(decoding: name.utf8.map { $0 >= 0x41 && $0 <= 0x5a ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// RFC 2812 §2.3.1 nick: a letter or special first, then letters, digits, specials, `-`.
    public static func isValidNick(_ nick: String) -> Bool {
        let bytes = Array(nick.utf8)
        guard let first = bytes.first, bytes.count <= maxNickLength else { return false }
        func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") }
        func isSpecial(_ byte: UInt8) -> Bool { "[]\\`_^{|}".utf8.contains(byte) }
        guard isLetter(first) || isSpecial(first) else { return false }
        return bytes.allSatisfy { isLetter($0) || isSpecial($0) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-") }
    }

    /// `#` then 1–49 octets without space, comma, BEL or control characters (RFC 2812 §1.3,
    /// only the `#` type is offered: CHANTYPES=#).
    public static func isValidChannel(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count >= 2, bytes.count <= maxChannelLength, bytes[0] == UInt8(ascii: "#") else { return false }
        return bytes.allSatisfy { $0 > 0x20 && $0 != UInt8(ascii: ",") && $0 != 0x7f && $0 != UInt8(ascii: ":") }
    }

    public static func isChannel(_ target: String) -> Bool { target.hasPrefix("#") }

    /// A folded name as a file name: lowercase hex of its UTF-8 (at most 100 characters for
    /// a 50-octet channel name), so any channel name is a safe single path component.
    public static func fileName(_ name: String) -> String {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in fold(name).utf8 {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `text` cut to at most `limit` UTF-8 octets on a character boundary.
    public static func truncate(_ text: String, to limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var out = ""
        for character in text {
            if out.utf8.count + character.utf8.count > limit { break }
            out.append(character)
        }
        return out
    }
}
