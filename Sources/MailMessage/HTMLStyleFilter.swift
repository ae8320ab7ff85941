/// The `style` attributes HTML mail keeps. Newsletters are laid out almost entirely with inline
/// CSS, so dropping it would make much mail unreadable; keeping it whole would let a message load
/// remote resources (`url(`, tracking), run script in old engines (`expression(`, `behavior`,
/// `-moz-binding`) or lay itself over the web-mail's own interface (`position`, `z-index`,
/// negative margins). So a declaration is kept only when its property is on a list of layout and
/// typography properties and its value is made of plain tokens: letters, digits, `#`, `%`, `.`,
/// `,`, `-`, `+`, `/`, `!`, quotes, spaces and non-ASCII letters, with no CSS escapes (`\`), no
/// comments and no function other than `rgb()`, `rgba()`, `hsl()` and `hsla()`. Everything
/// else (a `<style>` element, `@import`, `url(`) is dropped by the sanitizer.
enum HTMLStyleFilter {
    static let allowedProperties: Set<String> = [
        "color", "background-color", "background",
        "font", "font-family", "font-size", "font-style", "font-weight", "font-variant",
        "text-align", "text-decoration", "text-indent", "text-transform", "text-overflow",
        "line-height", "letter-spacing", "word-spacing", "white-space", "vertical-align", "direction",
        "word-break", "word-wrap", "overflow-wrap",
        "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
        "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
        "border", "border-top", "border-right", "border-bottom", "border-left",
        "border-width", "border-style", "border-color",
        "border-top-width", "border-right-width", "border-bottom-width", "border-left-width",
        "border-top-style", "border-right-style", "border-bottom-style", "border-left-style",
        "border-top-color", "border-right-color", "border-bottom-color", "border-left-color",
        "border-collapse", "border-spacing", "border-radius",
        "width", "height", "min-width", "max-width", "min-height", "max-height",
        "display", "float", "clear", "overflow", "overflow-x", "overflow-y",
        "list-style", "list-style-type", "list-style-position",
        "table-layout", "caption-side", "empty-cells",
    ]

    /// The only CSS functions a value may call: colours.
    static let allowedFunctions: Set<String> = ["rgb", "rgba", "hsl", "hsla"]

    /// Words refused anywhere in a value even though the character rules already make them
    /// harmless, so a later loosening of those rules cannot let them through.
    private static let refusedWords = ["expression", "javascript", "vbscript", "url(", "@import", "binding", "behavior"].map { Array($0.utf8) }

    /// The kept declarations as `property: value; property: value`, or nil when none is kept.
    static func sanitize(_ style: [UInt8], maxBytes: Int) -> [UInt8]? {
        guard style.count <= maxBytes else { return nil }
        var kept: [UInt8] = []
        for declaration in declarations(style) {
            guard let colon = declaration.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let property = String(decoding: trimmed(declaration[..<colon]).map(\.htmlLowercased), as: UTF8.self)
            let value = Array(trimmed(declaration[(colon + 1)...]))
            guard allowedProperties.contains(property), isSafeValue(value) else { continue }
            if property.hasPrefix("margin"), hasNegativeNumber(value) { continue }
            if !kept.isEmpty { kept += Array("; ".utf8) }
            kept += Array(property.utf8) + Array(": ".utf8) + value.map { $0 == 0x09 || $0 == 0x0A || $0 == 0x0C ? 0x20 : $0 }
        }
        return kept.isEmpty ? nil : kept
    }

    /// The declarations, split at `;` outside quotes and parentheses (a `;` inside an
    /// unterminated quote leaves the rest as one declaration, which the value check refuses).
    private static func declarations(_ style: [UInt8]) -> [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var start = 0
        var quote: UInt8?
        var parentheses = 0
        for (i, c) in style.enumerated() {
            if let q = quote {
                if c == q { quote = nil }
            } else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                quote = c
            } else if c == UInt8(ascii: "(") {
                parentheses += 1
            } else if c == UInt8(ascii: ")") {
                parentheses = max(0, parentheses - 1)
            } else if c == UInt8(ascii: ";"), parentheses == 0 {
                result.append(style[start..<i])
                start = i + 1
            }
        }
        result.append(style[start...])
        return result
    }

    private static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0C }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, isSpace(first) { slice = slice.dropFirst() }
        while let last = slice.last, isSpace(last) { slice = slice.dropLast() }
        return slice
    }

    private static let allowedPunctuation: Set<UInt8> = Set("#%.,-+/!'\"() ".utf8)

    static func isSafeValue(_ value: [UInt8]) -> Bool {
        guard !value.isEmpty, value.count <= 1024 else { return false }
        var quote: UInt8?
        var inFunction = false
        var identifier: [UInt8] = []
        for c in value {
            // No `\` (escapes), `*` (so no comments), `:`, `;`, `@`, `{`, `<`, `&`, `=` …
            let allowed = c >= 0x80 || c.isHTMLAlphanumeric || isSpace(c) || allowedPunctuation.contains(c)
            guard allowed else { return false }
            if let q = quote {
                if c == q { quote = nil }
                continue
            }
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                quote = c
                identifier = []
            case UInt8(ascii: "("):
                // Only a colour function, never nested.
                let name = String(decoding: identifier.map(\.htmlLowercased), as: UTF8.self)
                guard !inFunction, allowedFunctions.contains(name) else { return false }
                inFunction = true
                identifier = []
            case UInt8(ascii: ")"):
                guard inFunction else { return false }
                inFunction = false
                identifier = []
            default:
                if c.isHTMLLetter || c == UInt8(ascii: "-") {
                    identifier.append(c)
                } else {
                    identifier = []
                }
            }
        }
        guard quote == nil, !inFunction else { return false }
        let lower = value.map(\.htmlLowercased)
        return !refusedWords.contains { word in lower.indices.contains { lower[$0...].starts(with: word) } }
    }

    /// `-` followed by a digit or `.`: a negative length, which in a margin could pull the
    /// message over the interface around it.
    private static func hasNegativeNumber(_ value: [UInt8]) -> Bool {
        for i in value.indices.dropLast() where value[i] == UInt8(ascii: "-") {
            if value[i + 1].isHTMLDigit || value[i + 1] == UInt8(ascii: ".") { return true }
        }
        return false
    }
}
