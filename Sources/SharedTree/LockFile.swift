import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Timing of lock acquisition. All values in seconds.
public struct LockOptions: Sendable, Equatable {
    /// A lock whose mtime is older than this (judged by the file server's clock) belongs to
    /// a holder that is gone and may be broken. Holders touch their lock well within it.
    public var staleTimeout: TimeInterval
    /// How long `acquire` waits before giving up with `lockTimeout`. Zero: one attempt.
    public var timeout: TimeInterval
    /// First wait between attempts; doubled after each failed attempt up to `maxBackoff`.
    /// Each wait is randomised to between half and all of the current backoff.
    public var initialBackoff: TimeInterval
    public var maxBackoff: TimeInterval

    public init(staleTimeout: TimeInterval = 30, timeout: TimeInterval = 30, initialBackoff: TimeInterval = 0.005, maxBackoff: TimeInterval = 0.5) {
        self.staleTimeout = staleTimeout
        self.timeout = timeout
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
    }

    /// How often a holder should touch its lock: a quarter of the stale timeout, so three
    /// touches in a row can be late before anyone may break it.
    public var touchInterval: TimeInterval { max(0.05, staleTimeout / 4) }
}

/// What a lock file contains (JSON). Written once into the holder's unique file, which
/// then becomes `NAME.lock` through `link()`.
public struct LockRecord: Codable, Sendable, Equatable {
    /// Cluster node name of the holder.
    public var node: String
    public var pid: Int32
    public var host: String
    /// 128 random bits in hex: what makes this acquisition ours.
    public var token: String
    /// When the holder created the file, seconds since 1970 by the holder's clock (for
    /// people; staleness is judged by the mtime and the file server's clock).
    public var created: Double
}

/// A lock file on the shared tree, held by this process (DESIGN.md, "The shared tree").
///
/// Protocol, safe on NFS without flock/fcntl or O_EXCL:
/// - acquire: write a unique file `NAME.lock.tmp.<node>.<pid>.<token>` holding a
///   `LockRecord`, `link()` it to `NAME.lock`; success when link returns 0 or the unique
///   file's link count is 2 (a retried NFS LINK answers EEXIST although the first one
///   worked). The unique file stays linked while the lock is held, so touching it touches
///   exactly our lock inode, never a successor's.
/// - hold: `touch()` every `LockOptions.touchInterval` (or `startKeeper`).
/// - stale: a lock whose mtime is older than the stale timeout by the file server's clock
///   may be broken. The breaker first claims the break with a marker
///   `NAME.lock.breaking.<token of the stale lock>` (link trick, so one claimant per stale
///   lock; a marker older than the stale timeout is from a breaker that died and the next
///   generation `.2`, `.3`… is claimed), looks again, renames `NAME.lock` to
///   `NAME.lock.broken.<random>` (of racing renames of one file only one succeeds, the
///   others get ENOENT), checks the renamed file (same inode and token, still stale by a
///   fresh clock probe) and otherwise puts it back; then removes it, the dead holder's
///   unique file and its marker, and tries `link()` again. Without the claim a breaker that
///   judged the old lock stale could rename the lock the winner had just created.
/// - commit: `verify()` just before committing (touch, then re-read `NAME.lock` and compare
///   tokens), then write-temp + fsync + rename.
/// - release: only if `NAME.lock` holds our token: rename it aside, check the token again
///   and remove it (a lock that changed hands meanwhile is put back).
///
/// All methods block on the file server: call them off event loops.
public struct LockFile: Sendable {
    /// `<directory>/<name>.lock`.
    public let path: String
    /// What our lock file says.
    public let record: LockRecord
    public let options: LockOptions
    /// Our unique file, hard-linked to `path` while we hold the lock.
    let uniquePath: String
    let logger: Logger

    /// The longest lock name in bytes, so that the derived file names fit in NAME_MAX.
    public static let maxNameBytes = 96
    /// The largest lock file read; svcpkg writes about 150 bytes.
    public static let maxRecordBytes = 4096
    public static let defaultLogger = Logger(label: "svcpkg.sharedtree.lock")

