/// One `attribute=value` parameter as written in the field: the name keeps its case and any
/// RFC 2231 `*N` / `*` suffix, the value has its quotes removed and quoted pairs unescaped
/// (what IMAP sends in `body-fld-param`).
public struct MIMEParameter: Sendable, Hashable {
    public var name: String
    public var value: [UInt8]

    public init(_ name: String, _ value: [UInt8]) {
        self.name = name
        self.value = value
    }

    public init(_ name: String, _ value: String) {
        self.init(name, Array(value.utf8))
    }
}

/// A parameter after RFC 2231 (continuations joined, `charset'language'%XX` decoded) and
/// RFC 2047 (encoded words in a quoted value, as many mailers write file names): for web-mail.
public struct DecodedParameter: Sendable, Hashable {
    /// Lower-cased, without the RFC 2231 suffix.
    public var name: String
    public var value: String
    /// The RFC 2231 language tag, when one was given.
    public var language: String?

    public init(name: String, value: String, language: String? = nil) {
        self.name = name
        self.value = value
        self.language = language
    }
}

/// Limits for the structured field parsers.
enum FieldLimits {
    static let maxParameters = 256
    static let maxContinuationSection = 4096
}

/// RFC 2045 §5 Content-Type.
public struct ContentType: Sendable, Hashable {
    /// The type and subtype as written (IMAP sends them unchanged).
    public var type: String
    public var subtype: String
    public var parameters: [MIMEParameter]
    /// True when no valid Content-Type was present and the default applies (RFC 2045 §5.2,
    /// RFC 2046 §5.1.5 for multipart/digest).
    public var isDefault: Bool

    public init(type: String, subtype: String, parameters: [MIMEParameter] = [], isDefault: Bool = false) {
        self.type = type
        self.subtype = subtype
        self.parameters = parameters
        self.isDefault = isDefault
    }

    /// RFC 2045 §5.2: "text/plain; charset=us-ascii".
    public static let textPlain = ContentType(type: "text", subtype: "plain", parameters: [MIMEParameter("charset", "us-ascii")], isDefault: true)
    /// RFC 2046 §5.1.5: the default inside multipart/digest.
    public static let messageRFC822 = ContentType(type: "message", subtype: "rfc822", isDefault: true)

    /// `type/subtype` in lower case.
    public var mediaType: String { type.lowercased() + "/" + subtype.lowercased() }
    public var isMultipart: Bool { type.lowercased() == "multipart" }
    public var isText: Bool { type.lowercased() == "text" }
    /// message/rfc822, and message/global (RFC 6532 §3.7), which IMAP describes the same way.
    public var isEncapsulatedMessage: Bool {
        type.lowercased() == "message" && ["rfc822", "global"].contains(subtype.lowercased())
    }

    /// The raw value of the first parameter named `name` (case-insensitive, no RFC 2231 joining).
    public func parameter(_ name: String) -> [UInt8]? {
        parameters.first { asciiCaseInsensitiveEqual($0.name.utf8, name.utf8) }?.value
    }

    /// The parameters with RFC 2231 and RFC 2047 applied.
    public var decodedParameters: [DecodedParameter] { ParameterDecoder.decode(parameters) }

    /// The decoded value of parameter `name` (lower-case name).
    public func decodedParameter(_ name: String) -> String? {
        decodedParameters.first { $0.name == name.lowercased() }?.value
    }

    /// Parses a Content-Type value; nil or a syntax error gives `defaultType` for a missing
    /// field and text/plain for an invalid one (RFC 2045 §5.2).
    public static func parse(_ value: [UInt8]?, default defaultType: ContentType = .textPlain) -> ContentType {
        guard let value else { return defaultType }
        var lexer = MIMELexer(value)
        lexer.skipCFWS()
        let type = lexer.token()
        lexer.skipCFWS()
        guard !type.isEmpty, lexer.current == 0x2f else { return .textPlain }
        lexer.index += 1
        lexer.skipCFWS()
        let subtype = lexer.token()
        guard !subtype.isEmpty else { return .textPlain }
        return ContentType(
            type: String(decoding: type, as: UTF8.self), subtype: String(decoding: subtype, as: UTF8.self),
            parameters: parseParameters(&lexer))
    }

    /// `*(";" parameter)`, tolerant of junk between parameters and of missing values.
    static func parseParameters(_ lexer: inout MIMELexer) -> [MIMEParameter] {
        var parameters: [MIMEParameter] = []
        while !lexer.isAtEnd && parameters.count < FieldLimits.maxParameters {
            lexer.skipCFWS()
            guard lexer.current == 0x3b else {
                lexer.skip(to: 0x3b)
                continue
            }
            lexer.index += 1
            lexer.skipCFWS()
            var name = lexer.token()
            // RFC 2231 names carry "*", which is a token byte; tolerate other junk up to "=".
            while let byte = lexer.current, byte != 0x3d, byte != 0x3b, !isWhiteSpace(byte), byte != 0x28, byte != 0x22 {
                name.append(byte)
                lexer.index += 1
            }
            lexer.skipCFWS()
            guard !name.isEmpty, lexer.current == 0x3d else { continue }
            lexer.index += 1
            lexer.skipCFWS()
            let value = lexer.parameterValue()
            parameters.append(MIMEParameter(String(decoding: name, as: UTF8.self), value))
        }
        return parameters
    }
}

/// RFC 2183 Content-Disposition.
public struct ContentDisposition: Sendable, Hashable {
    /// `inline`, `attachment`... as written.
    public var kind: String
    public var parameters: [MIMEParameter]

    public init(kind: String, parameters: [MIMEParameter] = []) {
        self.kind = kind
        self.parameters = parameters
    }

