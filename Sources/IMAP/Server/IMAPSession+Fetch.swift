import Foundation
import MailMessage
import SharedTree

extension IMAPSession {
    /// Messages whose files are read in one trip to the file threads.
    static let fetchBatchSize = 32
    /// What is read of a message for ENVELOPE alone: the header, however long it is in practice.
    static let envelopeHeaderBytes = 128 * 1024

    /// FETCH and UID FETCH (RFC 9051 §6.4.5): one `* n FETCH` per message still in the store,
    /// in the order of `uids`. Fetching a body section without PEEK sets `\Seen` first (in a
    /// read-write mailbox), and that response then carries the new FLAGS.
    mutating func fetch(_ uids: [UInt32], attributes: [IMAPFetchAttribute], byUID: Bool, send: Send) async throws {
        guard let store, let view = selected else { return }
        let folder = view.folder
        let needsContent = attributes.contains { $0.needsContent }
        // ENVELOPE alone needs only the header: read the start of the file, not all of it.
        let headerOnly = attributes.allSatisfy { !$0.needsContent || $0 == .envelope }
        // ENVELOPE, BODY and BODYSTRUCTURE can come from the summary cache without the file.
        let summaryCache = needsContent && attributes.allSatisfy { !$0.needsContent || $0.isSummary } ? services.summaryCache : nil
        let wantsEnvelope = attributes.contains(.envelope)
        let wantsBodyStructure = attributes.contains { $0 == .body || $0 == .bodyStructure }
        let cacheKey = (user: store.user.address, folder: folder.name, uidValidity: view.uidValidity)
        let setsSeen = !view.readOnly && attributes.contains { $0.setsSeen }
        var attributes = attributes
        if byUID && !attributes.contains(.uid) { attributes.insert(.uid, at: 0) }
        if condStoreEnabled && !attributes.contains(.modSeq) { attributes.append(.modSeq) }

        var markedSeen: Set<UInt32> = []
        if setsSeen {
            let unseen = uids.filter { view.message(uid: $0).map { !$0.flags.contains(.seen) } ?? false }
            if !unseen.isEmpty {
                let result = try await blocking { try store.store(folder, uids: unseen, .add, flags: .seen) }
                markedSeen = Set(result.changed)
                try await apply(result.snapshot, allowExpunge: false, silent: markedSeen, send: send)
            }
        }

        var start = 0
        while start < uids.count {
            let batch = Array(uids[start..<min(uids.count, start + Self.fetchBatchSize)])
            start += batch.count
            guard let current = selected else { return }
            let messages: [(UInt32, StoredMessage)] = batch.compactMap { uid in
                guard let message = current.message(uid: uid), let sequence = current.sequenceNumber(of: uid) else { return nil }
                return (sequence, message)
            }
            let wanted = attributes
            let addFlags = markedSeen
            let responses: [IMAPUntaggedResponse] = try await blocking {
                // A cache that fails is only slower: the files are read as without one.
                let cached = (try? summaryCache?.summaries(
                    user: cacheKey.user, folder: cacheKey.folder, uidValidity: cacheKey.uidValidity, uids: messages.map(\.1.uid))) ?? [:]
                var computed: [UInt32: ParsedSummary] = [:]
                var responses: [IMAPUntaggedResponse] = []
                for (sequence, message) in messages {
                    var data: IMAPMessageData?
                    if let summary = cached[message.uid], !wantsEnvelope || summary.envelope != nil,
                        !wantsBodyStructure || summary.bodyStructure != nil
                    {
                        data = IMAPMessageData(summary: summary)
                    } else if needsContent {
                        let bytes = headerOnly
                            ? try store.readMessagePrefix(message, in: folder, maxBytes: Self.envelopeHeaderBytes)
                            : try store.readMessage(message, in: folder)
                        guard let bytes else { continue }
                        data = IMAPMessageData(bytes: bytes, summary: cached[message.uid] ?? ParsedSummary())
                    }
                    var items = Self.fetchValues(wanted, message: message, data: &data)
                    // A file read for BODYSTRUCTURE gives the envelope too, for the next FETCH.
                    if summaryCache != nil && !headerOnly && data?.bytes.isEmpty == false { _ = data?.envelope() }
                    if summaryCache != nil, let summary = data?.summary, summary != cached[message.uid] {
                        computed[message.uid] = summary
                    }
                    if addFlags.contains(message.uid) && !wanted.contains(.flags) {
                        items.append(.flags(IMAPFlags.imapFlags(of: message)))
                    }
                    responses.append(.fetch(sequence, items))
                }
                if !computed.isEmpty {
                    try? summaryCache?.storeSummaries(
                        user: cacheKey.user, folder: cacheKey.folder, uidValidity: cacheKey.uidValidity, computed)
                }
                return responses
            }
            fetchedMessages += responses.count
            for response in responses { try await send(.untagged(response)) }
        }
    }

    static func fetchValues(_ attributes: [IMAPFetchAttribute], message: StoredMessage, data: inout IMAPMessageData?) -> [IMAPFetchValue] {
        var items: [IMAPFetchValue] = []
        items.reserveCapacity(attributes.count)
        for attribute in attributes {
            switch attribute {
            case .uid: items.append(.uid(message.uid))
            case .flags: items.append(.flags(IMAPFlags.imapFlags(of: message)))
            case .internalDate:
                items.append(.internalDate(IMAPDateTime(secondsSince1970: Int64(message.arrivalDate.timeIntervalSince1970))))
            case .rfc822Size: items.append(.rfc822Size(UInt64(message.virtualSize ?? message.size)))
            case .modSeq: items.append(.modSeq(message.modSeq))
            case .envelope:
                if let envelope = data?.envelope() { items.append(.envelope(envelope)) }
            case .body:
                if let body = data?.bodyStructure(extended: false) { items.append(.body(body)) }
            case .bodyStructure:
                if let body = data?.bodyStructure(extended: true) { items.append(.bodyStructure(body)) }
            case .rfc822:
                items.append(.rfc822(data?.section(IMAPSection.complete, partial: nil)))
            case .rfc822Header:
                items.append(.rfc822Header(data?.section(IMAPSection(part: [], .header), partial: nil)))
            case .rfc822Text:
                items.append(.rfc822Text(data?.section(IMAPSection(part: [], .text), partial: nil)))
            case .bodySection(let section, let partial, _):
                items.append(.bodySection(section, origin: partial?.offset, data?.section(section, partial: partial)))
            case .binary(let part, let partial, _):
                let bytes = try? data?.binary(part: part, partial: partial)
                items.append(.binary(part: part, origin: partial?.offset, bytes ?? nil))
            case .binarySize(let part):
                let bytes = (try? data?.binary(part: part, partial: nil)) ?? nil
                items.append(.binarySize(part: part, UInt64(bytes?.count ?? 0)))
            }
        }
        return items
    }
}

extension IMAPFetchAttribute {
    /// Needs the message file (not only the UID list).
    var needsContent: Bool {
        switch self {
        case .uid, .flags, .internalDate, .rfc822Size, .modSeq: return false
        default: return true
        }
    }

    /// ENVELOPE, BODY or BODYSTRUCTURE: what the summary cache holds.
    var isSummary: Bool {
        switch self {
        case .envelope, .body, .bodyStructure: return true
        default: return false
        }
    }

    /// RFC 9051 §6.4.5: fetching body text without PEEK sets `\Seen`.
    var setsSeen: Bool {
        switch self {
        case .rfc822, .rfc822Text: return true
        case .bodySection(_, _, let peek), .binary(_, _, let peek): return !peek
        default: return false
        }
    }
}
