import SharedTree

/// The selected mailbox as one session sees it (RFC 9051 §7.4–7.5): message sequence numbers
/// are this session's own and change only when it is told of an expunge, so other nodes'
/// changes arrive as a new `FolderSnapshot` and are turned into untagged responses here.
/// Pure: no I/O, unit-tested with snapshots.
public struct IMAPMailboxView: Sendable {
    public let folder: MailFolderName
    public let readOnly: Bool
    public private(set) var uidValidity: UInt32
    public private(set) var uidNext: UInt32
    public private(set) var highestModSeq: UInt64
    /// UIDs in sequence-number order (sequence number n is `uids[n - 1]`); ascending.
    public private(set) var uids: [UInt32]
    /// The messages as the client was last told of them: the last snapshot's array, kept as
    /// it is (ascending UID, shared copy-on-write, no per-session index), so a session costs
    /// four bytes a message beyond the snapshot.
    private var messages: [StoredMessage]
    /// Gone from the store but not reported yet: they keep their sequence numbers until an
    /// EXPUNGE may be sent (never during FETCH, STORE or SEARCH, RFC 9051 §7.5.1).
    public private(set) var pendingExpunges: Set<UInt32> = []

    public init(snapshot: FolderSnapshot, readOnly: Bool) {
        folder = snapshot.folder
        self.readOnly = readOnly
        uidValidity = snapshot.uidValidity
        uidNext = snapshot.uidNext
        highestModSeq = snapshot.highestModSeq
        uids = snapshot.messages.map(\.uid)
        messages = snapshot.messages
    }

    public var count: Int { uids.count }

    public func message(uid: UInt32) -> StoredMessage? {
        guard let index = Self.index(of: uid, in: messages, key: \.uid) else { return nil }
        return messages[index]
    }

    /// The sequence number of `uid`, by binary search.
    public func sequenceNumber(of uid: UInt32) -> UInt32? {
        Self.index(of: uid, in: uids, key: { $0 }).map { UInt32($0 + 1) }
    }

