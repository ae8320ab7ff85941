import Foundation
import MailMessage
import SharedTree

/// What SORT and THREAD (RFC 5256) need of one message: read once from its header.
struct IMAPSortFacts: Sendable {
    var sequence: UInt32
    var uid: UInt32
    var size: Int
    var arrival: Date
    /// The Date: field, or INTERNALDATE when it is missing or unreadable (RFC 5256 §3 DATE).
    var sent: Date
    var baseSubject: String
    /// addr-mailbox of the first From/To/Cc address, uppercased for comparison.
    var from: String
    var to: String
    var cc: String
    /// RFC 5957: the display name, else the mailbox.
    var displayFrom: String
    var displayTo: String
    var messageID: String?
    /// References, else the first message-id of In-Reply-To (RFC 5256 §2.2 step 1).
    var references: [String]

    init(sequence: UInt32, message: StoredMessage, header: [RawHeaderField]?) {
        self.sequence = sequence
        uid = message.uid
        size = message.virtualSize ?? message.size
        arrival = message.arrivalDate
        let fields = header ?? []
        let envelope = Envelope(fields: fields)
        // The thread facts (date, base subject, ids) are worked out as for the web-mail's conversations.
        let thread = ThreadFacts(
            number: message.uid, sequence: sequence, arrival: arrival, subject: envelope.subject.map(EncodedWords.decode), date: envelope.date,
            messageID: envelope.messageID, inReplyTo: fields.first("In-Reply-To"), references: fields.first("References"))
        sent = thread.sent
        baseSubject = thread.baseSubject
        func mailbox(_ list: [EnvelopeAddress]) -> String {
            guard let first = list.first(where: { $0.host != nil }), let box = first.mailbox else { return "" }
            return String(decoding: box, as: UTF8.self).uppercased()
        }
        func display(_ list: [EnvelopeAddress]) -> String {
            guard let first = list.first(where: { $0.host != nil }) else { return "" }
            if let name = first.name.map(EncodedWords.decode), !name.isEmpty { return name.uppercased() }
            let address = (first.mailbox.map { String(decoding: $0, as: UTF8.self) } ?? "") + "@" + (first.host.map { String(decoding: $0, as: UTF8.self) } ?? "")
            return address.uppercased()
        }
        from = mailbox(envelope.from)
        to = mailbox(envelope.to)
        cc = mailbox(envelope.cc)
        displayFrom = display(envelope.from)
        displayTo = display(envelope.to)
        messageID = thread.messageID
        references = thread.references
    }
}

enum IMAPSorting {
    /// RFC 5256 §3: by the criteria in order, ties broken by sequence number.
    static func sort(_ facts: [IMAPSortFacts], by criteria: [IMAPSortCriterion]) -> [IMAPSortFacts] {
        facts.sorted { a, b in
            for criterion in criteria {
                let order = compare(a, b, criterion.key)
                if order != .orderedSame {
                    return criterion.reverse ? order == .orderedDescending : order == .orderedAscending
                }
            }
            return a.sequence < b.sequence
        }
    }

    static func compare(_ a: IMAPSortFacts, _ b: IMAPSortFacts, _ key: IMAPSortKey) -> ComparisonResult {
        func order<T: Comparable>(_ x: T, _ y: T) -> ComparisonResult { x < y ? .orderedAscending : (x > y ? .orderedDescending : .orderedSame) }
        switch key {
        case .arrival: return order(a.arrival, b.arrival)
        case .date: return order(a.sent, b.sent)
        case .size: return order(a.size, b.size)
        case .subject: return order(a.baseSubject, b.baseSubject)
        case .from: return order(a.from, b.from)
        case .to: return order(a.to, b.to)
        case .cc: return order(a.cc, b.cc)
        case .displayFrom: return order(a.displayFrom, b.displayFrom)
        case .displayTo: return order(a.displayTo, b.displayTo)
        }
    }
}

/// RFC 5256 §2.1 and §2.2: ORDEREDSUBJECT and REFERENCES threading.
enum IMAPThreading {
    static func orderedSubject(_ facts: [IMAPSortFacts], number: (IMAPSortFacts) -> UInt32) -> [IMAPThreadNode] {
        let sorted = IMAPSorting.sort(facts, by: [IMAPSortCriterion(.subject), IMAPSortCriterion(.date)])
        var groups: [[IMAPSortFacts]] = []
        for fact in sorted {
            if let last = groups.last?.first, last.baseSubject == fact.baseSubject {
                groups[groups.count - 1].append(fact)
            } else {
                groups.append([fact])
            }
        }
        // Threads in the order of their first message's date, then sequence number.
        groups.sort { ($0[0].sent, $0[0].sequence) < ($1[0].sent, $1[0].sequence) }
        return groups.map { group in
            IMAPThreadNode(number(group[0]), group.dropFirst().map { IMAPThreadNode(number($0)) })
        }
    }

    /// REFERENCES threading is shared with the web-mail's conversation view (MailMessage).
    static func references(_ facts: [IMAPSortFacts], number: (IMAPSortFacts) -> UInt32) -> [IMAPThreadNode] {
        MessageThreading.references(facts.map { fact in
            ThreadFacts(number: number(fact), sequence: fact.sequence, sent: fact.sent, baseSubject: fact.baseSubject, messageID: fact.messageID, references: fact.references)
        })
    }
}