    /// Waits (bounded by `options.timeout`) for the lock `<directory>/<name>.lock`.
    /// `node` is this node's cluster name, recorded in the lock for whoever waits on it.
    /// Throws `lockTimeout` naming the current holder, `invalidName`, or `.io`.
    public static func acquire(name: String, in directory: String, node: String, options: LockOptions = LockOptions(), logger: Logger = LockFile.defaultLogger) throws(SharedTreeError) -> LockFile {
        var acquisition = try Acquisition(name: name, directory: directory, node: node, options: options, logger: logger)
        do throws(SharedTreeError) {
            while true {
                switch try acquisition.step() {
                case .acquired:
                    if let lock = try acquisition.finish() { return lock }
                case .retry(let delay):
                    if delay > 0 { Thread.sleep(forTimeInterval: delay) }
                case .timedOut(let waited, let holder):
                    throw .lockTimeout(path: acquisition.lockPath, waited: waited, holder: holder)
                }
            }
        } catch {
            acquisition.abandon()
            throw error
        }
    }

    /// Like `acquire`, but sleeps with `Task.sleep` between attempts (the attempts
    /// themselves still block briefly on the file server). Cancellation ends the wait with
    /// `.cancelled`.
    public static func acquire(name: String, in directory: String, node: String, options: LockOptions = LockOptions(), logger: Logger = LockFile.defaultLogger) async throws(SharedTreeError) -> LockFile {
        var acquisition = try Acquisition(name: name, directory: directory, node: node, options: options, logger: logger)
        do throws(SharedTreeError) {
            while true {
                switch try acquisition.step() {
                case .acquired:
                    if let lock = try acquisition.finish() { return lock }
                case .retry(let delay):
                    if delay > 0 {
                        do {
                            try await Task.sleep(nanoseconds: UInt64(delay * 1_000_000_000))
                        } catch {
                            throw .cancelled(operation: "waiting for lock", path: acquisition.lockPath)
                        }
                    }
                case .timedOut(let waited, let holder):
                    throw .lockTimeout(path: acquisition.lockPath, waited: waited, holder: holder)
                }
            }
        } catch {
            acquisition.abandon()
            throw error
        }
    }

    /// One attempt (breaking the lock if it is stale): the lock, or nil when someone else
    /// holds it.
    public static func tryAcquire(name: String, in directory: String, node: String, options: LockOptions = LockOptions(), logger: Logger = LockFile.defaultLogger) throws(SharedTreeError) -> LockFile? {
        var single = options
        single.timeout = 0
        do {
            return try acquire(name: name, in: directory, node: node, options: single, logger: logger)
        } catch {
            if case .lockTimeout = error { return nil }
            throw error
        }
    }

    /// Who holds `<directory>/<name>.lock` now and how long ago they touched it; nil when
    /// nobody does.
    public static func holder(name: String, in directory: String) throws(SharedTreeError) -> LockHolder? {
        let lockPath = try lockPath(name: name, in: directory)
        guard let snapshot = try LockSnapshot.read(lockPath) else { return nil }
        let now = try FileServerClock.now(in: directory)
        return snapshot.holder(age: now.timeIntervalSince(snapshot.modified))
    }

    /// Refreshes the lock's mtime to the file server's now. Throws `lockLost` when our lock
    /// was broken and cleaned up by someone else.
    public func touch() throws(SharedTreeError) {
        do {
            try Posix.touch(uniquePath)
        } catch {
            if error.isNotFound { throw lostError() }
            throw error
        }
    }

    /// Checks, just before committing, that the lock is still ours: touches it, then
    /// re-reads `NAME.lock` and compares its token with ours. Throws `lockLost` otherwise.
    public func verify() throws(SharedTreeError) {
        try touch()
        let current = try LockSnapshot.read(path)
        guard let current, current.record?.token == record.token else {
            throw lostError(current: current)
        }
    }