    public var isAttachment: Bool { kind.lowercased() == "attachment" }

    public var decodedParameters: [DecodedParameter] { ParameterDecoder.decode(parameters) }

    /// nil when the value has no disposition type.
    public static func parse(_ value: [UInt8]?) -> ContentDisposition? {
        guard let value else { return nil }
        var lexer = MIMELexer(value)
        lexer.skipCFWS()
        let kind = lexer.token()
        guard !kind.isEmpty else { return nil }
        return ContentDisposition(kind: String(decoding: kind, as: UTF8.self), parameters: ContentType.parseParameters(&lexer))
    }
}

/// RFC 3282 Content-Language: a comma-separated list of language tags.
enum ContentLanguage {
    static func parse(_ value: [UInt8]?) -> [String] {
        guard let value else { return [] }
        var lexer = MIMELexer(value)
        var tags: [String] = []
        while !lexer.isAtEnd && tags.count < FieldLimits.maxParameters {
            lexer.skipCFWS()
            var tag: [UInt8] = []
            if lexer.current == 0x22 {
                tag = lexer.quotedString()
            } else {
                while let byte = lexer.current, byte != 0x2c, byte != 0x28, byte != 0x22, !isWhiteSpace(byte) {
                    tag.append(byte)
                    lexer.index += 1
                }
            }
            if !tag.isEmpty { tags.append(String(decoding: tag, as: UTF8.self)) }
            lexer.skipCFWS()
            if lexer.current == 0x2c || (tag.isEmpty && !lexer.isAtEnd) { lexer.index += 1 }
        }
        return tags
    }
}

/// RFC 2231 §3 (continuations), §4 (charset and language) and RFC 2047 §5 in quoted values.
enum ParameterDecoder {
    private struct Section {
        var number: Int?
        var extended: Bool
        var value: [UInt8]
    }

    static func decode(_ parameters: [MIMEParameter]) -> [DecodedParameter] {
        var order: [String] = []
        var plain: [String: [UInt8]] = [:]
        var sections: [String: [Section]] = [:]
        for parameter in parameters {
            let (base, section) = split(parameter)
            if section == nil {
                if plain[base] == nil {
                    if sections[base] == nil { order.append(base) }
                    plain[base] = parameter.value
                }
            } else if let section {
                if plain[base] == nil && sections[base] == nil { order.append(base) }
                sections[base, default: []].append(section)
            }
        }
        return order.map { name in
            // RFC 2231 values win over a plain one given for old readers.
            if let parts = sections[name], let decoded = joined(parts) {
                return DecodedParameter(name: name, value: decoded.value, language: decoded.language)
            }
            let raw = plain[name] ?? []
            return DecodedParameter(name: name, value: EncodedWords.decode(raw))
        }
    }

    /// `name*` → extended without number; `name*3` → section 3; `name*3*` → extended section 3.
    private static func split(_ parameter: MIMEParameter) -> (String, Section?) {
        let name = parameter.name.lowercased()
        guard let star = name.firstIndex(of: "*") else { return (name, nil) }
        let base = String(name[..<star])
        var rest = name[name.index(after: star)...]
        if rest.isEmpty { return (base, Section(number: nil, extended: true, value: parameter.value)) }
        let extended = rest.hasSuffix("*")
        if extended { rest = rest.dropLast() }
        guard !rest.isEmpty, rest.allSatisfy(\.isASCIIDigit), rest.count <= 4, let number = Int(rest), number <= FieldLimits.maxContinuationSection,
              !(rest.count > 1 && rest.hasPrefix("0"))
        else { return (name, nil) }
        return (base, Section(number: number, extended: extended, value: parameter.value))
    }

    private static func joined(_ parts: [Section]) -> (value: String, language: String?)? {
        let single = parts.first { $0.number == nil }
        let numbered = parts.filter { $0.number != nil }.sorted { ($0.number ?? 0) < ($1.number ?? 0) }
        var ordered: [Section] = []
        if let first = numbered.first, first.number == 0 {
            // §3: sections are taken in order from 0 while they are consecutive.
            var expected = 0
            for part in numbered where part.number == expected {
                ordered.append(part)
                expected += 1
            }
        } else if let single {
            ordered = [single]
        } else {
            return nil
        }
        var charset: String?
        var language: String?
        var bytes: [UInt8] = []
        for (position, part) in ordered.enumerated() {
            guard part.extended else {
                bytes.append(contentsOf: part.value)
                continue
            }
            var value = part.value[...]
            if position == 0 {
                // §4: charset'language'value; both may be empty.
                let quotes = value.indices.filter { value[$0] == 0x27 }.prefix(2)
                if quotes.count == 2, let first = quotes.first, let second = quotes.last {
                    charset = String(decoding: value[value.startIndex..<first], as: UTF8.self)
                    let tag = String(decoding: value[(first + 1)..<second], as: UTF8.self)
                    language = tag.isEmpty ? nil : tag
                    value = value[(second + 1)...]
                }
            }
            bytes.append(contentsOf: percentDecode(value))
        }
        let text: String
        if let charset, !charset.isEmpty, let decoded = Charset.decode(bytes, charset: charset) {
            text = decoded
        } else {
            text = lenientString(bytes)
        }
        return (text, language)
    }

    static func percentDecode(_ value: ArraySlice<UInt8>) -> [UInt8] {
        var output: [UInt8] = []
        var index = value.startIndex
        while index < value.endIndex {
            if value[index] == 0x25, index + 2 < value.endIndex,
               let high = QuotedPrintable.hexValue(value[index + 1]), let low = QuotedPrintable.hexValue(value[index + 2]) {
                output.append(high << 4 | low)
                index += 3
            } else {
                output.append(value[index])
                index += 1
            }
        }
        return output
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
