import Foundation
import GRDB
import MailMessage

/// Identifies one message version for ever: message files are immutable and a UID is never
/// reused within a UIDVALIDITY, so a cache row keyed by this never goes stale.
public struct MessageKey: Hashable, Sendable, Codable {
    public var user: String
    public var folder: String
    public var uidValidity: UInt32
    public var uid: UInt32

    public init(user: String, folder: String, uidValidity: UInt32, uid: UInt32) {
        self.user = user
        self.folder = folder
        self.uidValidity = uidValidity
        self.uid = uid
    }
}

/// What the cache keeps of a message: sizes and the header fields IMAP needs often.
public struct CachedMessage: Sendable, Equatable {
    public var key: MessageKey
    public var size: Int
    public var headerSize: Int
    public var internalDate: Date
    public var subject: String?
    public var from: String?
    public var to: String?
    public var cc: String?
    public var date: String?
    public var messageID: String?
    public var inReplyTo: String?
    public var references: String?
}

public enum SearchScope: Sendable {
    /// IMAP SEARCH TEXT: header and body.
    case text
    /// IMAP SEARCH BODY.
    case body
}

/// The node-local cache (SQLite through GRDB, on the node's own disk, never on the shared
/// tree): per-message parse results and a full-text index for SEARCH. Never the source of
/// truth; rebuilt lazily, and `svcpkg reindex USER` drops a user's rows to rebuild them.
///
/// The full-text index uses FTS5's trigram tokenizer, which matches any substring of three
/// characters or more case-insensitively: IMAP SEARCH is substring search (RFC 9051 §6.4.4),
/// which word tokenizers do not give. Shorter needles return nil and the caller scans.
public final class MessageCache: Sendable {
    public static let maxIndexedBodyBytes = MessageStructure.maxSearchableBodyBytes

    private let database: DatabasePool