    /// Removes `NAME.lock` if it still holds our token, and our unique file. Returns false
    /// (and leaves `NAME.lock` alone) when the lock was no longer ours.
    @discardableResult
    public func release() throws(SharedTreeError) -> Bool {
        defer { _ = try? Posix.unlinkIfPresent(uniquePath) }
        // A lock that is not ours is never moved, not even for a moment: a holder that lost
        // its lock (paused past the stale timeout) must not disturb its successor.
        guard let current = try LockSnapshot.read(path), current.record?.token == record.token else {
            logger.warning("lock was no longer ours at release", metadata: ["lock": "\(path)"])
            return false
        }
        // Rename, then look again: should the lock change hands between our look and our
        // removal (only possible if it went stale), the successor's lock is put back.
        let aside = path + ".release." + randomToken()
        do {
            try Posix.rename(path, aside)
        } catch {
            if error.isNotFound { return false }
            throw error
        }
        let moved = try LockSnapshot.read(aside)
        if let moved, moved.record?.token == record.token {
            try Posix.unlinkIfPresent(aside)
            return true
        }
        if let moved { LockFile.restore(moved, from: aside, to: path, logger: logger) }
        return false
    }

    /// Touches the lock every `interval` until the task is cancelled or a touch fails (then
    /// logs an error: the holder's `verify()` will report the loss). Cancel it before
    /// `release()`. The touch blocks a cooperative thread for one file server round trip.
    public func startKeeper(interval: Duration? = nil) -> Task<Void, Never> {
        let lock = self
        let every = interval ?? .milliseconds(Int64(options.touchInterval * 1000))
        return Task.detached {
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: every)
                } catch {
                    return
                }
                do throws(SharedTreeError) {
                    try lock.touch()
                } catch {
                    lock.logger.error("cannot keep lock fresh; stopping its keeper", metadata: [
                        "lock": "\(lock.path)", "error": "\(error)",
                    ])
                    return
                }
            }
        }
    }

    /// Removes lock leftovers in `directory` (unique files of waiters that died, broken,
    /// released and break-claim files whose remover died) whose mtime is older than
    /// `olderThan` seconds by the file server's clock; use several stale timeouts. A unique
    /// file that still backs a held lock (link count 2) is kept. Returns how many files
    /// were removed.
    @discardableResult
    public static func removeLeftovers(in directory: String, olderThan: TimeInterval) throws(SharedTreeError) -> Int {
        // Unique (`.tmp.`) files last: one still linked to a leftover `.release.`/`.broken.`
        // name (a holder killed mid-release) is free only once that name is gone.
        let names = try Posix.listDirectory(directory).filter { name in
            name.contains(".lock.tmp.") || name.contains(".lock.broken.") || name.contains(".lock.release.")
                || name.contains(".lock.breaking.")
        }.sorted { !$0.contains(".lock.tmp.") && $1.contains(".lock.tmp.") }
        guard !names.isEmpty else { return 0 }
        let now = try FileServerClock.now(in: directory)
        var removed = 0
        for name in names {
            let path = PathUtil.join(directory, name)
            guard let info = try Posix.stat(path) else { continue }
            if name.contains(".lock.tmp.") && info.st_nlink > 1 { continue }
            if now.timeIntervalSince(Posix.modificationDate(info)) > olderThan {
                if try Posix.unlinkIfPresent(path) { removed += 1 }
            }
        }
        return removed
    }

    // MARK: - Internals

    static func lockPath(name: String, in directory: String) throws(SharedTreeError) -> String {
        let safe = try SafeName(name, kind: .fileName)
        if safe.value.utf8.count > maxNameBytes {
            throw .invalidName(kind: "lock name", name: name, reason: "it is longer than \(maxNameBytes) bytes")
        }
        return PathUtil.join(directory, safe.value + ".lock")
    }

    /// The unique file a holder links to `lockPath`; nil when the record's fields could not
    /// have come from `Acquisition` (then it is not ours to remove).
    static func uniquePath(lockPath: String, record: LockRecord) -> String? {
        guard SafeName.isValid(record.node, kind: .node), isToken(record.token) else { return nil }
        return "\(lockPath).tmp.\(record.node).\(record.pid).\(record.token)"
    }

    /// 32 lowercase hex digits, as `randomToken()` makes.
    static func isToken(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    private func lostError(current: LockSnapshot? = nil) -> SharedTreeError {
        let now = try? FileServerClock.now(in: PathUtil.directory(of: path))
        let snapshot = current ?? (try? LockSnapshot.read(path))
        let holder = snapshot.map { snapshot in
            snapshot.holder(age: now.map { $0.timeIntervalSince(snapshot.modified) })
        }
        return .lockLost(path: path, holder: holder)
    }

    /// Links the lock inode at `temporary` back to `lockPath` and removes `temporary`. Used
    /// when a rename moved a lock that must stay (a live holder's). If another process took
    /// `lockPath` meanwhile, the moved lock's holder will find out at `verify()`.
    static func restore(_ moved: LockSnapshot, from temporary: String, to lockPath: String, logger: Logger) {
        let linked: Bool
        if systemLink(temporary, lockPath) == 0 {
            linked = true
        } else {
            let code = errno
            let links = (try? Posix.stat(temporary))?.st_nlink
            linked = links.map { $0 > moved.links } ?? false
            if !linked {
                logger.error("could not put back a lock that is still in use; its holder will see lockLost at verify()", metadata: [
                    "lock": "\(lockPath)", "holder": "\(moved.holder(age: nil))", "errno": "\(errnoText(code))",
                ])
            }
        }
        _ = try? Posix.unlinkIfPresent(temporary)
        if linked {
            logger.notice("put back a lock that was moved while still in use", metadata: ["lock": "\(lockPath)"])
        }
    }
}

