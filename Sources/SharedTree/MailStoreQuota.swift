import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Storage used by a user: all messages in `cur/` and `new/` of every folder.
public struct QuotaUsage: Sendable, Equatable {
    public let bytes: Int
    public let messages: Int

    public init(bytes: Int, messages: Int) {
        self.bytes = bytes
        self.messages = messages
    }
}

/// Maildir++ quota (Courier's README.maildirquota, as Dovecot and maildrop implement it):
/// `Maildir/maildirsize` holds the limit on its first line (`<bytes>S,<messages>C`, 0 for
/// no limit) and then one `<bytes> <messages>` line per change, appended with a single
/// O_APPEND write; usage is the sum of those lines, so a delivery costs one small read and
/// one append instead of a walk of the tree.
///
/// The file is rebuilt from a scan when it is missing, unreadable, larger than 5120 bytes,
/// or (Maildir++ rule) when a delivery would go over quota and the file is older than 15
/// minutes. It is an estimate: NFS has no atomic append, so two nodes appending at the
/// same instant can lose a line; the rebuilds bound the drift.
extension MailStore {
    static let quotaFileName = "maildirsize"
    /// Maildir++: recalculate once the file grows past this.
    static let quotaRebuildBytes = 5120
    /// Maildir++: an over-quota verdict from a file older than this is checked by a rebuild.
    static let quotaRecheckAge: Double = 15 * 60

    var quotaPath: String { PathUtil.join(maildirDirectory, Self.quotaFileName) }

    /// Usage from `maildirsize` (rebuilt first when needed). `limit` (bytes, from LDAP) is
    /// written into the file's first line when it is rebuilt or differs.
    public func quotaUsage(limit: Int? = nil) throws(MailStoreError) -> QuotaUsage {
        try quotaState(limit: limit).usage
    }

    /// Rebuilds `maildirsize` from a scan of every folder and returns the usage.
    @discardableResult
    public func recalculateQuota(limit: Int? = nil) throws(MailStoreError) -> QuotaUsage {
        try createMaildir()
        let usage = try scanUsage()
        var effectiveLimit = limit
        if effectiveLimit == nil { effectiveLimit = try? readQuotaLimit() }
        let contents = "\(max(0, effectiveLimit ?? 0))S,0C\n\(usage.bytes) \(usage.messages)\n"
        try storage { () throws(SharedTreeError) in try AtomicFile.write(Array(contents.utf8), to: quotaPath, mode: Self.fileMode) }
        return usage
    }

    /// Throws `overQuota` when `size` more bytes would exceed `limit`.
    func checkQuota(adding size: Int, limit: Int) throws(MailStoreError) {
        var state = try quotaState(limit: limit)
        guard state.usage.bytes + size > limit else { return }
        if !state.rebuilt, let modified = state.modified {
            let now = try storage { () throws(SharedTreeError) in try FileServerClock.now(in: maildirDirectory) }
            if now.timeIntervalSince(modified) > Self.quotaRecheckAge {
                state = (try recalculateQuota(limit: limit), Date(), true)
            }
        }
        if state.usage.bytes + size > limit {
            throw .overQuota(user: user.address, used: state.usage.bytes, limit: limit)
        }
    }

    /// Appends a change line when `maildirsize` exists (it is created by the first quota
    /// read). Best effort: a failure is logged, the next rebuild corrects the usage.
    func recordQuotaChange(bytes: Int, messages: Int) {
        do throws(SharedTreeError) {
            let fd = try Posix.open(quotaPath, O_WRONLY | O_APPEND)
            var size = 0
            do throws(SharedTreeError) {
                try Posix.writeAll(fd, Array("\(bytes) \(messages)\n".utf8), path: quotaPath)
                size = Int(try Posix.fstat(fd, path: quotaPath).st_size)
            } catch {
                Posix.closeQuietly(fd)
                throw error
            }
            try Posix.close(fd, path: quotaPath)
            if size > Self.quotaRebuildBytes { _ = try? recalculateQuota() }
        } catch {
            if error.isNotFound { return }
            logger.warning("could not record a quota change; the next rebuild of maildirsize corrects it", metadata: [
                "path": "\(quotaPath)", "error": "\(error)",
            ])
        }
    }

