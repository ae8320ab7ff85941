import Foundation
import MailMessage
import SharedTree

extension IMAPSession {
    /// SEARCH and UID SEARCH (RFC 9051 §6.4.4): the matching UIDs in sequence order, or nil
    /// after answering. Keys on flags, sizes, dates, UIDs and MODSEQ use the UID list only;
    /// text keys read and decode the message (RFC 2047 words, transfer encodings, charsets)
    /// and match case-insensitively as substrings.
    mutating func search(_ key: IMAPSearchKey, tag: String, send: Send) async throws -> [UInt32]? {
        guard let store, let view = selected else { return nil }
        let folder = view.folder
        let context = IMAPSearchContext(
            messages: view.liveMessages, count: UInt32(view.count), largestUID: view.uids.last ?? 0,
            saved: Set(savedSearchResult), now: Date())
        let needsContent = key.needsContent
        let needles = key.requiredNeedles.filter { $0.needle.count >= 3 }
        let index = services.searchIndex
        let uidValidity = view.uidValidity
        return try await blocking {
            var messages = context.messages
            if let index, !needles.isEmpty {
                let stored = messages.map(\.message)
                var candidates: Set<UInt32>?
                for (needle, bodyOnly) in needles {
                    guard let found = try index.candidates(
                        store: store, folder: folder, uidValidity: uidValidity, needle: needle, bodyOnly: bodyOnly, messages: stored)
                    else { continue }
                    candidates = candidates.map { $0.intersection(found) } ?? found
                }
                if let candidates { messages = messages.filter { candidates.contains($0.message.uid) } }
            }
            var matches: [UInt32] = []
            for (sequence, message) in messages {
                var content: IMAPSearchContent?
                if needsContent {
                    guard let bytes = try store.readMessage(message, in: folder) else { continue }
                    content = IMAPSearchContent(bytes: bytes)
                }
                if context.matches(key, sequence: sequence, message: message, content: &content) {
                    matches.append(message.uid)
                }
            }
            return matches
        }
    }

    /// `* SEARCH` or, with RETURN options, `* ESEARCH` (RFC 4731); SAVE keeps the result for `$`.
    mutating func reportSearch(_ matches: [UInt32], command: IMAPSearchCommand, tag: String, send: Send) async throws {
        guard let view = selected else { return }
        let numbers = command.byUID ? matches : matches.compactMap { view.sequenceNumber(of: $0) }
        let modSeq: UInt64? = command.key.usesModSeq ? matches.compactMap { view.message(uid: $0)?.modSeq }.max() : nil
        guard let options = command.returnOptions else {
            try await send(.untagged(.search(numbers, modSeq: modSeq)))
            return
        }
        let wanted = options.isEmpty ? [.all] : options
        if wanted.contains(.save) { saveSearchResult(matches) }
        // RFC 5182 §2.4: SAVE alone returns nothing but the tagged OK.
        if wanted == [.save] { return }
        var response = IMAPESearchResponse(tag: tag, byUID: command.byUID)
        if wanted.contains(.min) { response.min = numbers.min() }
        if wanted.contains(.max) { response.max = numbers.max() }
        if wanted.contains(.all), !numbers.isEmpty { response.all = IMAPSequenceSet(compacting: numbers) }
        if wanted.contains(.count) { response.count = UInt32(numbers.count) }
        if !numbers.isEmpty { response.modSeq = modSeq }
        try await send(.untagged(.esearch(response)))
    }
}

/// What a search sees of the mailbox, taken before it runs on the file threads.
struct IMAPSearchContext: Sendable {
    let messages: [(sequence: UInt32, message: StoredMessage)]
    let count: UInt32
    let largestUID: UInt32
    let saved: Set<UInt32>
    let now: Date

