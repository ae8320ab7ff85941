/// One IRC message (RFC 1459 §2.3.1 as modern servers read it, with IRCv3 message tags):
///
///     [ '@' tags SPACE ] [ ':' source SPACE ] command *( SPACE param ) [ SPACE ':' trailing ]
///
/// Tags keep their order; a tag without a value has the value "".
public struct IRCMessage: Sendable, Equatable {
    public var tags: [IRCTag]
    public var source: String?
    /// Upper-cased for words; numerics as three digits.
    public var command: String
    public var params: [String]

    public init(tags: [IRCTag] = [], source: String? = nil, command: String, params: [String] = []) {
        self.tags = tags
        self.source = source
        self.command = command
        self.params = params
    }

    public func tag(_ key: String) -> String? { tags.first { $0.key == key }?.value }
}

public struct IRCTag: Sendable, Equatable, Hashable {
    public var key: String
    public var value: String

    public init(_ key: String, _ value: String = "") {
        self.key = key
        self.value = value
    }

    /// Client-only tags (`+draft/reply`, `+typing`) start with `+` (IRCv3 message-tags).
    public var isClientOnly: Bool { key.hasPrefix("+") }
}

/// Sizes from the IRCv3 message-tags specification and RFC 1459 §2.3.
public enum IRCLimits {
    /// The message body (source, command, params) without CR LF: 512 octets with them.
    public static let maxBodyBytes = 510
    /// The tag section including the leading `@` and trailing space.
    public static let maxTagSectionBytes = 8191
    /// Client-only tags a client may send: 4094 octets plus `@` and space.
    public static let maxClientTagBytes = 4094
    /// The longest line a client may send: tags and body, without CR LF.
    public static let maxLineBytes = maxTagSectionBytes + maxBodyBytes
    /// RFC 1459 §2.3: at most 15 parameters.
    public static let maxParams = 15
    public static let maxTags = 64
}

public enum IRCParseError: Error, Sendable, Equatable {
    case empty
    /// NUL, CR or LF inside the line.
    case forbiddenByte
    case tagsTooLong
    case bodyTooLong
    case malformedTags
    case noCommand
    case malformedCommand
    case tooManyParams
}

extension IRCMessage {
    /// Parses one line (without its CR LF). Never traps, whatever the bytes.
    public static func parse(_ line: some Collection<UInt8>) throws(IRCParseError) -> IRCMessage {
        let bytes = Array(line)
        if bytes.contains(where: { $0 == 0 || $0 == 0x0d || $0 == 0x0a }) { throw .forbiddenByte }
        var index = 0
        func skipSpaces() { while index < bytes.count && bytes[index] == 0x20 { index += 1 } }
        func word() -> ArraySlice<UInt8> {
            let start = index
            while index < bytes.count && bytes[index] != 0x20 { index += 1 }
            return bytes[start..<index]
        }
        skipSpaces()
        guard index < bytes.count else { throw .empty }
        var tags: [IRCTag] = []
        if bytes[index] == UInt8(ascii: "@") {
            let start = index
            let section = word().dropFirst()
            // The section's length counts the `@` and one trailing space.
            guard index - start + 1 <= IRCLimits.maxTagSectionBytes else { throw .tagsTooLong }
            tags = try parseTags(section)
            skipSpaces()
        }
        guard bytes.count - index <= IRCLimits.maxBodyBytes else { throw .bodyTooLong }
        var source: String?
        if index < bytes.count && bytes[index] == UInt8(ascii: ":") {
            let name = word().dropFirst()
            guard !name.isEmpty else { throw .noCommand }
            source = String(decoding: name, as: UTF8.self)
            skipSpaces()
        }
        let commandBytes = word()
        guard !commandBytes.isEmpty else { throw .noCommand }
        let isWord = commandBytes.allSatisfy { ($0 | 0x20) >= UInt8(ascii: "a") && ($0 | 0x20) <= UInt8(ascii: "z") }
        let isNumeric = commandBytes.count == 3 && commandBytes.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        guard (isWord && commandBytes.count <= 32) || isNumeric else { throw .malformedCommand }
        let command = String(decoding: commandBytes, as: UTF8.self).uppercased()
        var params: [String] = []
        while true {
            skipSpaces()
            guard index < bytes.count else { break }
            guard params.count < IRCLimits.maxParams else { throw .tooManyParams }
            if bytes[index] == UInt8(ascii: ":") {
                params.append(String(decoding: bytes[(index + 1)...], as: UTF8.self))
                break
            }
            params.append(String(decoding: word(), as: UTF8.self))
        }
        return IRCMessage(tags: tags, source: source, command: command, params: params)
    }

