import Foundation
import HTTPTypes
import Hummingbird
import MailMessage
import NIOConcurrencyHelpers
import NIOCore
import SharedTree

/// Folder snapshots per user and folder on this node, renewed when the folder's change token
/// says so (three stat calls) instead of reading the UID list on every page: a page of a
/// 100,000-message folder costs the token, a slice and 50 cache lookups.
final class FolderSnapshotCache: Sendable {
    static let maxEntries = 256
    private let entries = NIOLockedValueBox<[String: FolderSnapshot]>([:])

    /// Blocking: call on the file threads.
    func snapshot(_ store: MailStore, _ folder: MailFolderName) throws -> FolderSnapshot {
        let key = store.user.address + "\u{0}" + folder.name
        let token = try store.changeToken(folder)
        if let cached = entries.withLockedValue({ $0[key] }), !cached.token.needsSync(current: token) {
            return cached
        }
        let fresh = try store.sync(folder)
        entries.withLockedValue { entries in
            if entries.count >= Self.maxEntries, let victim = entries.keys.first { entries[victim] = nil }
            entries[key] = fresh
        }
        return fresh
    }
}

/// Small per-user files of the web-mail in the user's home on the shared tree (beside
/// `Maildir/`), so that every node sees them. Written whole (temp + fsync + rename).
enum HomeFile {
    /// Blocking. nil when the file does not exist.
    static func read(_ name: String, in store: MailStore, maxBytes: Int) throws -> [UInt8]? {
        do {
            return try AtomicFile.read(store.homeDirectory + "/" + name, maxBytes: maxBytes)
        } catch {
            if error.isNotFound { return nil }
            throw error
        }
    }

    /// Blocking.
    static func write(_ bytes: [UInt8], _ name: String, in store: MailStore) throws {
        _ = try store.changeToken(.inbox)  // makes the home if the user never had mail
        try AtomicFile.write(bytes, to: store.homeDirectory + "/" + name, mode: 0o600)
    }
}

/// The per-user revocation epoch: `svcpkg-web-epoch` in the home. Sessions made before the
/// epoch was raised are refused on every node.
enum RevocationEpoch {
    static let fileName = "svcpkg-web-epoch"

    /// Blocking.
    static func read(_ store: MailStore) throws -> UInt64 {
        guard let bytes = try HomeFile.read(fileName, in: store, maxBytes: 64) else { return 0 }
        return UInt64(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Blocking. Returns the new epoch.
    static func raise(_ store: MailStore) throws -> UInt64 {
        let next = try read(store) + 1
        try HomeFile.write(Array("\(next)\n".utf8), fileName, in: store)
        return next
    }
}

/// The user's signature: `svcpkg-web-signature` in the home (plain UTF-8 text).
enum UserSignature {
    static let fileName = "svcpkg-web-signature"
    static let maxBytes = 4096

    /// Blocking.
    static func read(_ store: MailStore) throws -> String {
        try HomeFile.read(fileName, in: store, maxBytes: maxBytes).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// Blocking.
    static func write(_ signature: String, to store: MailStore) throws {
        try HomeFile.write(Array(signature.utf8), fileName, in: store)
    }
}

/// What `WebServices.submit` throws when the message is refused (shown to the user).
public struct WebSubmitError: Error, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

enum ByteCountText {
    static func format(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) bytes" }
        if bytes < 1 << 20 { return "\((bytes + 512) / 1024) KB" }
        return String(format: "%.1f MB", Double(bytes) / 1_048_576)
    }
}

enum DateText {
    /// `2026-12-07 10:15` in UTC (the page does not know the reader's zone without script).
    static func short(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min))"
    }
}

enum ContentDispositionText {
    /// RFC 6266: an ASCII fallback and the UTF-8 name.
    static func filename(_ name: String) -> String {
        let clean = HeaderText.singleLine(name)
        let ascii = String(clean.unicodeScalars.map { $0.value >= 0x20 && $0.value < 0x7f && $0 != "\"" && $0 != "\\" ? Character($0) : "_" })
        return "filename=\"\(ascii)\"; filename*=UTF-8''\(URLQuery.encode(clean))"
    }
}
