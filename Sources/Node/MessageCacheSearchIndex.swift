import Foundation
import IMAP
import Logging
import MessageCache
import NIOConcurrencyHelpers
import NIOPosix
import SharedTree

/// IMAP SEARCH BODY/TEXT through the node-local message cache (FTS5 trigram index). A search
/// brings the folder's index up to date first when few messages are missing; when many are
/// (a folder never searched on this node), this search reads the files like any other and the
/// folder is indexed in the background, so the next search is fast.
struct MessageCacheSearchIndex: IMAPSearchIndex {
    static let batchSize = 256
    /// More unindexed messages than this are indexed in the background, not in the search.
    static let inlineLimit = 500

    let cache: MessageCache
    let fileThreads: NIOThreadPool
    let logger: Logger
    /// Folders being indexed in the background (`user/folder/uidvalidity`).
    private let indexing = NIOLockedValueBox<Set<String>>([])

    init(cache: MessageCache, fileThreads: NIOThreadPool, logger: Logger) {
        self.cache = cache
        self.fileThreads = fileThreads
        self.logger = logger
    }

    func candidates(
        store: MailStore, folder: MailFolderName, uidValidity: UInt32, needle: String, bodyOnly: Bool,
        messages: [StoredMessage]
    ) throws -> Set<UInt32>? {
        guard needle.count >= 3 else { return nil }
        guard try bringUpToDate(store: store, folder: folder, uidValidity: uidValidity, messages: messages) else { return nil }
        return try cache.search(user: store.user.address, folder: folder.name, uidValidity: uidValidity, contains: needle, in: bodyOnly ? .body : .text)
    }

    /// Makes the folder's cache rows match `messages`: drops expunged ones, indexes the missing
    /// ones now when they are few; when they are many, starts indexing them in the background
    /// and returns false (the cache cannot answer for the whole folder yet).
    func bringUpToDate(store: MailStore, folder: MailFolderName, uidValidity: UInt32, messages: [StoredMessage]) throws -> Bool {
        let user = store.user.address
        let cached = try cache.cachedUIDs(user: user, folder: folder.name, uidValidity: uidValidity)
        let current = Set(messages.map(\.uid))
        if !cached.subtracting(current).isEmpty {
            try cache.prune(user: user, folder: folder.name, uidValidity: uidValidity, keeping: current)
        }
        let missing = messages.filter { !cached.contains($0.uid) }
        if missing.count > Self.inlineLimit {
            indexInBackground(missing, store: store, folder: folder, uidValidity: uidValidity)
            return false
        }
        try index(missing, store: store, folder: folder, uidValidity: uidValidity)
        return true
    }

    private func index(_ messages: [StoredMessage], store: MailStore, folder: MailFolderName, uidValidity: UInt32) throws {
        var batch: [(key: MessageKey, message: [UInt8], internalDate: Date)] = []
        for message in messages {
            guard let bytes = try store.readMessage(message, in: folder) else { continue }
            batch.append((MessageKey(user: store.user.address, folder: folder.name, uidValidity: uidValidity, uid: message.uid), bytes, message.arrivalDate))
            if batch.count >= Self.batchSize {
                try cache.index(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { try cache.index(batch) }
    }

    private func indexInBackground(_ messages: [StoredMessage], store: MailStore, folder: MailFolderName, uidValidity: UInt32) {
        let key = "\(store.user.address)/\(folder.name)/\(uidValidity)"
        guard indexing.withLockedValue({ $0.insert(key).inserted }) else { return }
        let this = self
        Task {
            let start = Date()
            do {
                try await this.fileThreads.runIfActive {
                    try this.index(messages, store: store, folder: folder, uidValidity: uidValidity)
                }
                this.logger.info("folder indexed for search", metadata: [
                    "user": "\(store.user.address)", "folder": "\(folder.name)", "messages": "\(messages.count)",
                    "seconds": "\(String(format: "%.1f", Date().timeIntervalSince(start)))",
                ])
            } catch {
                this.logger.error("indexing for search failed", metadata: ["user": "\(store.user.address)", "folder": "\(folder.name)", "error": "\(error)"])
            }
            _ = this.indexing.withLockedValue { $0.remove(key) }
        }
    }
}
