/// A name that is safe to use as one path component on the shared tree.
///
/// Names come from hostile input (SMTP envelopes, IMAP commands, LDAP entries). Every
/// kind rejects the empty string, `/`, NUL and other control characters, `.` and `..`
/// and any `..` inside, and names longer than the kind's limit, so a name can never
/// leave the directory it is joined to or hide itself as a dot file.
public struct SafeName: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable, CustomStringConvertible {
        /// A cluster node name: ASCII letters, digits, `-`, `_`, `.`; no leading `.`; 1–64 characters.
        case node
        /// The local part of a mail address (RFC 5322 `dot-atom-text`): ASCII `atext` and
        /// single dots, no leading or trailing dot; 1–64 bytes (RFC 5321 §4.5.3.1.1).
        case localPart
        /// A domain as LDH labels (RFC 1035 §2.3.1; IDNs in their `xn--` form), stored
        /// lowercased without a trailing dot; labels 1–63, whole name at most 253.
        case domain
        /// A Maildir++ folder name as stored on disk, hierarchy separated by `.` (for
        /// example `Archive.2024`): UTF-8 without control characters, `/`, `\`, empty
        /// levels or a leading/trailing `.`; at most 200 bytes (the directory name is
        /// `.` + this and must fit the 255-byte file name limit with room to spare).
        case folder
        /// Any other single file name: no `/`, NUL or control characters, no leading `.`,
        /// no `..`; at most 128 bytes.
        case fileName

        public var description: String {
            switch self {
            case .node: return "node name"
            case .localPart: return "user local part"
            case .domain: return "domain"
            case .folder: return "folder name"
            case .fileName: return "file name"
            }
        }

        /// The longest accepted name, in UTF-8 bytes.
        public var maxBytes: Int {
            switch self {
            case .node: return 64
            case .localPart: return 64
            case .domain: return 253
            case .folder: return 200
            case .fileName: return 128
            }
        }
    }

    /// The validated (for domains: lowercased) name.
    public let value: String
    public let kind: Kind

    public init(_ name: String, kind: Kind) throws(SharedTreeError) {
        if let reason = Self.problem(with: name, kind: kind) {
            throw .invalidName(kind: kind.description, name: name, reason: reason)
        }
        self.kind = kind
        self.value = kind == .domain ? Self.asciiLowercased(name) : name
    }

    /// True when `name` is acceptable as `kind`.
    public static func isValid(_ name: String, kind: Kind) -> Bool {
        problem(with: name, kind: kind) == nil
    }

    public var description: String { value }

    /// Why `name` is not acceptable as `kind`, or nil when it is.
    static func problem(with name: String, kind: Kind) -> String? {
        let bytes = Array(name.utf8)
        if bytes.isEmpty { return "it is empty" }
        if bytes.count > kind.maxBytes {
            return "it is \(bytes.count) bytes long, the limit is \(kind.maxBytes)"
        }
        for scalar in name.unicodeScalars {
            switch scalar.value {
            case 0: return "it contains a NUL byte"
            case 0x01..<0x20, 0x7F, 0x80..<0xA0: return "it contains a control character"
            case 0x2F: return "it contains \"/\""
            default: break
            }
        }
        if name == "." || name == ".." { return "\"\(name)\" names a directory itself" }
        if name.contains("..") { return "it contains \"..\"" }

        switch kind {
        case .node:
            if bytes.first == UInt8(ascii: ".") { return "it starts with \".\"" }
            if let bad = bytes.first(where: { !isNodeByte($0) }) {
                return "character \(describe(bad)) is not allowed (use letters, digits, \"-\", \"_\" and \".\")"
            }
        case .localPart:
            if bytes.first == UInt8(ascii: ".") || bytes.last == UInt8(ascii: ".") {
                return "it starts or ends with \".\""
            }
            if let bad = bytes.first(where: { !isAtext($0) && $0 != UInt8(ascii: ".") }) {
                return "character \(describe(bad)) is not allowed in a local part"
            }
        case .domain:
            let labels = name.split(separator: ".", omittingEmptySubsequences: false)
            if labels.count > 1, labels.last?.isEmpty == true {
                return "it ends with \".\" (write it without the trailing dot)"
            }
            for label in labels {
                let labelBytes = Array(label.utf8)
                if labelBytes.isEmpty { return "it has an empty label" }
                if labelBytes.count > 63 { return "label \(quoted(String(label))) is longer than 63 bytes" }
                if let bad = labelBytes.first(where: { !isLDHByte($0) }) {
                    return "character \(describe(bad)) is not allowed (use letters, digits and \"-\"; write international names in their xn-- form)"
                }
                if labelBytes.first == UInt8(ascii: "-") || labelBytes.last == UInt8(ascii: "-") {
                    return "label \(quoted(String(label))) starts or ends with \"-\""
                }
            }
        case .folder:
            if bytes.first == UInt8(ascii: ".") || bytes.last == UInt8(ascii: ".") {
                return "it starts or ends with \".\""
            }
            if bytes.contains(UInt8(ascii: "\\")) { return "it contains \"\\\"" }
        case .fileName:
            if bytes.first == UInt8(ascii: ".") { return "it starts with \".\"" }
        }
        return nil
    }

    private static func isNodeByte(_ byte: UInt8) -> Bool {
        isASCIIAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
    }

    private static func isLDHByte(_ byte: UInt8) -> Bool {
        isASCIIAlphanumeric(byte) || byte == UInt8(ascii: "-")
    }

    /// RFC 5322 §3.2.3 `atext`.
    private static func isAtext(_ byte: UInt8) -> Bool {
        if isASCIIAlphanumeric(byte) { return true }
        return Array("!#$%&'*+-/=?^_`{|}~".utf8).contains(byte) && byte != UInt8(ascii: "/")
    }

    private static func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }

    private static func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F {
            return "\"\(Character(Unicode.Scalar(byte)))\""
        }
        return "0x" + String(byte, radix: 16)
    }

    private static func asciiLowercased(_ name: String) -> String {
        String(decoding: name.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
    }
}
