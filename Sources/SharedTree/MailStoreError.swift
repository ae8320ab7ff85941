/// Everything that can go wrong in a user's mail store. Each description names the user,
/// the folder or file, and what an operator (or the protocol layer) can do about it.
public enum MailStoreError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A file system or lock operation failed; the wrapped error names the call and path.
    case storage(SharedTreeError)
    /// A user address cannot be used to find a home on the shared tree.
    case invalidUser(address: String, reason: String)
    /// A folder name given at the API (IMAP hierarchy separator `/`) is unsafe or unsupported.
    case invalidFolderName(name: String, reason: String)
    /// An IMAP keyword (RFC 9051 §2.3.2 `flag-keyword`) is not an atom or is too long.
    case invalidKeyword(keyword: String, reason: String)
    case folderNotFound(user: String, folder: String)
    case folderExists(user: String, folder: String)
    /// DELETE of a folder that has subfolders: only leaf folders are deleted.
    case folderHasChildren(user: String, folder: String)
    /// INBOX cannot be deleted (RFC 9051 §6.3.5).
    case cannotDeleteInbox(user: String)
    /// A rename whose target lies inside the folder being renamed.
    case renameIntoItself(user: String, from: String, to: String)
    /// The delivery would take the user over the storage quota; nothing was written.
    case overQuota(user: String, used: Int, limit: Int)
    /// UIDNEXT reached 2^32-1: the folder needs a new UIDVALIDITY (RFC 9051 §2.3.1.1).
    case uidSpaceExhausted(user: String, folder: String)
    /// A rename of folders was interrupted and could not be finished because the target
    /// exists (a folder was created under the new name meanwhile).
    case renameConflict(user: String, from: String, to: String)

    public var description: String {
        switch self {
        case .storage(let error):
            return error.description
        case .invalidUser(let address, let reason):
            return "invalid mail user \(quoted(address)): \(reason)"
        case .invalidFolderName(let name, let reason):
            return "invalid folder name \(quoted(name)): \(reason)"
        case .invalidKeyword(let keyword, let reason):
            return "invalid keyword \(quoted(keyword)): \(reason)"
        case .folderNotFound(let user, let folder):
            return "folder \(quoted(folder)) of \(user) does not exist"
        case .folderExists(let user, let folder):
            return "folder \(quoted(folder)) of \(user) already exists"
        case .folderHasChildren(let user, let folder):
            return "folder \(quoted(folder)) of \(user) has subfolders; delete them first (only folders without subfolders can be deleted)"
        case .cannotDeleteInbox(let user):
            return "INBOX of \(user) cannot be deleted"
        case .renameIntoItself(let user, let from, let to):
            return "cannot rename folder \(quoted(from)) of \(user) to \(quoted(to)), which is inside it"
        case .overQuota(let user, let used, let limit):
            return "mailbox of \(user) is over quota: \(used) bytes used of \(limit); the message was not delivered (the user must delete mail, or raise the quota in LDAP)"
        case .uidSpaceExhausted(let user, let folder):
            return "folder \(quoted(folder)) of \(user) has used up all UIDs; remove its svcpkg-uidlist file to start a new UIDVALIDITY (clients resynchronise)"
        case .renameConflict(let user, let from, let to):
            return "the interrupted rename of \(quoted(from)) to \(quoted(to)) for \(user) cannot finish because \(quoted(to)) exists; rename one of them by hand (in the Maildir) and remove svcpkg-rename in the user's home"
        }
    }

    /// True when the wrapped storage error is a missing file or directory.
    public var isNotFound: Bool {
        if case .storage(let error) = self { return error.isNotFound }
        return false
    }
}

/// Runs `body`, wrapping a `SharedTreeError` as `MailStoreError.storage`.
@inline(__always) @discardableResult
func storage<T>(_ body: () throws(SharedTreeError) -> T) throws(MailStoreError) -> T {
    do {
        return try body()
    } catch {
        throw .storage(error)
    }
}
