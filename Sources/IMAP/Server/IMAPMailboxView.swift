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
    /// What the session last told the client of each message (or would have, for new ones).
    private var known: [UInt32: StoredMessage]
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
        known = Dictionary(snapshot.messages.map { ($0.uid, $0) }) { first, _ in first }
    }

    public var count: Int { uids.count }

    public func message(uid: UInt32) -> StoredMessage? {
        pendingExpunges.contains(uid) ? nil : known[uid]
    }

    /// The sequence number of `uid`, by binary search.
    public func sequenceNumber(of uid: UInt32) -> UInt32? {
        var low = 0
        var high = uids.count - 1
        while low <= high {
            let middle = (low + high) / 2
            if uids[middle] == uid { return UInt32(middle + 1) }
            if uids[middle] < uid { low = middle + 1 } else { high = middle - 1 }
        }
        return nil
    }

    /// Live messages in sequence order, with their sequence numbers.
    public var liveMessages: [(sequence: UInt32, message: StoredMessage)] {
        uids.enumerated().compactMap { index, uid in message(uid: uid).map { (UInt32(index + 1), $0) } }
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
    /// the new message count (EXISTS). A snapshot with another UIDVALIDITY cannot be
    /// reconciled: the caller must end the session (`uidValidityChanged`).
    public mutating func update(to snapshot: FolderSnapshot, options: UpdateOptions) -> [IMAPUntaggedResponse] {
        guard snapshot.uidValidity == uidValidity else { return [] }
        var responses: [IMAPUntaggedResponse] = []
        var current: [UInt32: StoredMessage] = [:]
        current.reserveCapacity(snapshot.messages.count)
        for message in snapshot.messages { current[message.uid] = message }

        for (index, uid) in uids.enumerated() where !pendingExpunges.contains(uid) {
            guard let now = current[uid] else {
                pendingExpunges.insert(uid)
                continue
            }
            guard let before = known[uid], before.modSeq != now.modSeq || before.flags != now.flags || before.keywords != now.keywords else {
                continue
            }
            known[uid] = now
            if options.silentUIDs.contains(uid) { continue }
            var items: [IMAPFetchValue] = [.flags(IMAPFlags.imapFlags(of: now))]
            if options.qresync || options.condStore { items.append(.uid(uid)) }
            if options.condStore { items.append(.modSeq(now.modSeq)) }
            responses.append(.fetch(UInt32(index + 1), items))
        }

        if options.allowExpunge { responses += flushExpunges(qresync: options.qresync) }

        let largest = uids.last ?? 0
        let arrived = snapshot.messages.filter { $0.uid > largest }
        if !arrived.isEmpty {
            for message in arrived {
                uids.append(message.uid)
                known[message.uid] = message
            }
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
        for uid in pendingExpunges { known[uid] = nil }
        pendingExpunges = []
        return responses
    }

    /// Records the flags the session itself just reported for `message`.
    public mutating func record(_ message: StoredMessage) {
        guard known[message.uid] != nil else { return }
        known[message.uid] = message
        highestModSeq = max(highestModSeq, message.modSeq)
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