    private static func index<Element>(of uid: UInt32, in array: [Element], key: (Element) -> UInt32) -> Int? {
        var low = 0
        var high = array.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let candidate = key(array[middle])
            if candidate == uid { return middle }
            if candidate < uid { low = middle + 1 } else { high = middle - 1 }
        }
        return nil
    }

    /// Live messages in sequence order, with their sequence numbers.
    public var liveMessages: [(sequence: UInt32, message: StoredMessage)] {
        var result: [(sequence: UInt32, message: StoredMessage)] = []
        result.reserveCapacity(messages.count)
        var index = 0
        for (position, uid) in uids.enumerated() {
            while index < messages.count, messages[index].uid < uid { index += 1 }
            if index < messages.count, messages[index].uid == uid { result.append((UInt32(position + 1), messages[index])) }
        }
        return result
    }

    public enum SetError: Error, Equatable {
        /// RFC 9051 §9: a message sequence number beyond the mailbox is a client error (BAD).
        case sequenceNumberOutOfRange(UInt32)
    }

    /// The UIDs a sequence set names, in ascending order. For UID sets, numbers that are not
    /// UIDs of this mailbox are ignored (RFC 9051 §6.4.8); `*` is the largest UID, or for an
    /// empty mailbox nothing. For sequence sets a number past the end is an error.
    public func resolve(_ set: IMAPSequenceSet, byUID: Bool) throws(SetError) -> [UInt32] {
        guard case .ranges(let ranges) = set else { return [] }
        var result: [UInt32] = []
        if byUID {
            guard let largest = uids.last else { return [] }
            for range in ranges {
                var resolved = range.resolved(largest: largest)
                // RFC 9051 §6.4.8: `n:*` with n above every UID still means the last message.
                if range.first == .last || range.last == .last, resolved.lowerBound > largest {
                    resolved = largest...largest
                }
                var index = lowerBound(resolved.lowerBound)
                while index < uids.count, uids[index] <= resolved.upperBound {
                    result.append(uids[index])
                    index += 1
                }
            }
        } else {
            let largest = UInt32(uids.count)
            for range in ranges {
                let resolved = range.resolved(largest: largest)
                guard resolved.upperBound <= largest, resolved.lowerBound >= 1 else {
                    throw .sequenceNumberOutOfRange(resolved.upperBound > largest ? resolved.upperBound : resolved.lowerBound)
                }
                for sequence in resolved { result.append(uids[Int(sequence) - 1]) }
            }
        }
        if ranges.count > 1 { return Array(Set(result)).sorted() }
        return result
    }

    private func lowerBound(_ uid: UInt32) -> Int {
        var low = 0
        var high = uids.count
        while low < high {
            let middle = (low + high) / 2
            if uids[middle] < uid { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Options for turning a new snapshot into responses.
    public struct UpdateOptions: Sendable {
        /// EXPUNGE/VANISHED may be sent now.
        public var allowExpunge: Bool
        /// CONDSTORE enabled: FETCH updates carry MODSEQ.
        public var condStore: Bool
        /// QRESYNC enabled: expunges are sent as VANISHED, flag updates carry the UID.
        public var qresync: Bool
        /// Messages whose change the caller reports itself (its own STORE).
        public var silentUIDs: Set<UInt32>

        public init(allowExpunge: Bool, condStore: Bool = false, qresync: Bool = false, silentUIDs: Set<UInt32> = []) {
            self.allowExpunge = allowExpunge
            self.condStore = condStore
            self.qresync = qresync
            self.silentUIDs = silentUIDs
        }
    }

    /// Takes a newer snapshot of the same folder and returns what the client must be told:
    /// flag changes (FETCH), expunges (EXPUNGE highest first, or VANISHED) when allowed, then
    /// the new message count (EXISTS). Both message lists are in UID order, so one merge pass
    /// finds everything. A snapshot with another UIDVALIDITY is ignored: the caller ends the
    /// session.
    public mutating func update(to snapshot: FolderSnapshot, options: UpdateOptions) -> [IMAPUntaggedResponse] {
        guard snapshot.uidValidity == uidValidity else { return [] }
        var responses: [IMAPUntaggedResponse] = []
        let new = snapshot.messages
        var newIndex = 0
        var position = 0
        for old in messages {
            while newIndex < new.count, new[newIndex].uid < old.uid { newIndex += 1 }
            while position < uids.count, uids[position] < old.uid { position += 1 }
            guard newIndex < new.count, new[newIndex].uid == old.uid else {
                pendingExpunges.insert(old.uid)
                continue
            }
            let now = new[newIndex]
            guard old.modSeq != now.modSeq || old.flags != now.flags || old.keywords != now.keywords,
                !options.silentUIDs.contains(old.uid)
            else { continue }
            var items: [IMAPFetchValue] = [.flags(IMAPFlags.imapFlags(of: now))]
            if options.qresync || options.condStore { items.append(.uid(now.uid)) }
            if options.condStore { items.append(.modSeq(now.modSeq)) }
            responses.append(.fetch(UInt32(position + 1), items))
        }
        let largest = uids.last ?? 0
        messages = new
        if options.allowExpunge { responses += flushExpunges(qresync: options.qresync) }
        var arrived = 0
        for message in new.reversed() {
            guard message.uid > largest else { break }
            arrived += 1
        }
        if arrived > 0 {
            uids += new.suffix(arrived).map(\.uid)
            responses.append(.exists(UInt32(uids.count)))
        }
        uidNext = max(uidNext, snapshot.uidNext)
        highestModSeq = max(highestModSeq, snapshot.highestModSeq)
        return responses
    }

    /// Reports and forgets the pending expunges.
    public mutating func flushExpunges(qresync: Bool) -> [IMAPUntaggedResponse] {
        guard !pendingExpunges.isEmpty else { return [] }
        var responses: [IMAPUntaggedResponse] = []
        if qresync {
            responses.append(.vanished(earlier: false, IMAPSequenceSet(compacting: pendingExpunges)))
            uids.removeAll { pendingExpunges.contains($0) }
        } else {
            // Highest first, so each number is still right when the client applies it.
            for index in uids.indices.reversed() where pendingExpunges.contains(uids[index]) {
                responses.append(.expunge(UInt32(index + 1)))
                uids.remove(at: index)
            }
        }
        pendingExpunges = []
        return responses
    }
}

/// The mapping between the store's flags and IMAP's (RFC 9051 §2.3.2). Maildir's `P` (passed)
/// is the `$Forwarded` keyword (RFC 5788), as in Dovecot.
public enum IMAPFlags {
    public static let forwarded = IMAPFlag("$Forwarded")

    public static let systemFlags: [(MessageFlags, IMAPFlag)] = [
        (.answered, .answered), (.flagged, .flagged), (.deleted, .deleted), (.seen, .seen), (.draft, .draft),
        (.passed, forwarded),
    ]

    public static func imapFlags(of message: StoredMessage) -> [IMAPFlag] {
        var flags = systemFlags.filter { message.flags.contains($0.0) }.map(\.1)
        flags += message.keywords.map(IMAPFlag.init)
        return flags
    }

    /// Splits client flags into the store's flags and keywords; `\Recent` and unknown
    /// backslash flags are dropped (clients may not set them).
    public static func split(_ flags: [IMAPFlag]) -> (flags: MessageFlags, keywords: [String]) {
        var system: MessageFlags = []
        var keywords: [String] = []
        for flag in flags {
            if let known = systemFlags.first(where: { $0.1 == flag }) {
                system.insert(known.0)
            } else if !flag.isSystemOrExtension, !keywords.contains(flag.rawValue) {
                keywords.append(flag.rawValue)
            }
        }
        return (system, keywords)
    }

    /// `* FLAGS`: what the mailbox uses.
    public static let mailboxFlags: [IMAPFlag] = [.answered, .flagged, .deleted, .seen, .draft, forwarded]
}
