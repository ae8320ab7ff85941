/// One header field as it appears in the message: the name as written and the unfolded value.
public struct HeaderField: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// The header section of an RFC 5322 message, parsed without trusting the input: bounded
/// field count and size, tolerant of bare LF, obsolete folding and junk lines.
public struct MessageHeader: Sendable, Equatable {
    public struct Limits: Sendable {
        public var maxFields: Int
        public var maxHeaderBytes: Int
        public init(maxFields: Int = 1000, maxHeaderBytes: Int = 1 << 20) {
            self.maxFields = maxFields
            self.maxHeaderBytes = maxHeaderBytes
        }
    }

    public var fields: [HeaderField]
    /// Offset of the first body byte (after the blank line), or the message length when there is no body.
    public var bodyOffset: Int
    /// True when a limit cut the header short; what was read is still usable.
    public var truncated: Bool

    /// The first field named `name` (case-insensitive), unfolded.
    public func first(_ name: String) -> String? {
        let lowered = name.lowercased()
        return fields.first { $0.name.lowercased() == lowered }?.value
    }

    public func all(_ name: String) -> [String] {
        let lowered = name.lowercased()
        return fields.filter { $0.name.lowercased() == lowered }.map(\.value)
    }

    /// RFC 5322 §2.2: fields up to the first empty line; §2.2.3: unfolding removes the CRLF
    /// before folding white space. Lines without a colon before the blank line are skipped.
    public static func parse(_ message: [UInt8], limits: Limits = Limits()) -> MessageHeader {
        var fields: [HeaderField] = []
        var truncated = false
        var index = 0
        let end = message.count
        var currentName: String?
        var currentValue: [UInt8] = []

        func flush() {
            if let name = currentName {
                fields.append(HeaderField(name: name, value: decodeValue(currentValue)))
            }
            currentName = nil
            currentValue = []
        }

        while index < end {
            if index >= limits.maxHeaderBytes {
                truncated = true
                break
            }
            // Find the end of this line (LF), tolerating CRLF and bare LF.
            var lineEnd = index
            while lineEnd < end && message[lineEnd] != 0x0a { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > index && message[contentEnd - 1] == 0x0d { contentEnd -= 1 }
            let next = lineEnd < end ? lineEnd + 1 : end
            if contentEnd == index {  // the blank line: the body starts after it
                flush()
                return MessageHeader(fields: fields, bodyOffset: next, truncated: truncated)
            }
            let first = message[index]
            if first == 0x20 || first == 0x09 {
                // Folded continuation of the previous field.
                if currentName != nil { currentValue.append(contentsOf: message[index..<contentEnd]) }
            } else if let colon = message[index..<contentEnd].firstIndex(of: 0x3a) {
                flush()
                if fields.count >= limits.maxFields {
                    truncated = true
                    break
                }
                let rawName = message[index..<colon]
                let name = String(decoding: rawName, as: UTF8.self).trimmingTrailingSpace()
                if isFieldName(rawName) {
                    currentName = name
                    currentValue = Array(message[(colon + 1)..<contentEnd])
                }
            } else {
                // A junk line ends the field before it; its continuations are junk too.
                flush()
            }
            index = next
        }
        flush()
        return MessageHeader(fields: fields, bodyOffset: min(index, end), truncated: truncated)
    }

    /// RFC 5322 §3.6.8: printable US-ASCII except colon (trailing white space tolerated, obs-).
    static func isFieldName(_ bytes: ArraySlice<UInt8>) -> Bool {
        let trimmed = bytes.reversed().drop { $0 == 0x20 || $0 == 0x09 }
        return !trimmed.isEmpty && trimmed.allSatisfy { $0 >= 33 && $0 <= 126 && $0 != 0x3a }
    }

    static func decodeValue(_ bytes: [UInt8]) -> String {
        // Leading white space after the colon is not part of the value; folding white space
        // stays as the single space or tab it is.
        var start = 0
        while start < bytes.count && (bytes[start] == 0x20 || bytes[start] == 0x09) { start += 1 }
        var stop = bytes.count
        while stop > start && (bytes[stop - 1] == 0x20 || bytes[stop - 1] == 0x09 || bytes[stop - 1] == 0x0d) { stop -= 1 }
        // Raw 8-bit headers are common in the wild; decode as UTF-8 with replacement.
        return String(decoding: bytes[start..<stop].filter { $0 != 0x0d && $0 != 0x0a && $0 != 0 }, as: UTF8.self)
    }
}

extension String {
    func trimmingTrailingSpace() -> String {
        var result = self
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }
}
