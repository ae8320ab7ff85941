import Foundation
import IMAP
import MessageCache
import SharedTree

/// IMAP SEARCH BODY/TEXT through the node-local message cache (FTS5 trigram index). A folder
/// is indexed the first time it is searched, in batches, and kept up to date at each search:
/// new messages are added, expunged ones pruned.
struct MessageCacheSearchIndex: IMAPSearchIndex {
    static let batchSize = 256

    let cache: MessageCache

    func candidates(
        user: String, folder: MailFolderName, uidValidity: UInt32, needle: String, bodyOnly: Bool,
        messages: [StoredMessage], read: (StoredMessage) throws -> [UInt8]?
    ) throws -> Set<UInt32>? {
        guard needle.count >= 3 else { return nil }
        let cached = try cache.cachedUIDs(user: user, folder: folder.name, uidValidity: uidValidity)
        let current = Set(messages.map(\.uid))
        if !cached.subtracting(current).isEmpty {
            try cache.prune(user: user, folder: folder.name, uidValidity: uidValidity, keeping: current)
        }
        var batch: [(key: MessageKey, message: [UInt8], internalDate: Date)] = []
        for message in messages where !cached.contains(message.uid) {
            guard let bytes = try read(message) else { continue }
            batch.append((MessageKey(user: user, folder: folder.name, uidValidity: uidValidity, uid: message.uid), bytes, message.arrivalDate))
            if batch.count >= Self.batchSize {
                try cache.index(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { try cache.index(batch) }
        return try cache.search(user: user, folder: folder.name, uidValidity: uidValidity, contains: needle, in: bodyOnly ? .body : .text)
    }
}
