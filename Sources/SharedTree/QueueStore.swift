import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One recipient of a queued message and how far its delivery got.
public struct QueueRecipient: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case pending, delivered, failed
    }

    public var address: String
    public var status: Status
    /// Last reply or error, for `svcpkg queue show` and the DSN.
    public var lastResult: String?

    public init(address: String, status: Status = .pending, lastResult: String? = nil) {
        self.address = address
        self.status = status
        self.lastResult = lastResult
    }
}

/// The envelope of a queued message: everything but the message bytes.
public struct QueueEnvelope: Codable, Sendable, Equatable {
    public var id: String
    /// Reverse-path; empty for the null sender (bounces).
    public var sender: String
    public var recipients: [QueueRecipient]
    public var size: Int
    public var receivedAt: Date
    public var receivedBy: String
    public var attempts: Int
    public var nextAttemptAt: Date
    /// The authenticated submitter, if any.
    public var authenticatedUser: String?
    /// MAIL FROM parameters a relay must keep (RFC 6531 SMTPUTF8, RFC 6152 8BITMIME).
    public var requiresSMTPUTF8: Bool?
    public var eightBit: Bool?

    public init(
        id: String, sender: String, recipients: [QueueRecipient], size: Int, receivedAt: Date, receivedBy: String,
        attempts: Int = 0, nextAttemptAt: Date, authenticatedUser: String? = nil
    ) {
        self.id = id
        self.sender = sender
        self.recipients = recipients
        self.size = size
        self.receivedAt = receivedAt
        self.receivedBy = receivedBy
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.authenticatedUser = authenticatedUser
    }

    public var pendingRecipients: [QueueRecipient] { recipients.filter { $0.status == .pending } }
}

/// The MTA spool on the shared tree, so that any node's queue runner can deliver any entry.
///
/// Layout under `<root>/queue`:
/// - `messages/<id>.eml` the message bytes, written once (tmp + fsync + rename), never changed;
/// - `incoming/<id>.json` the envelope of an entry waiting for its first or next attempt,
///   `deferred/<id>.json` after a temporary failure, `failed/<id>.json` when given up;
/// - `locks/<id>.lock` the claim of the runner working on it (the `active` state). A claim
///   whose holder died is broken by the lock-file protocol after the stale timeout, so the
///   entry is picked up by another node.
///
/// An entry exists from the moment its envelope is renamed into `incoming/`: the message
/// file is durable before that, so an accepted message is never lost, and a message file
/// without an envelope (a crash between the two) is removed by `removeOrphans`.
public struct QueueStore: Sendable {
    public enum State: String, Sendable, CaseIterable {
        case incoming, deferred, failed
    }

    public static let maxEnvelopeBytes = 1 << 20

    public let layout: SharedTreeLayout
    public let node: String
    public let lockOptions: LockOptions

    public init(layout: SharedTreeLayout, node: String, lockOptions: LockOptions = LockOptions()) {
        self.layout = layout
        self.node = node
        self.lockOptions = lockOptions
    }

    var root: String { layout.queueDirectory }
    var messagesDirectory: String { PathUtil.join(root, "messages") }
    var locksDirectory: String { PathUtil.join(root, "locks") }
    func directory(_ state: State) -> String { PathUtil.join(root, state.rawValue) }
    func messagePath(_ id: String) -> String { PathUtil.join(messagesDirectory, id + ".eml") }
    func envelopePath(_ id: String, _ state: State) -> String { PathUtil.join(directory(state), id + ".json") }

    public func createDirectories() throws(SharedTreeError) {
        try Posix.mkdir(root, mode: 0o755)
        for directory in [messagesDirectory, locksDirectory] + State.allCases.map(directory) {
            try Posix.mkdir(directory, mode: 0o755)
        }
    }