/// A lock file as read from one open descriptor: identity, mtime, contents.
struct LockSnapshot {
    let record: LockRecord?
    let device: UInt64
    let inode: UInt64
    let links: UInt64
    let modified: Date

    /// Reads `path`; nil when it does not exist.
    static func read(_ path: String) throws(SharedTreeError) -> LockSnapshot? {
        let bytes: [UInt8]
        let status: FileStatus
        do throws(SharedTreeError) {
            // Never follow a symlink planted at a lock name.
            let fd = try Posix.open(path, O_RDONLY | O_NOFOLLOW)
            defer { Posix.closeQuietly(fd) }
            status = try Posix.fstat(fd, path: path)
            bytes = try Posix.readAll(fd, path: path, maxBytes: LockFile.maxRecordBytes)
        } catch {
            if error.isNotFound { return nil }
            if case .fileTooLarge = error {
                // Not a lock svcpkg wrote; judge it by its mtime alone.
                return try snapshotWithoutRecord(path)
            }
            throw error
        }
        let record = try? JSONDecoder().decode(LockRecord.self, from: Data(bytes))
        return LockSnapshot(status, record: record)
    }

    private static func snapshotWithoutRecord(_ path: String) throws(SharedTreeError) -> LockSnapshot? {
        guard let info = try Posix.stat(path) else { return nil }
        return LockSnapshot(info, record: nil)
    }

    init(record: LockRecord?, device: UInt64, inode: UInt64, links: UInt64, modified: Date) {
        self.record = record
        self.device = device
        self.inode = inode
        self.links = links
        self.modified = modified
    }

    init(_ status: FileStatus, record: LockRecord?) {
        self.record = record
        self.device = UInt64(truncatingIfNeeded: status.st_dev)
        self.inode = UInt64(truncatingIfNeeded: status.st_ino)
        self.links = UInt64(truncatingIfNeeded: status.st_nlink)
        self.modified = Posix.modificationDate(status)
    }

