/// One header field exactly as it appears in the message, folding included, without the
/// final CRLF: DKIM hashes these bytes, so they are kept as they were.
struct RawHeaderField: Sendable, Equatable {
    /// The field name as written, without the trailing white space before the colon.
    var name: String
    /// Lowercased `name`, for case-insensitive comparison (RFC 5322 §1.2.2).
    var lowercasedName: String
    /// The whole field: name, colon, value with its CRLF folding, no final CRLF.
    var bytes: [UInt8]
    /// Offset of the first byte after the colon in `bytes`.
    var valueStart: Int

    var rawValue: ArraySlice<UInt8> { bytes[valueStart...] }

    /// The value unfolded (CRLFs removed) as a String, for parsing tags and addresses.
    var unfoldedValue: String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count - valueStart)
        for byte in rawValue where byte != 0x0d && byte != 0x0a { out.append(byte) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A message split into header fields and body, after line endings are made CRLF.
///
/// Messages reach us over SMTP with CRLF, but a spool or a test may hand us bare LF; DKIM is
/// defined on the CRLF form (RFC 6376 §5.3), so a bare LF becomes CRLF before anything else.
/// A line in the header section with neither a colon nor leading white space is skipped: it
/// cannot be named in h= and so cannot be signed.
struct RawMessage: Sendable {
    var fields: [RawHeaderField]
    /// Body bytes (after the empty line), CRLF line endings.
    var body: ArraySlice<UInt8>
    /// True when a limit cut the header section short.
    var truncated: Bool

    init(_ message: [UInt8], maxFields: Int = MailAuthLimits.maxHeaderFields, maxHeaderBytes: Int = MailAuthLimits.maxHeaderBytes) {
        let data = RawMessage.normalizingLineEndings(message)
        var fields: [RawHeaderField] = []
        var truncated = false
        var index = 0
        let end = data.count
        var current: (start: Int, colon: Int)?
        var bodyStart = end

        func flush(upTo lineEnd: Int) {
            guard let field = current else { return }
            current = nil
            guard fields.count < maxFields else {
                truncated = true
                return
            }
            let bytes = Array(data[field.start..<lineEnd])
            var nameEnd = field.colon - field.start
            while nameEnd > 0, bytes[nameEnd - 1] == 0x20 || bytes[nameEnd - 1] == 0x09 { nameEnd -= 1 }
            let name = String(decoding: bytes[0..<nameEnd], as: UTF8.self)
            fields.append(
                RawHeaderField(name: name, lowercasedName: name.lowercased(), bytes: bytes, valueStart: field.colon - field.start + 1)
            )
        }

        var previousLineEnd = 0
        while index < end {
            if index >= maxHeaderBytes {
                truncated = true
                break
            }
            var lineEnd = index
            while lineEnd < end, !(data[lineEnd] == 0x0a && lineEnd > index && data[lineEnd - 1] == 0x0d) { lineEnd += 1 }
            // lineEnd is at the LF of CRLF, or at `end`.
            let contentEnd = lineEnd < end ? lineEnd - 1 : end
            let next = lineEnd < end ? lineEnd + 1 : end
            if contentEnd == index {
                // The empty line: the body starts after it.
                flush(upTo: previousLineEnd)
                bodyStart = next
                current = nil
                index = end
                previousLineEnd = contentEnd
                break
            }
            let first = data[index]
            if first == 0x20 || first == 0x09 {
                // Continuation of the field above (RFC 5322 §2.2.3); nothing to continue: skip.
            } else {
                flush(upTo: previousLineEnd)
                if let colon = data[index..<contentEnd].firstIndex(of: 0x3a) {
                    current = (index, colon)
                }
            }
            previousLineEnd = contentEnd
            index = next
        }
        if bodyStart == end { flush(upTo: previousLineEnd) }
        self.fields = fields
        self.body = data[min(bodyStart, end)...]
        self.truncated = truncated
    }

    /// Header fields named `name` (case-insensitive), top to bottom.
    func fields(named name: String) -> [RawHeaderField] {
        let lowered = name.lowercased()
        return fields.filter { $0.lowercasedName == lowered }
    }

    /// RFC 5322 §3.6.8 field-name: printable ASCII except colon.
    static func isValidFieldName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 128 && name.utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7e && $0 != 0x3a }
    }

    /// Every bare LF becomes CRLF; existing CRLFs and lone CRs are left as they are.
    static func normalizingLineEndings(_ message: [UInt8]) -> [UInt8] {
        var bareLF = false
        for (offset, byte) in message.enumerated() where byte == 0x0a && (offset == 0 || message[offset - 1] != 0x0d) {
            bareLF = true
            break
        }
        guard bareLF else { return message }
        var out: [UInt8] = []
        out.reserveCapacity(message.count + message.count / 40)
        var previous: UInt8 = 0
        for byte in message {
            if byte == 0x0a && previous != 0x0d { out.append(0x0d) }
            out.append(byte)
            previous = byte
        }
        return out
    }
}
