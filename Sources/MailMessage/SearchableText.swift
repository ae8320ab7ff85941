/// The text IMAP SEARCH matches (RFC 9051 §6.4.4) and the full-text index holds: header fields
/// with RFC 2047 words decoded, and the body with transfer encodings and charsets undone. One
/// definition for both, so the index can only narrow a search, never change its answer.
extension MessageStructure {
    /// Decoded body text taken into account per message: searches look at this much of it.
    public static let maxSearchableBodyBytes = 2 << 20

    /// `Name: value` lines of the top-level header, values decoded.
    public var searchableHeaderText: String {
        root.fields.map { $0.name + ": " + EncodedWords.decode($0.value) }.joined(separator: "\n")
    }

    /// The text of every text part (decoded); other leaves as raw bytes read as UTF-8; at most
    /// `maxSearchableBodyBytes`.
    public func searchableBodyText(of message: [UInt8]) -> String {
        var pieces: [String] = []
        var budget = Self.maxSearchableBodyBytes
        func walk(_ part: MessagePart) {
            guard budget > 0 else { return }
            switch part.content {
            case .multipart(let children): children.forEach(walk)
            case .message(let inner): walk(inner)
            case .single:
                var text: String
                if part.contentType.isText, let decoded = decodedText(of: part, in: message) {
                    text = decoded
                } else {
                    let range = part.bodyRange.clamped(to: 0..<message.count)
                    text = String(decoding: message[range.lowerBound..<min(range.upperBound, range.lowerBound + budget)], as: UTF8.self)
                }
                if text.utf8.count > budget { text = String(decoding: text.utf8.prefix(budget), as: UTF8.self) }
                budget -= text.utf8.count
                pieces.append(text)
            }
        }
        walk(root)
        return pieces.joined(separator: "\n")
    }
}
