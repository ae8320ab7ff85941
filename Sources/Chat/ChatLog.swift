import Foundation
import SharedTree

/// What `state.json` beside a log says: the last sequence number, the day file it is in
/// and the committed length of that file, and (for a channel) the channel's state after
/// that line. Written with `AtomicFile` under the log's lock after every append.
public struct ChatLogState: Codable, Sendable, Equatable {
    public var seq: UInt64 = 0
    /// `YYYY-MM-DD.log`, nil before the first line.
    public var file: String?
    /// Bytes of `file` that are committed lines.
    public var offset: UInt64 = 0
    public var channel: ChannelState?

    public init(channel: ChannelState? = nil) {
        self.channel = channel
    }
}

/// Where reading of a log has got to.
public struct ChatLogCursor: Sendable, Equatable {
    public var seq: UInt64
    public var file: String?
    public var offset: UInt64

    public init(seq: UInt64, file: String?, offset: UInt64) {
        self.seq = seq
        self.file = file
        self.offset = offset
    }

    public init(_ state: ChatLogState) {
        self.init(seq: state.seq, file: state.file, offset: state.offset)
    }
}

public enum ChatStoreError: Error, Sendable, CustomStringConvertible {
    case tree(SharedTreeError)
    case malformed(path: String, reason: String)
    case refused(IRCError)

    public var description: String {
        switch self {
        case .tree(let error): return "\(error)"
        case .malformed(let path, let reason): return "\(path): \(reason); move the file aside to start the log afresh"
        case .refused(let error): return "\(error.code) \(error.text)"
        }
    }
}

/// An append-only log in one directory of the shared tree: `YYYY-MM-DD.log` files of JSON
/// lines, `state.json`, and the lock `log.lock` (the shared-tree lock-file protocol).
/// Appends happen under the lock; reads need none, because readers stop at the committed
/// offset in `state.json`. A writer that died between appending and writing the state
/// left lines past that offset: the next writer reads them into the state (the log is the
/// record) and cuts a torn last line.
///
/// Every method blocks on the file server: call them on a thread pool.
public struct ChatLog: Sendable {
    public static let lockName = "log"
    public static let stateFile = "state.json"
    public static let maxStateBytes = 4 * 1024 * 1024
    /// One line is at most a 512-octet IRC message with 4 KiB of client tags, as JSON.
    public static let maxLineBytes = 64 * 1024
    /// A read never takes more than this much of a log at once.
    public static let maxReadBytes = 8 * 1024 * 1024

    public let directory: String
    public let node: String
    public let lockOptions: LockOptions

    public init(directory: String, node: String, lockOptions: LockOptions) {
        self.directory = directory
        self.node = node
        self.lockOptions = lockOptions
    }

    var statePath: String { directory + "/" + Self.stateFile }

    public func readState() throws(ChatStoreError) -> ChatLogState? {
        let bytes: [UInt8]
        do {
            bytes = try AtomicFile.read(statePath, maxBytes: Self.maxStateBytes)
        } catch {
            if error.isNotFound { return nil }
            throw .tree(error)
        }
        do {
            return try JSONDecoder().decode(ChatLogState.self, from: Data(bytes))
        } catch {
            throw .malformed(path: statePath, reason: "\(error)")
        }
    }

