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
        sent = envelope.date.flatMap { RFC5322DateTime.parse(String(decoding: $0, as: UTF8.self)) } ?? arrival
        baseSubject = BaseSubject.extract(envelope.subject.map(EncodedWords.decode) ?? "")
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
        messageID = envelope.messageID.flatMap { MessageIDs.parse($0).first }
        let referenceField = fields.first("References").map(MessageIDs.parse) ?? []
        references = referenceField.isEmpty ? Array((fields.first("In-Reply-To").map(MessageIDs.parse) ?? []).prefix(1)) : referenceField
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

/// RFC 5256 §2.1: the base subject, for SORT SUBJECT and THREAD (compared case-insensitively:
/// the result is uppercased).
enum BaseSubject {
    static func extract(_ subject: String) -> String {
        var text = subject.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }).joined(separator: " ")
        var changed = true
        while changed {
            changed = false
            // (2) trailing "(fwd)" and whitespace.
            while true {
                let trimmed = text.trimmingCharacters(in: .whitespaces)
                if trimmed.lowercased().hasSuffix("(fwd)") {
                    text = String(trimmed.dropLast(5))
                } else {
                    text = trimmed
                    break
                }
            }
            // (3) leading blobs and "re:"/"fw:"/"fwd:" (with an optional blob before the colon).
            while true {
                if let rest = stripRefwd(text) {
                    text = rest
                    changed = true
                    continue
                }
                if let rest = stripBlob(text), !rest.isEmpty {
                    text = rest
                    changed = true
                    continue
                }
                break
            }
            // (5) "[fwd: ... ]".
            let lower = text.lowercased()
            if lower.hasPrefix("[fwd:") && text.hasSuffix("]") {
                text = String(text.dropFirst(5).dropLast()).trimmingCharacters(in: .whitespaces)
                changed = true
            }
        }
        return text.uppercased()
    }

    /// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`.
    private static func stripRefwd(_ text: String) -> String? {
        let lower = text.lowercased()
        var index: String.Index
        if lower.hasPrefix("re") {
            index = lower.index(lower.startIndex, offsetBy: 2)
        } else if lower.hasPrefix("fwd") {
            index = lower.index(lower.startIndex, offsetBy: 3)
        } else if lower.hasPrefix("fw") {
            index = lower.index(lower.startIndex, offsetBy: 2)
        } else {
            return nil
        }
        var rest = String(text[index...]).drop { $0 == " " || $0 == "\t" }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            let blob = rest[rest.index(after: rest.startIndex)..<close]
            if !blob.contains("[") { rest = rest[rest.index(after: close)...] }
        }
        guard rest.hasPrefix(":") else { return nil }
        index = rest.index(after: rest.startIndex)
        return String(rest[index...]).trimmingCharacters(in: .whitespaces)
    }

    /// `subj-blob = "[" *BLOBCHAR "]" *WSP`.
    private static func stripBlob(_ text: String) -> String? {
        guard text.hasPrefix("["), let close = text.firstIndex(of: "]") else { return nil }
        let blob = text[text.index(after: text.startIndex)..<close]
        guard !blob.contains("[") else { return nil }
        return String(text[text.index(after: close)...]).trimmingCharacters(in: .whitespaces)
    }
}

