/// A message flag: a system flag (`\Seen`), a keyword (`$Forwarded`, `NonJunk`) or a flag
/// extension (`\Whatever`). RFC 9051 §2.3.2: flags compare case-insensitively; system flags are
/// kept in their canonical spelling, keywords as first seen.
public struct IMAPFlag: Sendable, Hashable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) {
        let lowered = rawValue.lowercased()
        self.rawValue = Self.system.first { $0.lowercased() == lowered } ?? rawValue
    }

    public static let answered = IMAPFlag("\\Answered")
    public static let flagged = IMAPFlag("\\Flagged")
    public static let deleted = IMAPFlag("\\Deleted")
    public static let seen = IMAPFlag("\\Seen")
    public static let draft = IMAPFlag("\\Draft")
    /// RFC 3501 only; never settable by clients.
    public static let recent = IMAPFlag("\\Recent")
    /// `\*` in PERMANENTFLAGS: clients may create keywords.
    public static let mayCreate = IMAPFlag("\\*")

    private static let system = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent"]

    /// Starts with a backslash.
    public var isSystemOrExtension: Bool { rawValue.hasPrefix("\\") }

    public var description: String { rawValue }

    public static func == (lhs: IMAPFlag, rhs: IMAPFlag) -> Bool {
        lhs.rawValue.lowercased() == rhs.rawValue.lowercased()
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(rawValue.lowercased())
    }
}