    /// Names the claim on breaking this lock: its token, or its inode and mtime when it
    /// cannot be read.
    var breakKey: String {
        if let token = record?.token, LockFile.isToken(token) { return token }
        return "i\(inode).m\(Int64(modified.timeIntervalSince1970 * 1_000_000))"
    }

    func isSameLock(as other: LockSnapshot) -> Bool {
        device == other.device && inode == other.inode && record?.token == other.record?.token
    }

    func holder(age: Double?) -> LockHolder {
        LockHolder(node: record?.node ?? "unknown (unreadable lock file)", pid: record?.pid ?? 0, host: record?.host ?? "unknown", age: age)
    }
}

/// One `acquire` call: the unique file, the backoff state and the file server clock.
struct Acquisition {
    enum Step {
        case acquired
        case retry(after: Double)
        case timedOut(waited: Double, holder: LockHolder?)
    }

    let lockPath: String
    let directory: String
    let uniquePath: String
    let record: LockRecord
    let options: LockOptions
    let logger: Logger
    let started = ContinuousClock.now
    var backoff: Double
    var holder: LockHolder?
    var immediateRetries = 0
    /// File server time at a local instant, from the last clock probe.
    var serverClock: (server: Date, local: ContinuousClock.Instant)?
    /// When our unique file was last written or touched.
    var uniqueTouched = ContinuousClock.now

    /// Consecutive attempts made without waiting (after a release or a broken lock) before
    /// falling back to the backoff, so two processes cannot spin on each other.
    static let maxImmediateRetries = 8
    /// A clock probe older than this is refreshed.
    static let clockReuse: Double = 5

    init(name: String, directory: String, node: String, options: LockOptions, logger: Logger) throws(SharedTreeError) {
        let nodeName = try SafeName(node, kind: .node)
        self.directory = PathUtil.normalize(directory)
        self.lockPath = try LockFile.lockPath(name: name, in: self.directory)
        self.record = LockRecord(node: nodeName.value, pid: ProcessIdentity.pid, host: ProcessIdentity.host, token: randomToken(), created: Date().timeIntervalSince1970)
        guard let unique = LockFile.uniquePath(lockPath: lockPath, record: record) else {
            throw .invalidName(kind: "node name", name: node, reason: "it cannot be used in a lock file name")
        }
        self.uniquePath = unique
        self.options = options
        self.logger = logger
        self.backoff = max(0.001, options.initialBackoff)
        try writeUniqueFile()
    }

    private func writeUniqueFile() throws(SharedTreeError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(record)
        } catch {
            throw .malformedFile(path: uniquePath, reason: "cannot encode the lock record: \(error)")
        }
        let fd = try Posix.open(uniquePath, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
        do throws(SharedTreeError) {
            // No fsync: the link() decides who holds the lock, and a record lost in a crash of
            // the file server only makes the lock unverifiable (no commit) and then stale.
            try Posix.writeAll(fd, Array(data) + [UInt8(ascii: "\n")], path: uniquePath)
        } catch {
            Posix.closeQuietly(fd)
            _ = try? Posix.unlinkIfPresent(uniquePath)
            throw error
        }
        do throws(SharedTreeError) {
            try Posix.close(fd, path: uniquePath)
        } catch {
            _ = try? Posix.unlinkIfPresent(uniquePath)
            throw error
        }
    }

    /// Removes the unique file after a failed acquisition.
    func abandon() {
        _ = try? Posix.unlinkIfPresent(uniquePath)
    }

    /// The lock after a successful link, touched once more; nil when it was broken in the
    /// instant after our link (only possible after a pause longer than the stale timeout),
    /// in which case a new unique file is ready for the next attempt.
    mutating func finish() throws(SharedTreeError) -> LockFile? {
        let lock = LockFile(path: lockPath, record: record, options: options, uniquePath: uniquePath, logger: logger)
        do throws(SharedTreeError) {
            try lock.touch()
            return lock
        } catch {
            guard case .lockLost = error else {
                _ = try? lock.release()
                throw error
            }
            logger.warning("lock was broken right after we linked it; trying again", metadata: ["lock": "\(lockPath)"])
            try writeUniqueFile()
            uniqueTouched = ContinuousClock.now
            return nil
        }
    }

