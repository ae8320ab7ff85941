/// One token. Text and attribute values are UTF-8 with character references decoded, NUL and
/// other C0 controls (but tab, LF, FF) removed and CR/CRLF turned into LF (§13.2.3.5).
enum HTMLToken: Hashable, Sendable {
    case text([UInt8])
    case startTag(HTMLStartTag)
    /// The lower-cased tag name (attributes of end tags are parsed and dropped, §13.2.5.8).
    case endTag(String)
    case comment
    case doctype
    case cdata
}

struct HTMLAttribute: Hashable, Sendable {
    /// Lower-cased (ASCII only, §13.2.5.33).
    var name: String
    var value: [UInt8]
    /// The value was longer than `maxAttributeValueBytes`: only its start is kept, and the
    /// sanitizer drops the attribute.
    var truncated = false
}

struct HTMLStartTag: Hashable, Sendable {
    /// Lower-cased (ASCII only, §13.2.5.8).
    var name: String
    /// In source order, the first of duplicated names only (§13.2.5.33), at most
    /// `maxAttributes`.
    var attributes: [HTMLAttribute]
    var selfClosing: Bool

    func attribute(_ name: String) -> HTMLAttribute? {
        attributes.first { $0.name == name }
    }
}

struct HTMLTokenizerLimits: Sendable, Hashable {
    /// Longer tag and attribute names are kept only in part, which no allowlist matches.
    var maxNameBytes = 64
    /// Attributes after this many on one tag are parsed and dropped.
    var maxAttributes = 64
    /// Longer attribute values keep this many bytes and are marked `truncated`.
    var maxAttributeValueBytes = 1 << 20
    /// Text tokens are cut into pieces of about this size so a huge text run is never copied
    /// whole before the sanitizer can stop at its output limit.
    var maxTextChunkBytes = 64 * 1024
}

/// A tolerant HTML tokenizer after the HTML Living Standard §13.2.5, reduced to what a sanitizer
/// needs: start and end tags with attributes, text with character references decoded, and
/// comments, doctypes, CDATA sections and processing instructions recognised so they can be
/// dropped. The input is hostile: every byte sequence tokenizes, in one pass over the input (no
/// position is read more than a small constant number of times), with bounded names, attribute
/// counts and attribute sizes. There is no tree construction here; `HTMLSanitizer` keeps the
/// little nesting state it needs.
///
/// Differences from the standard that do not matter to the sanitizer: no foreign-content
/// (SVG/MathML) rules, CDATA sections are recognised anywhere (the standard treats them as bogus
/// comments outside foreign content), and which elements switch to raw text is decided here
/// from the tag name rather than by a tree builder.
struct HTMLTokenizer: Sequence, IteratorProtocol {
    private let input: [UInt8]
    private var position = 0
    private let limits: HTMLTokenizerLimits
    /// Inside a raw text element (§13.2.5.2–3): where its text ends (at its end tag or the end of
    /// the input) and whether character references count in it (RCDATA: title, textarea).
    private var rawText: (end: Int, decodesReferences: Bool)?

    /// Elements whose content is text up to their end tag (§13.2.5.2, .3, .5), as with
    /// scripting enabled (so `noscript` too), which is how a browser would read them.
    static let rawTextElements: Set<String> = ["script", "style", "xmp", "iframe", "noembed", "noframes", "noscript", "title", "textarea"]
    static let rcdataElements: Set<String> = ["title", "textarea"]

    init(_ input: [UInt8], limits: HTMLTokenizerLimits = HTMLTokenizerLimits()) {
        self.input = input
        self.limits = limits
    }

