import SharedTree

/// A full-text index that narrows IMAP SEARCH BODY/TEXT (the node-local message cache). It
/// answers with a superset of the matches; the session still checks each candidate, so the
/// index can make a search faster but never changes its answer.
public protocol IMAPSearchIndex: Sendable {
    /// UIDs among `messages` whose text (header and body, or with `bodyOnly` the body) may
    /// contain `needle`; nil when the index cannot help now (a needle under three characters,
    /// or a folder not indexed yet: the caller reads the files). Messages not indexed yet are
    /// read from `store` and indexed. Blocking: call it on the file threads.
    func candidates(
        store: MailStore, folder: MailFolderName, uidValidity: UInt32, needle: String, bodyOnly: Bool,
        messages: [StoredMessage]
    ) throws -> Set<UInt32>?
}

extension IMAPSearchKey {
    /// Text needles every match must contain (a key, or the keys of an AND): the index can
    /// narrow the search to messages holding all of them. Keys under OR and NOT give none.
    var requiredNeedles: [(needle: String, bodyOnly: Bool)] {
        switch self {
        case .text(let needle): return [(needle, false)]
        case .body(let needle): return [(needle, true)]
        case .and(let keys): return keys.flatMap(\.requiredNeedles)
        default: return []
        }
    }
}