    mutating func step() throws(SharedTreeError) -> Step {
        // The unique file's mtime becomes the lock's mtime at link time: keep it fresh while
        // waiting, or a waiter could find our new lock stale before we touch it.
        if seconds(ContinuousClock.now - uniqueTouched) > options.touchInterval {
            do throws(SharedTreeError) {
                try Posix.touch(uniquePath)
            } catch {
                guard error.isNotFound else { throw error }
                // Removed under us (by a cleaner with too short an age limit): write it again.
                try writeUniqueFile()
            }
            uniqueTouched = ContinuousClock.now
        }
        if try link() { return .acquired }
        guard let current = try LockSnapshot.read(lockPath) else {
            // Released between our link and our look: try again at once.
            return immediateRetry()
        }
        let age = try serverNow().timeIntervalSince(current.modified)
        holder = current.holder(age: age)
        if age > options.staleTimeout {
            switch try breakStale(current) {
            case .broken, .lostRace:
                return immediateRetry()
            case .busy, .notStale, .restored:
                break
            }
        }
        return backoffStep()
    }

    private mutating func immediateRetry() -> Step {
        immediateRetries += 1
        if immediateRetries <= Self.maxImmediateRetries { return .retry(after: 0) }
        return backoffStep()
    }

    private mutating func backoffStep() -> Step {
        immediateRetries = 0
        let waited = seconds(ContinuousClock.now - started)
        let remaining = options.timeout - waited
        if remaining <= 0 { return .timedOut(waited: waited, holder: holder) }
        let delay = min(backoff * Double.random(in: 0.5...1.0), remaining)
        backoff = min(backoff * 2, max(options.maxBackoff, options.initialBackoff))
        return .retry(after: delay)
    }


    private mutating func serverNow(fresh: Bool = false) throws(SharedTreeError) -> Date {
        let local = ContinuousClock.now
        if !fresh, let clock = serverClock, seconds(local - clock.local) < Self.clockReuse {
            return clock.server.addingTimeInterval(seconds(local - clock.local))
        }
        let server = try FileServerClock.now(in: directory)
        serverClock = (server, ContinuousClock.now)
        return server
    }

    enum BreakOutcome: Equatable {
        /// We removed the stale lock: try to link at once.
        case broken
        /// The lock vanished or changed hands before we moved it: try to link at once.
        case lostRace
        /// Another breaker is at work on this lock: back off.
        case busy
        /// A fresh look shows the lock is not the stale one we judged, or no longer stale.
        case notStale
        /// What our rename moved turned out to be in use: it was put back.
        case restored
    }

    /// Called between the fresh look and the rename; lets tests stage the narrowest race.
    var beforeBreakRename: (@Sendable () -> Void)?

    /// Marker generations tried when earlier breakers died holding their marker.
    static let maxBreakGenerations = 8