    mutating func next() -> HTMLToken? {
        if let raw = rawText {
            if position < raw.end { return text(upTo: raw.end, decodingReferences: raw.decodesReferences) }
            rawText = nil
        }
        while position < input.count {
            guard startsMarkup(at: position) else {
                // Looking no further than one chunk ahead keeps the work proportional to what
                // is returned, however long the text run.
                let bound = Swift.min(input.count, position + limits.maxTextChunkBytes + 1)
                return text(upTo: nextMarkup(from: position + 1, before: bound), decodingReferences: true)
            }
            switch input[position + 1] {
            case UInt8(ascii: "/"):
                if let token = endTagOrBogusComment() { return token }
            case UInt8(ascii: "!"):
                return markupDeclaration()
            case UInt8(ascii: "?"):
                // §13.2.5.6 unexpected-question-mark-instead-of-tag-name: a bogus comment.
                skipBogusComment(from: position + 2)
                return .comment
            default:
                position += 1
                if let tag = startTag() { return .startTag(tag) }
                // EOF inside the tag: the tag is dropped (§13.2.5.32 eof-in-tag).
                return nil
            }
        }
        return nil
    }

    /// A `<` that opens a tag, an end tag, a comment or a bogus comment (§13.2.5.6); any other
    /// `<`, and `</` at the very end (§13.2.5.7), is text.
    private func startsMarkup(at i: Int) -> Bool {
        guard input[i] == UInt8(ascii: "<"), i + 1 < input.count else { return false }
        let c = input[i + 1]
        if c == UInt8(ascii: "/") { return i + 2 < input.count }
        return c.isHTMLLetter || c == UInt8(ascii: "!") || c == UInt8(ascii: "?")
    }

    /// The index of the next markup at or after `start` and before `bound`, else `bound`.
    private func nextMarkup(from start: Int, before bound: Int) -> Int {
        var i = start
        while i < bound {
            if input[i] == UInt8(ascii: "<"), startsMarkup(at: i) { return i }
            i += 1
        }
        return bound
    }

    // MARK: - Text

    private func nextIndex(of byte: UInt8, from start: Int) -> Int? {
        var i = start
        while i < input.count {
            if input[i] == byte { return i }
            i += 1
        }
        return nil
    }

    /// A text token from `position` to at most `end`, cut at `maxTextChunkBytes` on a UTF-8
    /// boundary and, when it can be, before a character reference rather than through one.
    private mutating func text(upTo end: Int, decodingReferences: Bool) -> HTMLToken {
        var stop = end
        if stop - position > limits.maxTextChunkBytes {
            stop = position + limits.maxTextChunkBytes
            var back = stop
            while back > position, stop - back < 64, input[back] != UInt8(ascii: "&") { back -= 1 }
            if input[back] == UInt8(ascii: "&"), back > position { stop = back }
            while stop > position + 1, input[stop] & 0xC0 == 0x80 { stop -= 1 }
            if stop > position + 1, input[stop - 1] == 0x0D, input[stop] == 0x0A { stop -= 1 }  // keep CRLF together
        }
        var out: [UInt8] = []
        out.reserveCapacity(stop - position)
        if decodingReferences {
            Self.decode(input[position..<stop], inAttribute: false, into: &out)
        } else {
            Self.copyFiltered(input[position..<stop], inAttribute: false, into: &out)
        }
        position = stop
        return .text(out)
    }

    // MARK: - Tags

    private static func isWhitespace(_ c: UInt8) -> Bool {
        c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0C || c == 0x0D
    }