    /// Opens (creating if needed) the cache at `path`. WAL mode is fine: the file is local.
    public init(path: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        var configuration = Configuration()
        // A cache: losing the last transactions in a power cut is fine (they are rebuilt),
        // an fsync per FETCH batch is not. WAL with NORMAL stays consistent after a crash.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        database = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(database)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE message (
                    id INTEGER PRIMARY KEY,
                    user TEXT NOT NULL, folder TEXT NOT NULL, uidValidity INTEGER NOT NULL, uid INTEGER NOT NULL,
                    size INTEGER NOT NULL, headerSize INTEGER NOT NULL, internalDate REAL NOT NULL,
                    subject TEXT, fromField TEXT, toField TEXT, ccField TEXT, dateField TEXT,
                    messageID TEXT, inReplyTo TEXT, referencesField TEXT,
                    UNIQUE (user, folder, uidValidity, uid)
                );
                CREATE VIRTUAL TABLE message_text USING fts5(headers, body, tokenize = 'trigram');
                """)
        }
        // ENVELOPE and BODYSTRUCTURE (StructureCoding), apart from `message`: a FETCH fills
        // them without indexing the text, and the indexer fills them without a second parse.
        migrator.registerMigration("v2") { db in
            try db.execute(sql: """
                CREATE TABLE message_structure (
                    user TEXT NOT NULL, folder TEXT NOT NULL, uidValidity INTEGER NOT NULL, uid INTEGER NOT NULL,
                    envelope BLOB, bodyStructure BLOB,
                    PRIMARY KEY (user, folder, uidValidity, uid)
                ) WITHOUT ROWID;
                """)
        }
        return migrator
    }

    public func cached(_ key: MessageKey) throws -> CachedMessage? {
        try database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM message WHERE user = ? AND folder = ? AND uidValidity = ? AND uid = ?",
                             arguments: [key.user, key.folder, key.uidValidity, key.uid]).map { Self.message(from: $0, key: key) }
        }
    }

    /// Parses and indexes a message (idempotent: a second call for the same key replaces the row).
    @discardableResult
    public func index(_ key: MessageKey, message: [UInt8], internalDate: Date) throws -> CachedMessage {
        try index([(key, message, internalDate)])[0]
    }

    /// Parses and indexes several messages in one transaction (the first search of a big
    /// folder indexes it in batches this way).
    @discardableResult
    public func index(_ batch: [(key: MessageKey, message: [UInt8], internalDate: Date)]) throws -> [CachedMessage] {
        let prepared = batch.map { key, message, internalDate in
            let header = MessageHeader.parse(message)
            let cached = CachedMessage(
                key: key, size: message.count, headerSize: header.bodyOffset, internalDate: internalDate,
                subject: header.first("Subject"), from: header.first("From"), to: header.first("To"), cc: header.first("Cc"),
                date: header.first("Date"), messageID: header.first("Message-ID"), inReplyTo: header.first("In-Reply-To"),
                references: header.first("References"))
            // The text IMAP SEARCH matches: words decoded, transfer encodings and charsets undone.
            let structure = MessageStructure.parse(message)
            let summary = ParsedSummary(envelope: Envelope(message: message), bodyStructure: structure.bodyStructure)
            return (cached, structure.searchableHeaderText, structure.searchableBodyText(of: message), summary)
        }
        try database.write { db in
            for (cached, headerText, bodyText, summary) in prepared {
                let key = cached.key
                _ = try Self.delete(db, where: "user = ? AND folder = ? AND uidValidity = ? AND uid = ?",
                                [key.user, key.folder, key.uidValidity, key.uid])
                try db.execute(sql: """
                    INSERT INTO message (user, folder, uidValidity, uid, size, headerSize, internalDate, subject, fromField,
                        toField, ccField, dateField, messageID, inReplyTo, referencesField)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [key.user, key.folder, key.uidValidity, key.uid, cached.size, cached.headerSize,
                                     cached.internalDate.timeIntervalSince1970, cached.subject, cached.from, cached.to, cached.cc,
                                     cached.date, cached.messageID, cached.inReplyTo, cached.references])
                try db.execute(sql: "INSERT INTO message_text (rowid, headers, body) VALUES (?, ?, ?)",
                               arguments: [db.lastInsertedRowID, headerText, bodyText])
                try Self.upsert(db, key, summary)
            }
        }
        return prepared.map(\.0)
    }

    /// Cached ENVELOPE/BODYSTRUCTURE of messages of one folder version, by UID; UIDs without
    /// a row (or whose row does not decode) are absent.
    public func summaries(user: String, folder: String, uidValidity: UInt32, uids: [UInt32]) throws -> [UInt32: ParsedSummary] {
        guard !uids.isEmpty else { return [:] }
        return try database.read { db in
            var found: [UInt32: ParsedSummary] = [:]
            // In chunks: SQLite caps the number of bound parameters.
            var start = 0
            while start < uids.count {
                let chunk = uids[start..<min(uids.count, start + 500)]
                start += chunk.count
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                var arguments: StatementArguments = [user, folder, uidValidity]
                arguments += StatementArguments(chunk.map { Int64($0) })
                let rows = try Row.fetchCursor(db, sql: """
                    SELECT uid, envelope, bodyStructure FROM message_structure
                    WHERE user = ? AND folder = ? AND uidValidity = ? AND uid IN (\(marks))
                    """, arguments: arguments)
                while let row = try rows.next() {
                    let envelopeBytes: [UInt8]? = (row["envelope"] as Data?).map { [UInt8]($0) }
                    let bodyBytes: [UInt8]? = (row["bodyStructure"] as Data?).map { [UInt8]($0) }
                    let summary = ParsedSummary(
                        envelope: envelopeBytes.flatMap(StructureCoding.decodeEnvelope),
                        bodyStructure: bodyBytes.flatMap(StructureCoding.decodeBodyStructure))
                    if summary.envelope != nil || summary.bodyStructure != nil {
                        found[row["uid"]] = summary
                    }
                }
            }
            return found
        }
    }

    /// Keeps ENVELOPE/BODYSTRUCTURE for messages; a part given as nil keeps what the row had.
    public func storeSummaries(user: String, folder: String, uidValidity: UInt32, _ summaries: [UInt32: ParsedSummary]) throws {
        guard !summaries.isEmpty else { return }
        try database.write { db in
            for (uid, summary) in summaries {
                try Self.upsert(db, MessageKey(user: user, folder: folder, uidValidity: uidValidity, uid: uid), summary)
            }
        }
    }

    private static func upsert(_ db: Database, _ key: MessageKey, _ summary: ParsedSummary) throws {
        try db.execute(sql: """
            INSERT INTO message_structure (user, folder, uidValidity, uid, envelope, bodyStructure) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (user, folder, uidValidity, uid) DO UPDATE SET
                envelope = coalesce(excluded.envelope, envelope), bodyStructure = coalesce(excluded.bodyStructure, bodyStructure)
            """, arguments: [key.user, key.folder, key.uidValidity, key.uid,
                             summary.envelope.map { Data(StructureCoding.encode($0)) },
                             summary.bodyStructure.map { Data(StructureCoding.encode($0)) }])
    }

    /// UIDs of indexed messages in one folder whose text contains `needle` (case-insensitive),
    /// or nil when the needle is shorter than three characters (the caller scans instead).
    public func search(user: String, folder: String, uidValidity: UInt32, contains needle: String, in scope: SearchScope) throws -> Set<UInt32>? {
        guard needle.count >= 3 else { return nil }
        // An FTS5 string literal: the needle as one phrase, quotes doubled, so no query syntax leaks in.
        let phrase = "\"" + needle.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        let match = scope == .body ? "body : " + phrase : phrase
        return try database.read { db in
            // The full-text match first, as a subquery: joined, SQLite may walk the folder's
            // rows and run the MATCH once per row (seen: 30 s for 100,000 messages).
            Set(try UInt32.fetchAll(db, sql: """
                SELECT uid FROM message
                WHERE id IN (SELECT rowid FROM message_text WHERE message_text MATCH ?)
                    AND user = ? AND folder = ? AND uidValidity = ?
                """, arguments: [match, user, folder, uidValidity]))
        }
    }

    /// UIDs cached for a folder version.
    public func cachedUIDs(user: String, folder: String, uidValidity: UInt32) throws -> Set<UInt32> {
        try database.read { db in
            Set(try UInt32.fetchAll(db, sql: "SELECT uid FROM message WHERE user = ? AND folder = ? AND uidValidity = ?",
                                    arguments: [user, folder, uidValidity]))
        }
    }

    private func summaryUIDs(user: String, folder: String, uidValidity: UInt32) throws -> Set<UInt32> {
        try database.read { db in
            Set(try UInt32.fetchAll(db, sql: "SELECT uid FROM message_structure WHERE user = ? AND folder = ? AND uidValidity = ?",
                                    arguments: [user, folder, uidValidity]))
        }
    }

    /// Drops rows of messages no longer in the folder (expunged) or of an old UIDVALIDITY.
    @discardableResult
    public func prune(user: String, folder: String, uidValidity: UInt32, keeping uids: Set<UInt32>) throws -> Int {
        let gone = try cachedUIDs(user: user, folder: folder, uidValidity: uidValidity)
            .union(summaryUIDs(user: user, folder: folder, uidValidity: uidValidity)).subtracting(uids)
        return try database.write { db in
            var removed = try Self.delete(db, where: "user = ? AND folder = ? AND uidValidity != ?", [user, folder, uidValidity])
            for uid in gone {
                removed += try Self.delete(db, where: "user = ? AND folder = ? AND uidValidity = ? AND uid = ?",
                                           [user, folder, uidValidity, uid])
            }
            return removed
        }
    }

    /// Forgets everything about a user (`svcpkg reindex USER`). Returns the rows removed.
    @discardableResult
    public func forget(user: String) throws -> Int {
        try database.write { db in try Self.delete(db, where: "user = ?", [user]) }
    }

    public func count(user: String) throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM message WHERE user = ?", arguments: [user]) ?? 0 }
    }

    private static func delete(_ db: Database, where condition: String, _ arguments: StatementArguments) throws -> Int {
        try db.execute(sql: "DELETE FROM message_text WHERE rowid IN (SELECT id FROM message WHERE \(condition))", arguments: arguments)
        try db.execute(sql: "DELETE FROM message_structure WHERE \(condition)", arguments: arguments)
        try db.execute(sql: "DELETE FROM message WHERE \(condition)", arguments: arguments)
        return db.changesCount
    }

    private static func message(from row: Row, key: MessageKey) -> CachedMessage {
        CachedMessage(
            key: key, size: row["size"], headerSize: row["headerSize"],
            internalDate: Date(timeIntervalSince1970: row["internalDate"]), subject: row["subject"], from: row["fromField"],
            to: row["toField"], cc: row["ccField"], date: row["dateField"], messageID: row["messageID"],
            inReplyTo: row["inReplyTo"], references: row["referencesField"])
    }
}