/// Message-IDs in a References or In-Reply-To field: the `<...>` tokens, in order.
enum MessageIDs {
    static func parse(_ value: [UInt8]) -> [String] {
        var ids: [String] = []
        var start: Int?
        for (index, byte) in value.enumerated() {
            if byte == UInt8(ascii: "<") {
                start = index
            } else if byte == UInt8(ascii: ">"), let open = start {
                let id = String(decoding: value[(open + 1)..<index], as: UTF8.self).trimmingCharacters(in: .whitespaces)
                if !id.isEmpty && !id.contains(" ") { ids.append(id) }
                start = nil
            }
            if ids.count >= 1000 { break }
        }
        return ids
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

    final class Container {
        var message: IMAPSortFacts?
        weak var parent: Container?
        var children: [Container] = []

        init(_ message: IMAPSortFacts? = nil) {
            self.message = message
        }

        func isAncestor(of other: Container) -> Bool {
            var current: Container? = other
            var steps = 0
            while let node = current, steps < 10_000 {
                if node === self { return true }
                current = node.parent
                steps += 1
            }
            return false
        }

        func setParent(_ newParent: Container?) {
            if let old = parent { old.children.removeAll { $0 === self } }
            parent = newParent
            newParent?.children.append(self)
        }

        /// The date a thread sorts by: its own message's, else its first child's (§2.2 step 6).
        var sortDate: (Date, UInt32) {
            if let message { return (message.sent, message.sequence) }
            return children.map(\.sortDate).min { $0 < $1 } ?? (.distantPast, 0)
        }
    }

    static func references(_ facts: [IMAPSortFacts], number: (IMAPSortFacts) -> UInt32) -> [IMAPThreadNode] {
        var table: [String: Container] = [:]
        var all: [Container] = []
        func container(for id: String) -> Container {
            if let existing = table[id] { return existing }
            let created = Container()
            table[id] = created
            all.append(created)
            return created
        }
        for fact in facts.sorted(by: { $0.sequence < $1.sequence }) {
            // Step 1A: a message without a Message-ID, or with one already used, stands alone.
            let own: Container
            if let id = fact.messageID, let existing = table[id], existing.message == nil {
                own = existing
                own.message = fact
            } else if let id = fact.messageID, table[id] == nil {
                own = container(for: id)
                own.message = fact
            } else {
                own = Container(fact)
                all.append(own)
            }
            // Step 1B: link the references in order, never making a loop or re-parenting.
            var previous: Container?
            for reference in fact.references {
                let current = container(for: reference)
                if let previous, current.parent == nil, !current.isAncestor(of: previous), current !== previous {
                    current.setParent(previous)
                }
                previous = current
            }
            // Step 1C: the last reference is this message's parent.
            if let previous, previous !== own, !own.isAncestor(of: previous) {
                own.setParent(previous)
            } else if own.parent != nil, fact.references.isEmpty {
                own.setParent(nil)
            }
        }
        // Step 2: the root set.
        var roots = all.filter { $0.parent == nil }
        // Step 3 happened implicitly (no table to discard). Step 4: prune empty containers.
        func prune(_ nodes: [Container], atRoot: Bool) -> [Container] {
            var result: [Container] = []
            for node in nodes {
                node.children = prune(node.children, atRoot: false)
                if node.message == nil {
                    if node.children.isEmpty { continue }
                    if !atRoot || node.children.count == 1 {
                        for child in node.children { child.parent = node.parent }
                        result += node.children
                        continue
                    }
                }
                result.append(node)
            }
            return result
        }
        roots = prune(roots, atRoot: true)
        for root in roots { root.parent = nil }
        // Step 5: threads with the same base subject are gathered.
        var bySubject: [String: Container] = [:]
        func subject(_ node: Container) -> String? {
            if let message = node.message { return message.baseSubject }
            return node.children.compactMap(\.message).first?.baseSubject
        }
        var merged: [Container] = []
        for root in roots {
            guard let key = subject(root), !key.isEmpty else {
                merged.append(root)
                continue
            }
            guard let existing = bySubject[key] else {
                bySubject[key] = root
                merged.append(root)
                continue
            }
            if existing.message == nil && root.message == nil {
                existing.children += root.children
                for child in root.children { child.parent = existing }
            } else if existing.message == nil {
                root.parent = existing
                existing.children.append(root)
            } else if root.message == nil {
                existing.parent = root
                root.children.append(existing)
                if let index = merged.firstIndex(where: { $0 === existing }) { merged[index] = root }
                bySubject[key] = root
            } else {
                // Neither is a dummy: both become children of a new dummy.
                let dummy = Container()
                existing.parent = dummy
                root.parent = dummy
                dummy.children = [existing, root]
                if let index = merged.firstIndex(where: { $0 === existing }) { merged[index] = dummy }
                bySubject[key] = dummy
            }
        }
        // Step 6: siblings by date; step 7: threads by their first date.
        func node(_ container: Container) -> IMAPThreadNode {
            let children = container.children.sorted { $0.sortDate < $1.sortDate }.map(node)
            return IMAPThreadNode(container.message.map(number), children)
        }
        return merged.sorted { $0.sortDate < $1.sortDate }.map(node)
    }
}

/// Date and time of an RFC 5322 `Date:` field (obsolete forms tolerated); nil when unreadable.
enum RFC5322DateTime {
    static func parse(_ text: String) -> Date? {
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," || $0 == "\r" || $0 == "\n" }).map(String.init)
        if let first = words.first, Int(first) == nil { words.removeFirst() }
        guard words.count >= 4, let days = RFC5322DateDay.parse(words[0...2].joined(separator: " ")) else { return nil }
        let time = words[3].split(separator: ":").compactMap { Int($0) }
        guard time.count >= 2, (0..<24).contains(time[0]), (0..<60).contains(time[1]) else { return nil }
        var seconds = days * 86400 + time[0] * 3600 + time[1] * 60 + (time.count > 2 ? min(60, max(0, time[2])) : 0)
        if words.count > 4 {
            let zone = words[4]
            if let sign = zone.first, sign == "+" || sign == "-", zone.count == 5, let value = Int(zone.dropFirst()) {
                let offset = (value / 100) * 3600 + (value % 100) * 60
                seconds -= sign == "+" ? offset : -offset
            }
        }
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}