    /// A new queue id: time-ordered, unique across nodes (node name + random bits).
    public func newID(now: Date = Date()) -> String {
        let millis = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        let random = (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        return String(format: "%013llx", millis) + "-" + node + "-" + random
    }

    /// Stores the message durably and makes it an entry. When this returns, the message is
    /// accepted: it survives a crash of this node and any node may deliver it.
    @discardableResult
    public func enqueue(
        message: [UInt8], sender: String, recipients: [String], authenticatedUser: String? = nil, requiresSMTPUTF8: Bool = false,
        eightBit: Bool = false, now: Date = Date()
    ) throws(SharedTreeError) -> QueueEnvelope {
        try createDirectories()
        let id = newID(now: now)
        // Whole seconds: what the envelope stores round-trips exactly through JSON.
        let now = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        try AtomicFile.write(message, to: messagePath(id), mode: 0o640)
        var envelope = QueueEnvelope(
            id: id, sender: sender, recipients: recipients.map { QueueRecipient(address: $0) }, size: message.count,
            receivedAt: now, receivedBy: node, nextAttemptAt: now, authenticatedUser: authenticatedUser)
        envelope.requiresSMTPUTF8 = requiresSMTPUTF8 ? true : nil
        envelope.eightBit = eightBit ? true : nil
        try writeEnvelope(envelope, state: .incoming)
        return envelope
    }

    /// Entries in one state, oldest first. Unreadable envelopes are skipped (and reported by `check`).
    public func list(_ state: State) throws(SharedTreeError) -> [QueueEnvelope] {
        var result: [QueueEnvelope] = []
        for name in try listIDs(state) {
            if let envelope = try? readEnvelope(name, state: state) { result.append(envelope) }
        }
        return result.sorted { $0.receivedAt < $1.receivedAt }
    }

    /// Ids in `incoming/` and `deferred/` whose next attempt is due.
    public func due(now: Date = Date()) throws(SharedTreeError) -> [QueueEnvelope] {
        // An entry caught between two states by a crash shows up once.
        var seen = Set<String>()
        return (try list(.incoming) + list(.deferred)).filter { $0.nextAttemptAt <= now && seen.insert($0.id).inserted }
    }

    public func isClaimed(_ id: String) throws(SharedTreeError) -> Bool {
        try LockFile.holder(name: id, in: locksDirectory) != nil
    }

    /// Claims an entry for delivery; nil when another runner holds it or it is gone.
    /// A claim left by a dead runner is broken after the stale timeout.
    public func claim(_ id: String) throws(SharedTreeError) -> QueueClaim? {
        guard SafeName.isValid(id, kind: .fileName) else {
            throw .invalidName(kind: "queue id", name: id, reason: "not a queue id")
        }
        try createDirectories()
        guard let lock = try LockFile.tryAcquire(name: id, in: locksDirectory, node: node, options: lockOptions) else {
            return nil
        }
        for state in [State.incoming, .deferred] {
            if let envelope = try? readEnvelope(id, state: state) {
                return QueueClaim(store: self, lock: lock, envelope: envelope, state: state)
            }
        }
        // Delivered (or deleted) by whoever held it before.
        _ = try? lock.release()
        return nil
    }

    /// Message bytes of an entry.
    public func message(_ id: String, maxBytes: Int = 1 << 31) throws(SharedTreeError) -> [UInt8] {
        try AtomicFile.read(messagePath(id), maxBytes: maxBytes)
    }

    /// Finds an entry in any state.
    public func find(_ id: String) throws(SharedTreeError) -> (QueueEnvelope, State)? {
        guard SafeName.isValid(id, kind: .fileName) else { return nil }
        for state in State.allCases {
            if let envelope = try? readEnvelope(id, state: state) { return (envelope, state) }
        }
        return nil
    }

    /// Makes a deferred or failed entry due now (`svcpkg queue retry`): pending recipients of a
    /// failed entry become pending again. Returns false when the entry is claimed or gone.
    public func retryNow(_ id: String, now: Date = Date()) throws(SharedTreeError) -> Bool {
        guard let (envelope, state) = try find(id) else { return false }
        if state == .incoming && envelope.nextAttemptAt <= now { return true }  // already due
        guard let lock = try LockFile.tryAcquire(name: id, in: locksDirectory, node: node, options: lockOptions) else { return false }
        var changed = envelope
        changed.nextAttemptAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        if state == .failed {
            for index in changed.recipients.indices where changed.recipients[index].status == .failed {
                changed.recipients[index].status = .pending
            }
        }
        try lock.verify()
        try writeEnvelope(changed, state: .incoming)
        if state != .incoming { _ = try Posix.unlinkIfPresent(envelopePath(id, state)) }
        _ = try lock.release()
        return true
    }

    /// Deletes an entry and its message (`svcpkg queue delete`). Returns false when it is
    /// claimed by a runner right now or does not exist.
    public func delete(_ id: String) throws(SharedTreeError) -> Bool {
        guard let (_, state) = try find(id) else { return false }
        guard let lock = try LockFile.tryAcquire(name: id, in: locksDirectory, node: node, options: lockOptions) else { return false }
        try lock.verify()
        _ = try Posix.unlinkIfPresent(envelopePath(id, state))
        try Posix.fsyncDirectory(directory(state))
        _ = try Posix.unlinkIfPresent(messagePath(id))
        _ = try lock.release()
        return true
    }

    /// Removes message files without an envelope older than `olderThan` seconds
    /// (a crash between writing the message and its envelope). Returns how many.
    public func removeOrphans(olderThan: TimeInterval) throws(SharedTreeError) -> Int {
        try createDirectories()
        let now = try FileServerClock.now(in: messagesDirectory)
        var known = Set<String>()
        for state in State.allCases { known.formUnion(try listIDs(state)) }
        var removed = 0
        for name in try Posix.listDirectory(messagesDirectory) where name.hasSuffix(".eml") {
            let id = String(name.dropLast(4))
            guard !known.contains(id), let info = try Posix.stat(PathUtil.join(messagesDirectory, name)) else { continue }
            if now.timeIntervalSince(Posix.modificationDate(info)) > olderThan {
                if try Posix.unlinkIfPresent(PathUtil.join(messagesDirectory, name)) { removed += 1 }
            }
        }
        return removed
    }

    func listIDs(_ state: State) throws(SharedTreeError) -> [String] {
        let names: [String]
        // (`catch where` on a typed throw crashes Swift 6.3.1, hence the guard.)
        do throws(SharedTreeError) {
            names = try Posix.listDirectory(directory(state))
        } catch {
            guard error.isNotFound else { throw error }
            return []
        }
        return names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.map { String($0.dropLast(5)) }
    }

    func readEnvelope(_ id: String, state: State) throws(SharedTreeError) -> QueueEnvelope {
        let path = envelopePath(id, state)
        let bytes = try AtomicFile.read(path, maxBytes: Self.maxEnvelopeBytes)
        do {
            return try Self.decoder.decode(QueueEnvelope.self, from: Data(bytes))
        } catch {
            throw .malformedFile(path: path, reason: "not a queue envelope: \(error)")
        }
    }

    func writeEnvelope(_ envelope: QueueEnvelope, state: State) throws(SharedTreeError) {
        let data: Data
        do {
            data = try Self.encoder.encode(envelope)
        } catch {
            throw .malformedFile(path: envelopePath(envelope.id, state), reason: "cannot encode: \(error)")
        }
        try AtomicFile.write(Array(data), to: envelopePath(envelope.id, state), mode: 0o640)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }()
}

/// A queue entry claimed by this runner. Every change first verifies the claim is still ours
/// (a runner that stalled past the stale timeout has lost it and must not commit).
public struct QueueClaim: Sendable {
    public let store: QueueStore
    public let lock: LockFile
    public private(set) var envelope: QueueEnvelope
    public private(set) var state: QueueStore.State

