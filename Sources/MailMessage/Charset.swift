import Foundation

/// Decoding of text in a MIME charset (RFC 2045 §5.1, RFC 2047 §2) to Swift strings, for
/// web-mail display. IMAP itself never decodes: it sends the bytes of the message.
public enum Charset {
    /// The text of `bytes` in `charset` (case-insensitive IANA name or a common alias), or nil
    /// when the charset is unknown here. Invalid sequences become U+FFFD.
    public static func decode(_ bytes: [UInt8], charset: String) -> String? {
        let name = canonicalName(charset)
        switch name {
        case "utf-8":
            return String(decoding: bytes, as: UTF8.self)
        case "us-ascii":
            // 8-bit bytes under us-ascii are a mislabel; UTF-8 is the likeliest meaning.
            return lenientString(bytes)
        case "iso-8859-1":
            return SingleByteCharset.latin1.decode(bytes)
        default:
            if let table = SingleByteCharset.named(name) { return table.decode(bytes) }
            return foundationDecode(bytes, name: name)
        }
    }

    /// Whether `decode` knows the charset.
    public static func isKnown(_ charset: String) -> Bool {
        let name = canonicalName(charset)
        if ["utf-8", "us-ascii", "iso-8859-1"].contains(name) || SingleByteCharset.named(name) != nil { return true }
        return foundationEncoding(name) != nil
    }

    /// Lower-cased IANA name, with the aliases seen in real mail mapped to it.
    static func canonicalName(_ charset: String) -> String {
        let trimmed = charset.lowercased().unicodeScalars.drop { $0 == " " || $0 == "\t" || $0 == "\"" }
        let name = String(String.UnicodeScalarView(trimmed.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\"" }.reversed()))
        if let alias = aliases[name] { return alias }
        if name.hasPrefix("iso8859-") || name.hasPrefix("iso_8859-") {
            return "iso-8859-" + name.split(separator: "-").dropFirst().joined(separator: "-")
        }
        if name.hasPrefix("iso-8859-"), let dash = name.dropFirst(9).firstIndex(of: ":") {
            return String(name[..<dash])  // "iso-8859-1:1987"
        }
        if name.hasPrefix("cp125"), name.count == 6 { return "windows-" + name.dropFirst(2) }
        if name.hasPrefix("x-cp125"), name.count == 8 { return "windows-" + name.dropFirst(4) }
        return name
    }

    private static let aliases: [String: String] = [
        "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8", "x-unicode20utf8": "utf-8",
        "ascii": "us-ascii", "ansi_x3.4-1968": "us-ascii", "iso646-us": "us-ascii", "us": "us-ascii", "646": "us-ascii",
        "latin1": "iso-8859-1", "latin-1": "iso-8859-1", "l1": "iso-8859-1", "iso_8859-1": "iso-8859-1", "iso8859-1": "iso-8859-1",
        "latin2": "iso-8859-2", "l2": "iso-8859-2", "latin9": "iso-8859-15", "latin-9": "iso-8859-15",
        "cyrillic": "iso-8859-5", "greek": "iso-8859-7", "hebrew": "iso-8859-8", "iso-8859-8-i": "iso-8859-8",
        "arabic": "iso-8859-6", "tis-620": "iso-8859-11",
        "koi8r": "koi8-r", "koi8u": "koi8-u", "cp866": "ibm866", "866": "ibm866",
        "x-sjis": "shift_jis", "sjis": "shift_jis", "shift-jis": "shift_jis", "ms_kanji": "shift_jis",
    ]

    private static func foundationEncoding(_ name: String) -> String.Encoding? {
        // Only what swift-corelibs-foundation really converts on Linux (not EUC-JP, GB*, Big5, EUC-KR).
        switch name {
        case "shift_jis", "windows-31j": return .shiftJIS
        case "iso-2022-jp": return .iso2022JP
        case "utf-16": return .utf16
        case "utf-16be": return .utf16BigEndian
        case "utf-16le": return .utf16LittleEndian
        case "utf-32": return .utf32
        case "utf-32be": return .utf32BigEndian
        case "utf-32le": return .utf32LittleEndian
        default: return nil
        }
    }

    private static func foundationDecode(_ bytes: [UInt8], name: String) -> String? {
        guard let encoding = foundationEncoding(name) else { return nil }
        return String(data: Data(bytes), encoding: encoding)
    }
}

/// A charset with one character per byte, given by the code points of its upper half.
struct SingleByteCharset: Sendable {
    let upperHalf: [Unicode.Scalar]

    init(upperHalf: [Unicode.Scalar]) {
        self.upperHalf = upperHalf
    }

    init?(table: String) {
        let scalars = Array(table.unicodeScalars)
        guard scalars.count == 128 else { return nil }
        self.upperHalf = scalars
    }

    func decode(_ bytes: [UInt8]) -> String {
        var result = String.UnicodeScalarView()
        for byte in bytes {
            result.append(byte < 0x80 ? Unicode.Scalar(byte) : upperHalf[Int(byte - 0x80)])
        }
        return String(result)
    }

    static let latin1 = SingleByteCharset(upperHalf: (0x80...0xff).map { Unicode.Scalar(UInt8($0)) })
    static let windows1252 = named("windows-1252") ?? latin1

    private static let tables: [String: SingleByteCharset] = upperHalves.compactMapValues(SingleByteCharset.init(table:))

    static func named(_ canonicalName: String) -> SingleByteCharset? {
        tables[canonicalName]
    }
}
