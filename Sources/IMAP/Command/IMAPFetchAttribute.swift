/// One FETCH item (RFC 9051 §6.4.5, RFC 3516 BINARY, RFC 7162 MODSEQ).
public enum IMAPFetchAttribute: Sendable, Hashable {
    case envelope
    case flags
    case internalDate
    case rfc822Size
    /// `BODY` without a section: the non-extensible body structure.
    case body
    case bodyStructure
    case uid
    case modSeq
    /// Old forms kept by RFC 9051 for compatibility: RFC822 is `BODY[]`, RFC822.HEADER is
    /// `BODY.PEEK[HEADER]`, RFC822.TEXT is `BODY[TEXT]`.
    case rfc822
    case rfc822Header
    case rfc822Text
    /// `BODY[section]<partial>` or, with `peek`, `BODY.PEEK[...]` (does not set `\Seen`).
    case bodySection(IMAPSection, partial: IMAPPartial?, peek: Bool)
    /// `BINARY[part]<partial>` / `BINARY.PEEK[...]`: the part with its transfer encoding undone.
    case binary(part: [UInt32], partial: IMAPPartial?, peek: Bool)
    case binarySize(part: [UInt32])

    /// RFC 9051 §6.4.5 macros.
    public static let all: [IMAPFetchAttribute] = [.flags, .internalDate, .rfc822Size, .envelope]
    public static let fast: [IMAPFetchAttribute] = [.flags, .internalDate, .rfc822Size]
    public static let full: [IMAPFetchAttribute] = [.flags, .internalDate, .rfc822Size, .envelope, .body]
}

/// `section-spec`: a part path (`1.2.3`, empty for the whole message) and what of it.
public struct IMAPSection: Sendable, Hashable {
    public var part: [UInt32]
    public var text: IMAPSectionText?

    public init(part: [UInt32] = [], _ text: IMAPSectionText? = nil) {
        self.part = part
        self.text = text
    }

    /// `BODY[]`.
    public static let complete = IMAPSection()
}

public enum IMAPSectionText: Sendable, Hashable {
    case header
    /// Field names uppercased (RFC 9051 §6.4.5 matches them case-insensitively).
    case headerFields([String])
    case headerFieldsNot([String])
    case text
    /// Only after a part number.
    case mime
}

/// `<offset.length>`.
public struct IMAPPartial: Sendable, Hashable {
    public var offset: UInt64
    public var length: UInt64

    public init(offset: UInt64, length: UInt64) {
        self.offset = offset
        self.length = length
    }
}
