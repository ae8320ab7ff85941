/// Why a tag-list (RFC 6376 §3.2) was refused.
public enum TagListError: Error, Sendable, Equatable {
    case malformedTag(String)
    case invalidValue(tag: String)
    case duplicateTag(String)
    case tooManyTags
}

/// RFC 6376 §3.2 tag=value lists, used by DKIM-Signature fields, DKIM key records and (with
/// the same grammar, RFC 7489 §6.4) DMARC records.
///
/// Tag names are case-sensitive (§3.2). Values keep inner folding white space (the caller
/// strips it where the tag's grammar says so, e.g. base64 in b=, bh=, p=) but lose the white
/// space around them. Empty tag-specs (";;", a trailing ";") are skipped. A duplicate tag
/// makes the whole list invalid (§3.2: "Tags with duplicate names MUST NOT occur").
public struct TagList: Sendable, Equatable {
    public private(set) var tags: [(name: String, value: String)]

    public subscript(name: String) -> String? {
        tags.first { $0.name == name }?.value
    }

    public var names: [String] { tags.map(\.name) }

    public static func == (lhs: TagList, rhs: TagList) -> Bool {
        lhs.tags.elementsEqual(rhs.tags) { $0.name == $1.name && $0.value == $1.value }
    }

    public init(parsing text: String, maxTags: Int = MailAuthLimits.maxTags) throws(TagListError) {
        var tags: [(name: String, value: String)] = []
        var seen = Set<String>()
        for spec in text.utf8.split(separator: 0x3b, omittingEmptySubsequences: false) {
            let trimmed = Self.trimmingFWS(spec)
            if trimmed.isEmpty { continue }
            guard let equals = trimmed.firstIndex(of: 0x3d) else {
                throw .malformedTag(Self.printable(trimmed))
            }
            let nameBytes = Self.trimmingFWS(trimmed[trimmed.startIndex..<equals])
            guard let first = nameBytes.first, Self.isAlpha(first),
                nameBytes.allSatisfy({ Self.isAlpha($0) || Self.isDigit($0) || $0 == 0x5f })
            else {
                throw .malformedTag(Self.printable(trimmed))
            }
            let name = String(decoding: nameBytes, as: UTF8.self)
            let valueBytes = Self.trimmingFWS(trimmed[trimmed.index(after: equals)...])
            // tval = 1*VALCHAR, VALCHAR = %x21-3A / %x3C-7E, separated by FWS. Bytes above
            // 0x7F are let through for RFC 8616 (internationalized) values.
            guard valueBytes.allSatisfy({ ($0 >= 0x21 && $0 != 0x3b && $0 != 0x7f) || Self.isFWSByte($0) }) else {
                throw .invalidValue(tag: name)
            }
            guard !seen.contains(name) else { throw .duplicateTag(name) }
            guard tags.count < maxTags else { throw .tooManyTags }
            seen.insert(name)
            tags.append((name, String(decoding: valueBytes, as: UTF8.self)))
        }
        self.tags = tags
    }

    static func isAlpha(_ byte: UInt8) -> Bool { (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) }
    static func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
    static func isFWSByte(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0d || byte == 0x0a }

    static func trimmingFWS(_ bytes: Substring.UTF8View) -> Substring.UTF8View {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, isFWSByte(bytes[start]) { start = bytes.index(after: start) }
        while end > start, isFWSByte(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        return bytes[start..<end]
    }

    private static func printable(_ bytes: Substring.UTF8View) -> String {
        String(String(decoding: bytes, as: UTF8.self).prefix(40))
    }
}

extension String {
    /// The string without any FWS (SP, HTAB, CR, LF): base64 tag values and h= lists may be
    /// folded anywhere (RFC 6376 §3.5).
    var removingFWS: String {
        String(decoding: utf8.filter { !TagList.isFWSByte($0) }, as: UTF8.self)
    }
}