    init(store: QueueStore, lock: LockFile, envelope: QueueEnvelope, state: QueueStore.State) {
        self.store = store
        self.lock = lock
        self.envelope = envelope
        self.state = state
    }

    public func message(maxBytes: Int = 1 << 31) throws(SharedTreeError) -> [UInt8] {
        try store.message(envelope.id, maxBytes: maxBytes)
    }

    /// Records per-recipient results (e.g. some delivered) without changing the state.
    public mutating func record(_ update: (inout QueueEnvelope) -> Void) throws(SharedTreeError) {
        try lock.verify()
        var changed = envelope
        update(&changed)
        try store.writeEnvelope(changed, state: state)
        envelope = changed
    }

    /// Every recipient is done (delivered or failed for good): removes the entry.
    public func complete() throws(SharedTreeError) {
        try lock.verify()
        _ = try Posix.unlinkIfPresent(store.envelopePath(envelope.id, state))
        try Posix.fsyncDirectory(store.directory(state))
        _ = try Posix.unlinkIfPresent(store.messagePath(envelope.id))
        _ = try lock.release()
    }

    /// Temporary failure: the entry waits in `deferred/` until `until`.
    public func `defer`(until date: Date, update: (inout QueueEnvelope) -> Void = { _ in }) throws(SharedTreeError) {
        try move(to: .deferred) { envelope in
            envelope.attempts += 1
            envelope.nextAttemptAt = Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.up))
            update(&envelope)
        }
    }

    /// Permanent failure (after the DSN was queued): kept in `failed/` for the operator.
    public func fail(update: (inout QueueEnvelope) -> Void = { _ in }) throws(SharedTreeError) {
        try move(to: .failed, update)
    }

    /// Gives the entry back unchanged (e.g. the node is draining).
    public func release() throws(SharedTreeError) {
        _ = try lock.release()
    }

    private func move(to target: QueueStore.State, _ update: (inout QueueEnvelope) -> Void) throws(SharedTreeError) {
        try lock.verify()
        var changed = envelope
        update(&changed)
        // New envelope first, then the old one goes: a crash in between leaves the entry in
        // two states, which `find` and the runner tolerate (same id, one claim), never in none.
        try store.writeEnvelope(changed, state: target)
        if target != state {
            _ = try Posix.unlinkIfPresent(store.envelopePath(envelope.id, state))
            try Posix.fsyncDirectory(store.directory(state))
        }
        _ = try lock.release()
    }
}