    /// A tag or attribute name from `position` up to whitespace, `/`, `>` (and `=` for
    /// attributes, except as the first byte: §13.2.5.32), lower-cased, at most `maxNameBytes`
    /// kept.
    private mutating func name(stoppingAtEquals: Bool) -> String {
        var bytes: [UInt8] = []
        var first = true
        while position < input.count {
            let c = input[position]
            if Self.isWhitespace(c) || c == UInt8(ascii: "/") || c == UInt8(ascii: ">") { break }
            if stoppingAtEquals, c == UInt8(ascii: "="), !first { break }
            first = false
            position += 1
            guard bytes.count < limits.maxNameBytes else { continue }
            if c == 0 {
                bytes += [0xEF, 0xBF, 0xBD]  // §13.2.5.8: NUL becomes U+FFFD
            } else {
                bytes.append(c.isHTMLUpper ? c | 0x20 : c)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private mutating func skipWhitespace() {
        while position < input.count, Self.isWhitespace(input[position]) { position += 1 }
    }

    /// After `<` and an ASCII letter. Nil when the input ends inside the tag.
    private mutating func startTag() -> HTMLStartTag? {
        let tagName = name(stoppingAtEquals: false)
        guard let (attributes, selfClosing) = attributesAndTagEnd() else { return nil }
        if Self.rawTextElements.contains(tagName) {
            // §13.2.6.2: the generic raw text / RCDATA parsing algorithms; a self-closing flag
            // on these is ignored (§13.1.2.1), so `<script/>` still starts raw text.
            rawText = (rawTextEnd(for: tagName), Self.rcdataElements.contains(tagName))
        } else if tagName == "plaintext" {
            rawText = (input.count, false)  // §13.2.5.5: the rest of the input is text
        }
        return HTMLStartTag(name: tagName, attributes: attributes, selfClosing: selfClosing)
    }

    /// Where the raw text of `tagName` ends: at its "appropriate end tag" (§13.2.5.11): `</`,
    /// the name in any case, then whitespace, `/` or `>`; else at the end of the input.
    private func rawTextEnd(for tagName: String) -> Int {
        let name = Array(tagName.utf8)
        var i = position
        while let lt = nextIndex(of: UInt8(ascii: "<"), from: i) {
            i = lt + 1
            guard i < input.count, input[i] == UInt8(ascii: "/") else { continue }
            var j = i + 1
            var k = 0
            while k < name.count, j < input.count, input[j].htmlLowercased == name[k] {
                j += 1
                k += 1
            }
            guard k == name.count else { continue }
            if j == input.count || Self.isWhitespace(input[j]) || input[j] == UInt8(ascii: "/") || input[j] == UInt8(ascii: ">") {
                return lt
            }
        }
        return input.count
    }

    /// The attributes up to and including the `>` that ends the tag (§13.2.5.32–42). Nil when
    /// the input ends first.
    private mutating func attributesAndTagEnd() -> (attributes: [HTMLAttribute], selfClosing: Bool)? {
        let result = attributesAndTagEndOrEOF()
        if result == nil { position = input.count }
        return result
    }

    private mutating func attributesAndTagEndOrEOF() -> (attributes: [HTMLAttribute], selfClosing: Bool)? {
        var attributes: [HTMLAttribute] = []
        var seen = 0
        while true {
            skipWhitespace()
            guard position < input.count else { return nil }
            switch input[position] {
            case UInt8(ascii: ">"):
                position += 1
                return (attributes, false)
            case UInt8(ascii: "/"):
                position += 1
                if position < input.count, input[position] == UInt8(ascii: ">") {
                    position += 1
                    return (attributes, true)
                }
                continue  // §13.2.5.40: reconsume in the before-attribute-name state
            default:
                break
            }
            let attributeName = name(stoppingAtEquals: true)
            skipWhitespace()
            var value: [UInt8] = []
            var truncated = false
            if position < input.count, input[position] == UInt8(ascii: "=") {
                position += 1
                skipWhitespace()
                guard position < input.count else { return nil }
                let quote = input[position]
                let start: Int
                let end: Int
                if quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") {
                    start = position + 1
                    guard let close = nextIndex(of: quote, from: start) else { return nil }  // eof-in-tag
                    end = close
                    position = close + 1
                } else {
                    // §13.2.5.38: an unquoted value runs to whitespace or `>`.
                    start = position
                    while position < input.count, !Self.isWhitespace(input[position]), input[position] != UInt8(ascii: ">") {
                        position += 1
                    }
                    end = position
                }
                seen += 1
                if seen <= limits.maxAttributes {
                    let kept = Swift.min(end, start + limits.maxAttributeValueBytes)
                    truncated = kept < end
                    Self.decode(input[start..<kept], inAttribute: true, into: &value)
                }
            } else {
                seen += 1
            }
            if seen <= limits.maxAttributes, !attributes.contains(where: { $0.name == attributeName }) {
                attributes.append(HTMLAttribute(name: attributeName, value: value, truncated: truncated))
            }
        }
    }

    /// At `</`. An end tag, a bogus comment, nothing (`</>`, §13.2.5.7), or nil with `position`
    /// moved when there is nothing to return and the caller should go on.
    private mutating func endTagOrBogusComment() -> HTMLToken? {
        let afterSlash = position + 2
        let c = input[afterSlash]
        if c == UInt8(ascii: ">") {
            position = afterSlash + 1
            return nil
        }
        guard c.isHTMLLetter else {
            skipBogusComment(from: afterSlash)
            return .comment
        }
        position = afterSlash
        let tagName = name(stoppingAtEquals: false)
        guard attributesAndTagEnd() != nil else { return nil }  // EOF: dropped, position at end
        return .endTag(tagName)
    }

    /// §13.2.5.41: the comment runs to the next `>`.
    private mutating func skipBogusComment(from start: Int) {
        position = (nextIndex(of: UInt8(ascii: ">"), from: start) ?? input.count - 1) + 1
    }

    private func hasPrefix(_ prefix: String, at index: Int, caseInsensitive: Bool) -> Bool {
        var i = index
        for p in prefix.utf8 {
            guard i < input.count else { return false }
            let c = caseInsensitive ? input[i].htmlLowercased : input[i]
            guard c == p else { return false }
            i += 1
        }
        return true
    }

    /// At `<!` (§13.2.5.42): a comment, a doctype, a CDATA section or a bogus comment.
    private mutating func markupDeclaration() -> HTMLToken {
        let start = position + 2
        if hasPrefix("--", at: start, caseInsensitive: false) {
            skipComment(from: start + 2)
            return .comment
        }
        if hasPrefix("doctype", at: start, caseInsensitive: true) {
            skipBogusComment(from: start)
            return .doctype
        }
        if hasPrefix("[CDATA[", at: start, caseInsensitive: false) {
            var i = start + 7
            while i + 2 < input.count, !(input[i] == UInt8(ascii: "]") && input[i + 1] == UInt8(ascii: "]") && input[i + 2] == UInt8(ascii: ">")) {
                i += 1
            }
            position = Swift.min(i + 3, input.count)
            return .cdata
        }
        skipBogusComment(from: start)
        return .comment
    }

    /// After `<!--`: to `-->` or `--!>` (§13.2.5.43–52); `<!-->` and `<!--->` are empty
    /// comments (abrupt-closing-of-empty-comment); an unclosed comment runs to the end.
    private mutating func skipComment(from start: Int) {
        if hasPrefix(">", at: start, caseInsensitive: false) {
            position = start + 1
            return
        }
        if hasPrefix("->", at: start, caseInsensitive: false) {
            position = start + 2
            return
        }
        var i = start
        while i + 2 < input.count {
            if input[i] == UInt8(ascii: "-"), input[i + 1] == UInt8(ascii: "-") {
                if input[i + 2] == UInt8(ascii: ">") {
                    position = i + 3
                    return
                }
                if input[i + 2] == UInt8(ascii: "!"), i + 3 < input.count, input[i + 3] == UInt8(ascii: ">") {
                    position = i + 4
                    return
                }
            }
            i += 1
        }
        position = input.count
    }

    // MARK: - Character references and input filtering

    /// Appends `bytes` with the input-stream preprocessing of §13.2.3.5 (CR and CRLF become LF)
    /// and with controls removed: NUL becomes U+FFFD in attribute values (§13.2.5.36) and goes
    /// in text (the tree builder ignores it in body content); other C0 controls and DEL go
    /// (they are parse errors and display as nothing useful).
    static func copyFiltered(_ bytes: ArraySlice<UInt8>, inAttribute: Bool, into out: inout [UInt8]) {
        var i = bytes.startIndex
        while i < bytes.endIndex {
            appendFiltered(bytes[i], next: i + 1 < bytes.endIndex ? bytes[i + 1] : nil, inAttribute: inAttribute, into: &out)
            i += 1
        }
    }

    private static func appendFiltered(_ c: UInt8, next: UInt8?, inAttribute: Bool, into out: inout [UInt8]) {
        switch c {
        case 0x0D:
            if next != 0x0A { out.append(0x0A) }
        case 0x00:
            if inAttribute { out += [0xEF, 0xBF, 0xBD] }
        case 0x09, 0x0A, 0x0C:
            out.append(c)
        case 0x01...0x1F, 0x7F:
            break
        default:
            out.append(c)
        }
    }

    /// Decodes character references (§13.2.5.72–80) while copying: named ones from
    /// `HTMLEntities`, decimal and hexadecimal ones with the replacements of §13.2.5.80.
    static func decode(_ bytes: ArraySlice<UInt8>, inAttribute: Bool, into out: inout [UInt8]) {
        var i = bytes.startIndex
        let end = bytes.endIndex
        while i < end {
            // Runs of ordinary bytes are copied whole.
            var run = i
            while run < end, bytes[run] >= 0x20, bytes[run] != UInt8(ascii: "&"), bytes[run] != 0x7F { run += 1 }
            if run > i {
                out.append(contentsOf: bytes[i..<run])
                i = run
                continue
            }
            let c = bytes[i]
            guard c == UInt8(ascii: "&"), i + 1 < end else {
                appendFiltered(c, next: i + 1 < end ? bytes[i + 1] : nil, inAttribute: inAttribute, into: &out)
                i += 1
                continue
            }
            if bytes[i + 1] == UInt8(ascii: "#") {
                i = numericReference(bytes, at: i, into: &out)
            } else if bytes[i + 1].isHTMLAlphanumeric {
                i = namedReference(bytes, at: i, inAttribute: inAttribute, into: &out)
            } else {
                out.append(c)
                i += 1
            }
        }
    }

    /// At `&#`. Returns the index after what was consumed.
    private static func numericReference(_ bytes: ArraySlice<UInt8>, at ampersand: Int, into out: inout [UInt8]) -> Int {
        var i = ampersand + 2
        var hex = false
        if i < bytes.endIndex, bytes[i] == UInt8(ascii: "x") || bytes[i] == UInt8(ascii: "X") {
            hex = true
            i += 1
        }
        var value: UInt32 = 0
        var digits = 0
        while i < bytes.endIndex, let d = bytes[i].htmlDigitValue(hex: hex) {
            // Saturate: anything past U+10FFFF is replaced below however long it is.
            value = Swift.min(value * (hex ? 16 : 10) + d, 0x11_0000)
            digits += 1
            i += 1
        }
        guard digits > 0 else {
            // §13.2.5.75/76 absence-of-digits: `&#` (and `x`) stay as text.
            out.append(UInt8(ascii: "&"))
            return ampersand + 1
        }
        if i < bytes.endIndex, bytes[i] == UInt8(ascii: ";") { i += 1 }
        appendScalar(numericReferenceValue(value), into: &out)
        return i
    }

    /// §13.2.5.80: NUL, surrogates and values past U+10FFFF become U+FFFD; 0x80–0x9F are read
    /// as Windows-1252, as browsers do.
    static func numericReferenceValue(_ value: UInt32) -> UInt32 {
        switch value {
        case 0, 0xD800...0xDFFF, 0x11_0000...: return 0xFFFD
        case 0x80...0x9F: return windows1252[Int(value - 0x80)]
        default: return value
        }
    }

    private static let windows1252: [UInt32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
        0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ]

    /// At `&` followed by an alphanumeric. Returns the index after what was consumed.
    private static func namedReference(_ bytes: ArraySlice<UInt8>, at ampersand: Int, inAttribute: Bool, into out: inout [UInt8]) -> Int {
        let nameStart = ampersand + 1
        var nameEnd = nameStart
        while nameEnd < bytes.endIndex, bytes[nameEnd].isHTMLAlphanumeric { nameEnd += 1 }
        let longestName = 32
        if nameEnd - nameStart <= longestName, nameEnd < bytes.endIndex, bytes[nameEnd] == UInt8(ascii: ";"),
            let scalar = HTMLEntities.named[String(decoding: bytes[nameStart..<nameEnd], as: UTF8.self)]
        {
            appendScalar(scalar, into: &out)
            return nameEnd + 1
        }
        // §13.2.5.73: the longest legacy name that prefixes what follows, without `;`.
        var length = Swift.min(nameEnd - nameStart, HTMLEntities.longestLegacyName)
        while length >= 2 {
            let candidate = String(decoding: bytes[nameStart..<nameStart + length], as: UTF8.self)
            if HTMLEntities.legacyWithoutSemicolon.contains(candidate), let scalar = HTMLEntities.named[candidate] {
                let after = nameStart + length
                // In an attribute, `&copy=` and `&copyx` stay as they are (historical reasons).
                if inAttribute, after < bytes.endIndex, bytes[after] == UInt8(ascii: "=") || bytes[after].isHTMLAlphanumeric {
                    break
                }
                appendScalar(scalar, into: &out)
                return after
            }
            length -= 1
        }
        // Not a reference: the `&` and the name are text.
        out.append(UInt8(ascii: "&"))
        out += bytes[nameStart..<nameEnd]
        return nameEnd
    }

    /// UTF-8 of a scalar from a character reference, filtered like input text (a reference to
    /// a control character is dropped like the character itself).
    static func appendScalar(_ scalar: UInt32, into out: inout [UInt8]) {
        switch scalar {
        case 0x09, 0x0A, 0x0C:
            out.append(UInt8(scalar))
        case 0x0D:
            out.append(0x0A)
        case 0x00...0x1F, 0x7F:
            break
        case 0x20...0x7E:
            out.append(UInt8(scalar))
        case 0x80...0x7FF:
            out += [UInt8(0xC0 | (scalar >> 6)), UInt8(0x80 | (scalar & 0x3F))]
        case 0x800...0xFFFF:
            out += [UInt8(0xE0 | (scalar >> 12)), UInt8(0x80 | ((scalar >> 6) & 0x3F)), UInt8(0x80 | (scalar & 0x3F))]
        default:
            out += [
                UInt8(0xF0 | (scalar >> 18)), UInt8(0x80 | ((scalar >> 12) & 0x3F)), UInt8(0x80 | ((scalar >> 6) & 0x3F)),
                UInt8(0x80 | (scalar & 0x3F)),
            ]
        }
    }
}

extension UInt8 {
    var isHTMLLetter: Bool { (self | 0x20) >= UInt8(ascii: "a") && (self | 0x20) <= UInt8(ascii: "z") }
    var isHTMLUpper: Bool { self >= UInt8(ascii: "A") && self <= UInt8(ascii: "Z") }
    var isHTMLDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
    var isHTMLAlphanumeric: Bool { isHTMLLetter || isHTMLDigit }
    var htmlLowercased: UInt8 { isHTMLUpper ? self | 0x20 : self }

    func htmlDigitValue(hex: Bool) -> UInt32? {
        if isHTMLDigit { return UInt32(self - UInt8(ascii: "0")) }
        guard hex else { return nil }
        let lower = self | 0x20
        if lower >= UInt8(ascii: "a"), lower <= UInt8(ascii: "f") { return UInt32(lower - UInt8(ascii: "a") + 10) }
        return nil
    }
}