    /// Runs `body` under the log's lock with the current state; the events it returns get
    /// the next sequence numbers and the time now, are appended, applied to the channel
    /// state, and the state is written. `body` may change the state itself (invitations)
    /// and may throw `.refused` to append nothing. Returns the events as written and the
    /// new state.
    public func append(
        _ body: (inout ChatLogState) throws(ChatStoreError) -> [ChatEvent]
    ) throws(ChatStoreError) -> (events: [ChatEvent], state: ChatLogState) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .tree(.io(operation: "mkdir", path: directory, code: EIO))
        }
        let lock: LockFile
        do {
            lock = try LockFile.acquire(name: Self.lockName, in: directory, node: node, options: lockOptions)
        } catch {
            throw .tree(error)
        }
        defer { _ = try? lock.release() }
        var state = try readState() ?? ChatLogState()
        let before = state
        if let file = state.file { try recover(file: file, into: &state) }
        var events = try body(&state)
        let now = ServerTime.nowMilliseconds()
        for index in events.indices {
            state.seq += 1
            events[index].seq = state.seq
            events[index].time = now
            state.channel?.apply(events[index])
        }
        if !events.isEmpty {
            let file = ServerTime.day(now) + ".log"
            if file != state.file {
                state.file = file
                state.offset = 0
                // A writer that died just after starting this day's file left lines in it.
                try recover(file: file, into: &state)
            }
            var bytes: [UInt8] = []
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            for event in events {
                guard let line = try? encoder.encode(event) else { continue }
                bytes += line
                bytes.append(0x0a)
            }
            do {
                try lock.verify()
            } catch {
                throw .tree(error)
            }
            try write(bytes, to: directory + "/" + file, at: state.offset)
            state.offset += UInt64(bytes.count)
        }
        if state != before {
            do {
                try lock.verify()
                try AtomicFile.write(Array(try JSONEncoder().encode(state)), to: statePath)
            } catch let error as SharedTreeError {
                throw .tree(error)
            } catch {
                throw .malformed(path: statePath, reason: "\(error)")
            }
        }
        return (events, state)
    }

    /// Takes complete lines past the committed offset into the state and cuts a torn
    /// last line.
    func recover(file: String, into state: inout ChatLogState) throws(ChatStoreError) {
        let path = directory + "/" + file
        guard let size = fileSize(path), size > state.offset else { return }
        let (events, consumed) = try read(file: file, from: state.offset, to: size)
        for event in events where event.seq > state.seq {
            state.seq = event.seq
            state.channel?.apply(event)
        }
        state.offset += consumed
        if state.offset < size {
            guard let handle = FileHandle(forUpdatingAtPath: path) else {
                throw .tree(.io(operation: "open", path: path, code: errno))
            }
            defer { try? handle.close() }
            do {
                try handle.truncate(atOffset: state.offset)
                try handle.synchronize()
            } catch {
                throw .tree(.io(operation: "truncate", path: path, code: EIO))
            }
        }
    }

    func write(_ bytes: [UInt8], to path: String, at offset: UInt64) throws(ChatStoreError) {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw .tree(.io(operation: "create", path: path, code: errno))
            }
        }
        guard let handle = FileHandle(forUpdatingAtPath: path) else {
            throw .tree(.io(operation: "open", path: path, code: errno))
        }
        defer { try? handle.close() }
        do {
            try handle.seek(toOffset: offset)
            try handle.write(contentsOf: bytes)
            try handle.synchronize()
        } catch {
            throw .tree(.io(operation: "write", path: path, code: EIO))
        }
    }

    /// The size from an open descriptor: on NFS, open() revalidates the attributes
    /// (close-to-open consistency) where a plain stat may answer from the attribute cache.
    func fileSize(_ path: String) -> UInt64? {
        Self.status(path).map { UInt64($0.st_size) }
    }

    static func status(_ path: String) -> stat? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return info
    }

    /// What changes whenever `state.json` is replaced (inode, size, mtime), read the way
    /// `fileSize` reads; nil when there is no state yet.
    public func stateStamp() -> String? {
        guard let info = Self.status(statePath) else { return nil }
        return "\(info.st_ino)-\(info.st_size)-\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    /// The complete lines of `file` between two offsets (at most `maxReadBytes`), and how
    /// many bytes they took. Lines that do not decode are skipped.
    public func read(file: String, from start: UInt64, to end: UInt64) throws(ChatStoreError) -> (events: [ChatEvent], consumed: UInt64) {
        guard end > start else { return ([], 0) }
        let path = directory + "/" + file
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw .tree(.io(operation: "open", path: path, code: errno))
        }
        defer { try? handle.close() }
        let bytes: [UInt8]
        do {
            try handle.seek(toOffset: start)
            bytes = Array(try handle.read(upToCount: Int(min(end - start, UInt64(Self.maxReadBytes)))) ?? Data())
        } catch {
            throw .tree(.io(operation: "read", path: path, code: EIO))
        }
        var events: [ChatEvent] = []
        var lineStart = 0
        let decoder = JSONDecoder()
        for index in bytes.indices where bytes[index] == 0x0a {
            let line = bytes[lineStart..<index]
            lineStart = index + 1
            guard line.count <= Self.maxLineBytes, let event = try? decoder.decode(ChatEvent.self, from: Data(line)) else { continue }
            events.append(event)
        }
        return (events, UInt64(lineStart))
    }

    /// Lines committed after `cursor`, and the cursor after them. Follows the log into the
    /// next day's file.
    public func readNew(after cursor: ChatLogCursor, state: ChatLogState) throws(ChatStoreError) -> (events: [ChatEvent], cursor: ChatLogCursor) {
        guard state.seq > cursor.seq, let current = state.file else { return ([], cursor) }
        var events: [ChatEvent] = []
        var cursor = cursor
        if let file = cursor.file, file != current {
            // The rest of the previous day's file, then the new one from its start.
            if let size = fileSize(directory + "/" + file) {
                events += try read(file: file, from: cursor.offset, to: size).events
            }
            cursor.file = current
            cursor.offset = 0
        }
        cursor.file = current
        let (tail, consumed) = try read(file: current, from: cursor.offset, to: state.offset)
        events += tail
        cursor.offset += consumed
        events = events.filter { $0.seq > cursor.seq }
        cursor.seq = max(cursor.seq, events.last?.seq ?? cursor.seq)
        return (events, cursor)
    }

    /// Day files, oldest first.
    public func dayFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".log") && $0.utf8.count == 14 && !$0.hasPrefix(".") }.sorted()
    }

    /// Every line of one day file (bounded by `maxReadBytes`).
    public func events(inDayFile file: String) throws(ChatStoreError) -> [ChatEvent] {
        guard let size = fileSize(directory + "/" + file) else { return [] }
        return try read(file: file, from: 0, to: size).events
    }
}
