/// RFC 2045 §6 Content-Transfer-Encoding.
public enum TransferEncoding: Sendable, Hashable {
    case sevenBit, eightBit, binary, base64, quotedPrintable
    /// Any other token (`x-uuencode`...): BINARY must refuse it (RFC 3516 §4.3, `UNKNOWN-CTE`).
    case other(String)

    /// RFC 2045 §6.1: the mechanism is case-insensitive; absent means 7BIT.
    public init(_ value: [UInt8]?) {
        guard let value else {
            self = .sevenBit
            return
        }
        let token = asciiLowercased(MIMELexer.firstToken(value))
        switch token {
        case "", "7bit": self = .sevenBit
        case "8bit": self = .eightBit
        case "binary": self = .binary
        case "base64": self = .base64
        case "quoted-printable": self = .quotedPrintable
        default: self = .other(token)
        }
    }

    /// The body is the content itself (no decoding needed).
    public var isIdentity: Bool {
        switch self {
        case .sevenBit, .eightBit, .binary: true
        default: false
        }
    }

    /// The decoded content, or nil for an encoding this module does not know.
    public func decode<C: Collection<UInt8>>(_ body: C) -> [UInt8]? {
        switch self {
        case .sevenBit, .eightBit, .binary: Array(body)
        case .base64: Base64Decoder.decode(body)
        case .quotedPrintable: QuotedPrintable.decode(body)
        case .other: nil
        }
    }
}

/// RFC 2045 §6.8 base64, decoded the tolerant way §6.8 asks for: characters outside the
/// alphabet are ignored, and decoding stops at the first "=" padding.
enum Base64Decoder {
    static func decode<C: Collection<UInt8>>(_ input: C) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 4 * 3)
        var accumulator: UInt32 = 0
        var bits = 0
        for byte in input {
            let value: UInt32
            switch byte {
            case 0x41...0x5a: value = UInt32(byte - 0x41)
            case 0x61...0x7a: value = UInt32(byte - 0x61 + 26)
            case 0x30...0x39: value = UInt32(byte - 0x30 + 52)
            case 0x2b: value = 62
            case 0x2f: value = 63
            case 0x3d: return output
            default: continue
            }
            accumulator = (accumulator << 6) | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        return output
    }
}

/// RFC 2045 §6.7 quoted-printable.
enum QuotedPrintable {
    static func decode<C: Collection<UInt8>>(_ input: C) -> [UInt8] {
        let bytes = Array(input)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var lineStart = 0
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0a { lineEnd += 1 }
            let hasBreak = lineEnd < bytes.count
            var contentEnd = lineEnd
            let crlf = hasBreak && contentEnd > lineStart && bytes[contentEnd - 1] == 0x0d
            if crlf { contentEnd -= 1 }
            // Rule (3): trailing white space was added in transport and is deleted.
            while contentEnd > lineStart && (bytes[contentEnd - 1] == 0x20 || bytes[contentEnd - 1] == 0x09) { contentEnd -= 1 }
            var softBreak = false
            var index = lineStart
            while index < contentEnd {
                let byte = bytes[index]
                if byte == 0x3d {
                    if index + 1 == contentEnd {
                        // Rule (5): "=" at the end of a line is a soft line break.
                        softBreak = true
                        index += 1
                        continue
                    }
                    if index + 2 < contentEnd, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) {
                        output.append(high << 4 | low)
                        index += 3
                        continue
                    }
                    // Not a valid escape: §6.7 suggests keeping it as it is.
                    output.append(byte)
                    index += 1
                    continue
                }
                output.append(byte)
                index += 1
            }
            if hasBreak && !softBreak {
                if crlf { output.append(0x0d) }
                output.append(0x0a)
            }
            lineStart = hasBreak ? lineEnd + 1 : lineEnd
        }
        return output
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }
}

extension TransferEncoding {
    /// RFC 2045 §6.7 quoted-printable for composed text (web-mail): 7-bit lines with CRLF
    /// breaks, each under 77 characters.
    public static func quotedPrintableEncoded(_ bytes: [UInt8]) -> String { QuotedPrintable.encode(bytes) }
}

extension QuotedPrintable {
    /// CRLF line breaks (LF alone counts as one), soft breaks before 76 characters.
    static func encode(_ bytes: [UInt8]) -> String {
        var output = ""
        var line = ""
        let hex = Array("0123456789ABCDEF")
        func flush(hard: Bool) {
            // RFC 2045 rule 3: a space or tab at the end of a line is encoded.
            if hard, let last = line.last, last == " " || last == "\t" {
                line.removeLast()
                line += last == " " ? "=20" : "=09"
            }
            output += line + (hard ? "\r\n" : "=\r\n")
            line = ""
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0d, index + 1 < bytes.count, bytes[index + 1] == 0x0a {
                flush(hard: true)
                index += 2
                continue
            }
            if byte == 0x0a {
                flush(hard: true)
                index += 1
                continue
            }
            let piece: String
            if (byte >= 0x21 && byte <= 0x7e && byte != 0x3d) || byte == 0x20 || byte == 0x09 {
                piece = String(UnicodeScalar(byte))
            } else {
                piece = "=" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 0x0f)])
            }
            if line.count + piece.count > 75 { flush(hard: false) }
            line += piece
            index += 1
        }
        if !line.isEmpty { flush(hard: true) }
        return output
    }
}