    static func parseTags(_ section: ArraySlice<UInt8>) throws(IRCParseError) -> [IRCTag] {
        var tags: [IRCTag] = []
        for item in section.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: true) {
            guard tags.count < IRCLimits.maxTags else { throw .malformedTags }
            let equals = item.firstIndex(of: UInt8(ascii: "="))
            let keyBytes = item[item.startIndex..<(equals ?? item.endIndex)]
            guard isValidTagKey(keyBytes) else { throw .malformedTags }
            let value = equals.map { unescapeTagValue(item[($0 + 1)...]) } ?? ""
            let key = String(decoding: keyBytes, as: UTF8.self)
            // IRCv3: when a key repeats, the last value wins.
            tags.removeAll { $0.key == key }
            tags.append(IRCTag(key, value))
        }
        return tags
    }

    /// `[+] [vendor '/'] 1*( ALPHA / DIGIT / '-' )`; the vendor is a host name.
    static func isValidTagKey(_ key: ArraySlice<UInt8>) -> Bool {
        var key = key
        if key.first == UInt8(ascii: "+") { key = key.dropFirst() }
        let name = key.lastIndex(of: UInt8(ascii: "/")).map { key[($0 + 1)...] } ?? key
        guard !name.isEmpty, key.count <= 256 else { return false }
        return key.allSatisfy { byte in
            (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z")) || (byte >= 0x30 && byte <= 0x39)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "/")
        } && name.allSatisfy { $0 != UInt8(ascii: ".") }
    }

    /// IRCv3 message-tags escaping: `\:` `;`, `\s` space, `\\`, `\r`, `\n`; a backslash before
    /// anything else is dropped, and a trailing one too.
    static func unescapeTagValue(_ value: ArraySlice<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(value.count)
        var escaped = false
        for byte in value {
            if escaped {
                switch byte {
                case UInt8(ascii: ":"): out.append(UInt8(ascii: ";"))
                case UInt8(ascii: "s"): out.append(0x20)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "n"): out.append(0x0a)
                default: out.append(byte)
                }
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func escapeTagValue(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for character in value.unicodeScalars {
            switch character {
            case ";": out += "\\:"
            case " ": out += "\\s"
            case "\\": out += "\\\\"
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(character)
            }
        }
        return out
    }

    /// The wire form with CR LF. Middle parameters are expected without spaces (the server
    /// builds them); the last one is sent as trailing when it needs to be. Text that came
    /// from a client never holds CR, LF or NUL (the parser refuses them).
    public func encoded() -> String {
        var line = ""
        if !tags.isEmpty {
            line += "@"
            line += tags.map { $0.value.isEmpty ? $0.key : "\($0.key)=\(Self.escapeTagValue($0.value))" }.joined(separator: ";")
            line += " "
        }
        if let source { line += ":\(source) " }
        line += command
        let textCommand = Self.textCommands.contains(command)
        for (position, param) in params.enumerated() {
            let last = position == params.count - 1
            // Bytes, not Characters: a space or colon followed by a combining mark is one
            // Character that is neither, and would split the parameter on the wire.
            let needsTrailing = param.isEmpty || param.utf8.contains(0x20) || param.utf8.first == UInt8(ascii: ":")
            if last && (needsTrailing || (textCommand && (position > 0 || Self.textOnly.contains(command)))) {
                line += " :\(param)"
            } else {
                line += " \(param)"
            }
        }
        return line + "\r\n"
    }

    /// Commands whose last parameter is free text: always sent as a trailing parameter, as
    /// clients and the usual servers expect.
    static let textCommands: Set<String> = [
        "CAP", "PRIVMSG", "NOTICE", "PART", "QUIT", "TOPIC", "KICK", "AWAY", "ERROR", "301", "311", "319", "322", "332", "353", "372",
    ]

    /// Text commands whose only parameter is the text.
    static let textOnly: Set<String> = ["AWAY", "QUIT", "ERROR"]

    /// The byte count of the tag section a client sent (`@`, tags, space), for the
    /// client-only tag limit.
    public var clientTagBytes: Int {
        let client = tags.filter(\.isClientOnly)
        guard !client.isEmpty else { return 0 }
        return 2 + client.map { $0.value.isEmpty ? $0.key.utf8.count : $0.key.utf8.count + 1 + Self.escapeTagValue($0.value).utf8.count }
            .reduce(0, +) + client.count - 1
    }
}