    /// The usage, the file's mtime, and whether it was just rebuilt.
    func quotaState(limit: Int?) throws(MailStoreError) -> (usage: QuotaUsage, modified: Date?, rebuilt: Bool) {
        if let parsed = try readQuotaFile(), parsed.size <= Self.quotaRebuildBytes, limit == nil || parsed.limit == limit, parsed.usage.bytes >= 0,
            parsed.usage.messages >= 0
        {
            return (parsed.usage, parsed.modified, false)
        }
        return (try recalculateQuota(limit: limit), nil, true)
    }

    /// The limit on the first line of the file, even when the rest is damaged.
    func readQuotaLimit() throws(MailStoreError) -> Int? {
        let bytes: [UInt8]
        do throws(SharedTreeError) {
            bytes = try AtomicFile.read(quotaPath, maxBytes: 64 * 1024)
        } catch {
            if error.isNotFound { return nil }
            if case .fileTooLarge = error { return nil }
            throw .storage(error)
        }
        guard let header = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).first else { return nil }
        for part in String(decoding: header, as: UTF8.self).split(separator: ",") where part.hasSuffix("S") {
            return Int(part.dropLast())
        }
        return nil
    }

    /// The parsed file; nil when it is missing or malformed (both mean "rebuild").
    func readQuotaFile() throws(MailStoreError) -> (limit: Int, usage: QuotaUsage, size: Int, modified: Date)? {
        let bytes: [UInt8]
        let status: FileStatus
        do throws(SharedTreeError) {
            (bytes, status) = try AtomicFile.readWithStatus(quotaPath, maxBytes: 64 * 1024)
        } catch {
            if error.isNotFound { return nil }
            if case .fileTooLarge = error { return nil }
            throw .storage(error)
        }
        // A torn append (no final newline) or any odd line: rebuild.
        guard bytes.last == UInt8(ascii: "\n") else { return nil }
        let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast()
        guard let header = lines.first else { return nil }
        var limit: Int?
        for part in String(decoding: header, as: UTF8.self).split(separator: ",") {
            if part.hasSuffix("S") {
                guard let value = Int(part.dropLast()) else { return nil }
                limit = value
            } else if part.hasSuffix("C") {
                guard Int(part.dropLast()) != nil else { return nil }
            } else {
                return nil
            }
        }
        var total = 0
        var count = 0
        for line in lines.dropFirst() {
            let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
            guard fields.count == 2, let delta = Int(String(decoding: fields[0], as: UTF8.self)),
                let messages = Int(String(decoding: fields[1], as: UTF8.self))
            else { return nil }
            total += delta
            count += messages
        }
        return (limit ?? 0, QuotaUsage(bytes: total, messages: count), bytes.count, Posix.modificationDate(status))
    }

    /// Sum of the sizes of every message file (`S=` from the name, else stat).
    func scanUsage() throws(MailStoreError) -> QuotaUsage {
        var bytes = 0
        var messages = 0
        var directories = [maildirDirectory]
        for name in try storage({ () throws(SharedTreeError) in try Posix.listDirectoryIfPresent(maildirDirectory) }) where name.hasPrefix(".") && name != "." && name != ".." {
            let path = PathUtil.join(maildirDirectory, name)
            if let info = try storage({ () throws(SharedTreeError) in try Posix.lstat(path) }), Posix.isDirectory(info) { directories.append(path) }
        }
        for directory in directories {
            for sub in ["cur", "new"] {
                let path = PathUtil.join(directory, sub)
                for name in try storage({ () throws(SharedTreeError) in try Posix.listDirectoryIfPresent(path) }) where !name.hasPrefix(".") {
                    if let size = MaildirFileName.sizes(ofBase: MaildirFileName(name).base).size {
                        bytes += size
                    } else if let info = try storage({ () throws(SharedTreeError) in try Posix.lstat(PathUtil.join(path, name)) }) {
                        bytes += Int(info.st_size)
                    } else {
                        continue
                    }
                    messages += 1
                }
            }
        }
        return QuotaUsage(bytes: bytes, messages: messages)
    }
}