    func matches(_ key: IMAPSearchKey, sequence: UInt32, message: StoredMessage, content: inout IMAPSearchContent?) -> Bool {
        switch key {
        case .all: return true
        case .answered: return message.flags.contains(.answered)
        case .deleted: return message.flags.contains(.deleted)
        case .draft: return message.flags.contains(.draft)
        case .flagged: return message.flags.contains(.flagged)
        case .seen: return message.flags.contains(.seen)
        case .unanswered: return !message.flags.contains(.answered)
        case .undeleted: return !message.flags.contains(.deleted)
        case .undraft: return !message.flags.contains(.draft)
        case .unflagged: return !message.flags.contains(.flagged)
        case .unseen: return !message.flags.contains(.seen)
        // RFC 3501: \Recent is not kept by this server (RFC 9051 dropped it), so nothing is new.
        case .new, .recent: return false
        case .old: return true
        case .keyword(let flag): return IMAPFlags.imapFlags(of: message).contains(flag)
        case .unkeyword(let flag): return !IMAPFlags.imapFlags(of: message).contains(flag)
        case .larger(let size): return UInt64(message.virtualSize ?? message.size) > size
        case .smaller(let size): return UInt64(message.virtualSize ?? message.size) < size
        case .uid(let set):
            if case .lastSearchResult = set { return saved.contains(message.uid) }
            return set.contains(message.uid, largest: largestUID)
        case .sequenceNumbers(let set):
            if case .lastSearchResult = set { return saved.contains(message.uid) }
            return set.contains(sequence, largest: count)
        case .modSeq(let modSeq): return message.modSeq >= modSeq.value
        case .before(let date): return internalDay(message) < date.daysSince1970
        case .on(let date): return internalDay(message) == date.daysSince1970
        case .since(let date): return internalDay(message) >= date.daysSince1970
        case .older(let seconds): return now.timeIntervalSince(message.arrivalDate) >= Double(seconds)
        case .younger(let seconds): return now.timeIntervalSince(message.arrivalDate) <= Double(seconds)
        case .sentBefore(let date):
            guard let day = content?.sentDay else { return false }
            return day < date.daysSince1970
        case .sentOn(let date):
            guard let day = content?.sentDay else { return false }
            return day == date.daysSince1970
        case .sentSince(let date):
            guard let day = content?.sentDay else { return false }
            return day >= date.daysSince1970
        case .bcc(let text): return content?.header("Bcc", contains: text) ?? false
        case .cc(let text): return content?.header("Cc", contains: text) ?? false
        case .from(let text): return content?.header("From", contains: text) ?? false
        case .to(let text): return content?.header("To", contains: text) ?? false
        case .subject(let text): return content?.header("Subject", contains: text) ?? false
        case .header(let name, let text): return content?.header(name, contains: text) ?? false
        case .body(let text): return content?.body(contains: text) ?? false
        case .text(let text): return content?.text(contains: text) ?? false
        case .not(let inner): return !matches(inner, sequence: sequence, message: message, content: &content)
        case .or(let a, let b):
            return matches(a, sequence: sequence, message: message, content: &content)
                || matches(b, sequence: sequence, message: message, content: &content)
        case .and(let keys):
            return keys.allSatisfy { matches($0, sequence: sequence, message: message, content: &content) }
        }
    }

    /// RFC 9051 §6.4.4: BEFORE/ON/SINCE compare INTERNALDATE's day, disregarding time and zone.
    private func internalDay(_ message: StoredMessage) -> Int {
        Int((message.arrivalDate.timeIntervalSince1970 / 86400).rounded(.down))
    }
}

/// A message's text for SEARCH, decoded lazily (`MessageStructure.searchable…`, the same text
/// the node's full-text index holds).
struct IMAPSearchContent {
    let bytes: [UInt8]
    private lazy var structure = MessageStructure.parse(bytes)
    private lazy var bodyText: String = structure.searchableBodyText(of: bytes)
    private lazy var headerText: String = structure.searchableHeaderText

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func header(_ name: String, contains needle: String) -> Bool {
        let fields = structure.root.fields.filter { $0.hasName(name) }
        if needle.isEmpty { return !fields.isEmpty }
        return fields.contains { Self.contains(EncodedWords.decode($0.value), needle) }
    }

    mutating func body(contains needle: String) -> Bool {
        Self.contains(bodyText, needle)
    }

    mutating func text(contains needle: String) -> Bool {
        Self.contains(headerText, needle) || body(contains: needle)
    }

    /// The Date: field's day (days since 1970), ignoring time and zone.
    var sentDay: Int? {
        mutating get {
            guard let value = structure.root.fields.first(where: { $0.hasName("Date") })?.value else { return nil }
            return RFC5322DateDay.parse(String(decoding: value, as: UTF8.self))
        }
    }

    static func contains(_ haystack: String, _ needle: String) -> Bool {
        needle.isEmpty || haystack.range(of: needle, options: [.caseInsensitive]) != nil
    }
}

extension IMAPSearchKey {
    /// Needs the message file, not only the UID list.
    var needsContent: Bool {
        switch self {
        case .bcc, .body, .cc, .from, .subject, .text, .to, .header, .sentBefore, .sentOn, .sentSince: return true
        case .not(let key): return key.needsContent
        case .or(let a, let b): return a.needsContent || b.needsContent
        case .and(let keys): return keys.contains { $0.needsContent }
        default: return false
        }
    }
}