    /// Breaks `judged`, a lock found stale. Internal so tests can drive the races.
    ///
    /// Renaming `NAME.lock` is exclusive only for one version of the lock: a breaker that
    /// judged the old lock stale could otherwise rename the lock that the winner has just
    /// created. So each break is first claimed with a marker `NAME.lock.breaking.<key>`
    /// (key: the stale lock's token) created with the link trick; only the claimant looks
    /// again and renames, and the marker is removed when it is done. A marker older than the
    /// stale timeout belongs to a breaker that died; the next generation (`.<n>`) is claimed.
    mutating func breakStale(_ judged: LockSnapshot) throws(SharedTreeError) -> BreakOutcome {
        guard let marker = try claimBreak(of: judged) else { return .busy }
        defer { _ = try? Posix.unlinkIfPresent(marker) }

        // Look again, now that no other breaker can move the lock.
        guard let current = try LockSnapshot.read(lockPath) else { return .lostRace }
        let currentAge = try serverNow(fresh: true).timeIntervalSince(current.modified)
        guard current.isSameLock(as: judged), currentAge > options.staleTimeout else { return .notStale }

        beforeBreakRename?()
        let broken = lockPath + ".broken." + randomToken()
        do throws(SharedTreeError) {
            try Posix.rename(lockPath, broken)
        } catch {
            if error.isNotFound { return .lostRace }
            throw error
        }
        // The lock could have been touched or could have changed hands between our look and
        // the rename (only if its holder was alive after all): then it goes back.
        guard let moved = try LockSnapshot.read(broken) else { return .lostRace }
        let age = try serverNow(fresh: true).timeIntervalSince(moved.modified)
        guard moved.isSameLock(as: judged), age > options.staleTimeout else {
            LockFile.restore(moved, from: broken, to: lockPath, logger: logger)
            return .restored
        }
        if let record = moved.record, let holderUnique = LockFile.uniquePath(lockPath: lockPath, record: record) {
            try Posix.unlinkIfPresent(holderUnique)
        }
        try Posix.unlinkIfPresent(broken)
        logger.warning("broke stale lock", metadata: [
            "lock": "\(lockPath)",
            "holder": "\(moved.holder(age: age))",
            "staleTimeout": "\(options.staleTimeout)",
        ])
        return .broken
    }

    /// Claims the right to break `judged`: the path of our marker, or nil when another live
    /// breaker holds the claim.
    private mutating func claimBreak(of judged: LockSnapshot) throws(SharedTreeError) -> String? {
        let key = judged.breakKey
        let temporary = "\(lockPath).breaking.\(key).tmp.\(randomToken())"
        let encoder = JSONEncoder()
        let contents = (try? encoder.encode(record)).map { Array($0) } ?? []
        let fd = try Posix.open(temporary, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
        do throws(SharedTreeError) {
            try Posix.writeAll(fd, contents, path: temporary)
            try Posix.close(fd, path: temporary)
        } catch {
            Posix.closeQuietly(fd)
            _ = try? Posix.unlinkIfPresent(temporary)
            throw error
        }
        defer { _ = try? Posix.unlinkIfPresent(temporary) }

        for generation in 1...Self.maxBreakGenerations {
            let marker = generation == 1 ? "\(lockPath).breaking.\(key)" : "\(lockPath).breaking.\(key).\(generation)"
            if try linkExclusively(temporary, to: marker) { return marker }
            // Someone else's claim: live, or left by a breaker that died?
            guard let info = try Posix.stat(marker) else { continue }
            let age = try serverNow().timeIntervalSince(Posix.modificationDate(info))
            if age <= options.staleTimeout { return nil }
        }
        return nil
    }

    /// link(unique, NAME.lock). True when we now hold the lock.
    private func link() throws(SharedTreeError) -> Bool {
        try linkExclusively(uniquePath, to: lockPath)
    }

    /// link(`source`, `target`) for a `source` with no other links. True when the link is
    /// ours; false when `target` already existed.
    private func linkExclusively(_ source: String, to target: String) throws(SharedTreeError) -> Bool {
        while true {
            if systemLink(source, target) == 0 { return true }
            let code = errno
            if code == EINTR { continue }
            // NFS: the reply to a LINK that worked may be lost; the retried request then
            // fails with EEXIST. The link count of the source tells the truth.
            if let info = try Posix.stat(source), info.st_nlink == 2 { return true }
            if code == EEXIST { return false }
            throw .io(operation: "link to \(target)", path: source, code: code)
        }
    }
}

/// The C `link`; inside `Acquisition` the name means its own method.
private func systemLink(_ from: String, _ to: String) -> Int32 {
    link(from, to)
}

func seconds(_ duration: Duration) -> Double {
    let parts = duration.components
    return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
}
