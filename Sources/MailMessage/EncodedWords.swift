/// RFC 2047 encoded words (`=?charset?B|Q?text?=`), decoded for display. IMAP sends the raw
/// form; web-mail shows this one.
public enum EncodedWords {
    private enum Segment {
        case text([UInt8])
        case word(charset: String, bytes: [UInt8])
    }

    /// Decodes the encoded words in an unstructured value or a phrase. RFC 2047 §6.2: white
    /// space between two encoded words is dropped; adjacent words in one charset are joined
    /// before conversion, so a character split across words (as some mailers do) survives.
    /// A word in an unknown charset stays as written. Other bytes are read as UTF-8 (RFC 6532)
    /// or, when not valid UTF-8, as Windows-1252.
    public static func decode(_ raw: [UInt8]) -> String {
        guard raw.count >= 8, containsMarker(raw) else { return lenientString(raw) }
        var segments: [Segment] = []
        var text: [UInt8] = []
        var index = 0
        while index < raw.count {
            if raw[index] == 0x3d, index + 1 < raw.count, raw[index + 1] == 0x3f, let word = encodedWord(raw, at: index) {
                if !text.isEmpty {
                    segments.append(.text(text))
                    text = []
                }
                segments.append(.word(charset: word.charset, bytes: word.bytes))
                index = word.end
            } else {
                text.append(raw[index])
                index += 1
            }
        }
        if !text.isEmpty { segments.append(.text(text)) }

        var result = ""
        var pending: (charset: String, bytes: [UInt8])?
        func flush() {
            if let word = pending { result += Charset.decode(word.bytes, charset: word.charset) ?? lenientString(word.bytes) }
            pending = nil
        }
        for (position, segment) in segments.enumerated() {
            switch segment {
            case .text(let bytes):
                let betweenWords = position > 0 && position + 1 < segments.count
                    && isWord(segments[position - 1]) && isWord(segments[position + 1])
                if betweenWords && bytes.allSatisfy(isWhiteSpace) { continue }
                flush()
                result += lenientString(bytes)
            case .word(let charset, let bytes):
                if pending?.charset == charset {
                    pending?.bytes.append(contentsOf: bytes)
                } else {
                    flush()
                    pending = (charset, bytes)
                }
            }
        }
        flush()
        return result
    }

    static let maxEncodedTextLength = 4096

    private static func isWord(_ segment: Segment) -> Bool {
        if case .word = segment { return true }
        return false
    }

    private static func containsMarker(_ raw: [UInt8]) -> Bool {
        var index = 0
        while index + 1 < raw.count {
            if raw[index] == 0x3d && raw[index + 1] == 0x3f { return true }
            index += 1
        }
        return false
    }

    /// `=?charset[*language]?encoding?encoded-text?=` at `start`; nil when malformed or when
    /// the charset is unknown (the word then stays text).
    private static func encodedWord(_ raw: [UInt8], at start: Int) -> (charset: String, bytes: [UInt8], end: Int)? {
        var index = start + 2
        let charsetStart = index
        while index < raw.count, raw[index] != 0x3f, raw[index] > 0x20, raw[index] < 0x7f, index - charsetStart < 64 { index += 1 }
        guard index < raw.count, raw[index] == 0x3f, index > charsetStart else { return nil }
        var charset = String(decoding: raw[charsetStart..<index], as: UTF8.self)
        // RFC 2231 §5: a language suffix after "*".
        if let star = charset.firstIndex(of: "*") { charset = String(charset[..<star]) }
        guard index + 2 < raw.count, raw[index + 2] == 0x3f else { return nil }
        let encoding = asciiLower(raw[index + 1])
        guard encoding == 0x62 || encoding == 0x71 else { return nil }
        index += 3
        let textStart = index
        // RFC 2047 §2 allows 75 characters; mailers write longer ones, but not this long.
        while index + 1 < raw.count, !(raw[index] == 0x3f && raw[index + 1] == 0x3d) {
            if raw[index] == 0x0d || raw[index] == 0x0a || index - textStart > maxEncodedTextLength { return nil }
            index += 1
        }
        guard index + 1 < raw.count else { return nil }
        let encoded = raw[textStart..<index]
        guard Charset.isKnown(charset) else { return nil }
        let bytes = encoding == 0x62 ? Base64Decoder.decode(encoded) : qDecode(encoded)
        return (Charset.canonicalName(charset), bytes, index + 2)
    }

    /// RFC 2047 §4.2 "Q": quoted-printable with "_" for space.
    private static func qDecode(_ encoded: ArraySlice<UInt8>) -> [UInt8] {
        var output: [UInt8] = []
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let byte = encoded[index]
            if byte == 0x5f {
                output.append(0x20)
            } else if byte == 0x3d, index + 2 < encoded.endIndex,
                      let high = QuotedPrintable.hexValue(encoded[index + 1]), let low = QuotedPrintable.hexValue(encoded[index + 2]) {
                output.append(high << 4 | low)
                index += 2
            } else {
                output.append(byte)
            }
            index += 1
        }
        return output
    }
}
