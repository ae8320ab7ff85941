/// One header field of a MIME part, kept as bytes: IMAP sends header values as they are in the
/// message (RFC 9051 §7.5.2), so nothing is decoded here.
public struct RawHeaderField: Sendable, Hashable {
    /// The field name as written (trailing white space before the colon removed).
    public var name: String
    /// The value after the colon: unfolded (CR and LF removed, RFC 5322 §2.2.3), leading white
    /// space removed, trailing white space kept as IMAP servers keep it.
    public var value: [UInt8]
    /// The field's lines in the message, from the first byte of the name to the end of the line
    /// break of its last continuation line (what HEADER.FIELDS returns).
    public var range: Range<Int>

    public init(name: String, value: [UInt8], range: Range<Int>) {
        self.name = name
        self.value = value
        self.range = range
    }

    /// Case-insensitive comparison of the field name with an ASCII name.
    public func hasName(_ other: String) -> Bool {
        asciiCaseInsensitiveEqual(name.utf8, other.utf8)
    }
}

extension [RawHeaderField] {
    /// The value of the first field named `name` (case-insensitive).
    public func first(_ name: String) -> [UInt8]? {
        first { $0.hasName(name) }?.value
    }
}

public enum RawHeader {
    /// The fields of a message's header section, bounded as `MessageHeader.parse` is.
    public static func fields(of message: [UInt8]) -> [RawHeaderField] {
        let header = MessageHeader.parse(message)
        return HeaderScanner.fields(message, in: 0..<header.bodyOffset, maxFields: 1000, maxBytes: 1 << 20).fields
    }
}

/// Splits an already delimited header section into fields.
enum HeaderScanner {
    /// RFC 5322 §2.2: a field is a name, a colon and a value; lines starting with white space
    /// continue the field before them. Lines without a colon or with an invalid name are
    /// skipped (with their continuations), as `MessageHeader.parse` does.
    static func fields(_ bytes: [UInt8], in range: Range<Int>, maxFields: Int, maxBytes: Int) -> (fields: [RawHeaderField], truncated: Bool) {
        var fields: [RawHeaderField] = []
        var truncated = false
        var index = range.lowerBound
        let end = range.upperBound
        var current: (name: String, start: Int, value: [UInt8])?
        var currentEnd = index

        func flush() {
            if let field = current {
                fields.append(RawHeaderField(name: field.name, value: trimLeadingSpace(field.value), range: field.start..<currentEnd))
            }
            current = nil
        }

        while index < end {
            if index - range.lowerBound >= maxBytes {
                truncated = true
                break
            }
            var lineEnd = index
            while lineEnd < end && bytes[lineEnd] != 0x0a { lineEnd += 1 }
            let next = lineEnd < end ? lineEnd + 1 : end
            var contentEnd = lineEnd
            if contentEnd > index && bytes[contentEnd - 1] == 0x0d { contentEnd -= 1 }
            if contentEnd == index {
                // The blank line ends the header.
                break
            }
            let first = bytes[index]
            if first == 0x20 || first == 0x09 {
                if current != nil {
                    appendUnfolded(bytes[index..<contentEnd], to: &current)
                    currentEnd = next
                }
            } else if let colon = bytes[index..<contentEnd].firstIndex(of: 0x3a) {
                flush()
                if fields.count >= maxFields {
                    truncated = true
                    break
                }
                let rawName = bytes[index..<colon]
                if MessageHeader.isFieldName(rawName) {
                    var nameEnd = colon
                    while nameEnd > index && (bytes[nameEnd - 1] == 0x20 || bytes[nameEnd - 1] == 0x09) { nameEnd -= 1 }
                    current = (String(decoding: bytes[index..<nameEnd], as: UTF8.self), index, [])
                    appendUnfolded(bytes[(colon + 1)..<contentEnd], to: &current)
                    currentEnd = next
                }
            } else {
                flush()
            }
            index = next
        }
        flush()
        return (fields, truncated)
    }

    private static func appendUnfolded(_ slice: ArraySlice<UInt8>, to field: inout (name: String, start: Int, value: [UInt8])?) {
        // A lone CR inside a line is not a line break; drop it like the CRLF around folds.
        for byte in slice where byte != 0x0d { field?.value.append(byte) }
    }

    private static func trimLeadingSpace(_ value: [UInt8]) -> [UInt8] {
        var start = 0
        while start < value.count && (value[start] == 0x20 || value[start] == 0x09) { start += 1 }
        return start == 0 ? value : Array(value[start...])
    }
}

func asciiCaseInsensitiveEqual<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
    guard a.count == b.count else { return false }
    return zip(a, b).allSatisfy { asciiLower($0) == asciiLower($1) }
}

@inline(__always) func asciiLower(_ byte: UInt8) -> UInt8 {
    byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte
}

func asciiLowercased<C: Collection<UInt8>>(_ bytes: C) -> String {
    String(decoding: bytes.map(asciiLower), as: UTF8.self)
}

@inline(__always) func isWhiteSpace(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x09 || byte == 0x0d || byte == 0x0a
}

/// Bytes to a String for display: UTF-8 when valid, else Windows-1252 (the usual mislabel).
func lenientString<C: Collection<UInt8>>(_ bytes: C) -> String {
    if let text = String(validating: bytes, as: UTF8.self) { return text }
    return SingleByteCharset.windows1252.decode(Array(bytes))
}
