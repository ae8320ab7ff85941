import Foundation

/// RFC 5256 §2.1: the base subject, for SORT SUBJECT and THREAD (compared case-insensitively:
/// the result is uppercased).
public enum BaseSubject {
    public static func extract(_ subject: String) -> String {
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
public enum MessageIDs {
    public static func parse(_ value: [UInt8]) -> [String] {
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

/// What REFERENCES threading (RFC 5256 §2.2) needs of one message. IMAP THREAD and the
/// web-mail's conversation view both build these and share `MessageThreading`.
public struct ThreadFacts: Sendable, Equatable {
    /// What the result names the message by (a UID or a sequence number).
    public var number: UInt32
    /// Arrival order within the folder: ties between equal dates are broken by it.
    public var sequence: UInt32
    /// The Date: field, or the internal date when it is missing or unreadable (RFC 5256 §3 DATE).
    public var sent: Date
    public var baseSubject: String
    public var messageID: String?
    /// References, else the first message-id of In-Reply-To (RFC 5256 §2.2 step 1).
    public var references: [String]

    public init(number: UInt32, sequence: UInt32, sent: Date, baseSubject: String, messageID: String?, references: [String]) {
        self.number = number
        self.sequence = sequence
        self.sent = sent
        self.baseSubject = baseSubject
        self.messageID = messageID
        self.references = references
    }

    /// From the raw header values (`subject` already decoded from RFC 2047 words).
    public init(number: UInt32, sequence: UInt32, arrival: Date, subject: String?, date: [UInt8]?, messageID: [UInt8]?, inReplyTo: [UInt8]?, references: [UInt8]?) {
        let referenceField = references.map(MessageIDs.parse) ?? []
        self.init(
            number: number, sequence: sequence,
            sent: date.flatMap { RFC5322DateTime.parse(String(decoding: $0, as: UTF8.self)) } ?? arrival,
            baseSubject: BaseSubject.extract(subject ?? ""), messageID: messageID.flatMap { MessageIDs.parse($0).first },
            references: referenceField.isEmpty ? Array((inReplyTo.map(MessageIDs.parse) ?? []).prefix(1)) : referenceField)
    }
}

/// One node of a thread tree: a message's number (nil: a missing parent that holds siblings)
/// and its replies.
public struct MessageThread: Sendable, Hashable {
    public var id: UInt32?
    public var children: [MessageThread]

    public init(_ id: UInt32?, _ children: [MessageThread] = []) {
        self.id = id
        self.children = children
    }
}

/// RFC 5256 §2.2: REFERENCES threading.
public enum MessageThreading {
    /// How far a parent chain is followed to rule out a loop; a link whose check would go
    /// further is not made (the message then starts a thread of its own), so hostile
    /// References can neither make a loop nor an unbounded chain walk.
    static let maxAncestorSteps = 1000

    final class Container {
        var message: ThreadFacts?
        weak var parent: Container?
        var children: [Container] = []
        /// The date a thread sorts by (step 6), filled in once the tree is final.
        var sortKey: (Date, UInt32) = (.distantPast, 0)

        init(_ message: ThreadFacts? = nil) {
            self.message = message
        }

        /// True when `self` is `other` or one of its ancestors, or when the chain is too
        /// long to tell (the caller then refuses the link).
        func mayBeAncestor(of other: Container) -> Bool {
            var current: Container? = other
            var steps = 0
            while let node = current {
                if node === self || steps >= MessageThreading.maxAncestorSteps { return true }
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
    }

    /// How deep a tree `references` returns may be. Below this depth a subtree becomes a
    /// thread of its own, so building, encoding and freeing the nested answer recurse a bounded
    /// number of times: a hostile chain of 50,000 messages each naming the next as its parent
    /// is otherwise 50,000 deep.
    static let maxTreeDepth = 500

    /// The threads of `facts`, oldest first, each a tree of replies in date order (cut into
    /// separate threads below `maxTreeDepth`).
    public static func references(_ facts: [ThreadFacts]) -> [MessageThread] {
        let (threads, all) = containers(facts)
        defer { dismantle(all + threads) }
        var cut: [Container] = []
        var stack = threads.map { ($0, 0) }
        while let (container, depth) = stack.popLast() {
            if depth + 1 >= maxTreeDepth {
                cut += container.children
                stack += container.children.map { ($0, 0) }
                container.children = []
            } else {
                stack += container.children.map { ($0, depth + 1) }
            }
        }
        func node(_ container: Container) -> MessageThread {
            MessageThread(container.message.map(\.number), container.children.map(node))
        }
        let roots = cut.isEmpty ? threads : (threads + cut).sorted { $0.sortKey < $1.sortKey }
        return roots.map(node)
    }

    /// The threads of `facts` as flat lists of message numbers (parents before replies), oldest
    /// thread first. Nothing here recurses, so a folder of any shape (a hostile chain of
    /// 100,000 replies) is safe; `references` builds a nested tree for IMAP.
    public static func groups(_ facts: [ThreadFacts]) -> [[UInt32]] {
        let (threads, all) = containers(facts)
        defer { dismantle(all + threads) }
        return threads.map { thread in
            var numbers: [UInt32] = []
            var stack = [thread]
            while let node = stack.popLast() {
                if let message = node.message { numbers.append(message.number) }
                stack.append(contentsOf: node.children.reversed())
            }
            return numbers
        }
    }

    /// Unlinks every container before they are freed, so freeing a deep tree does not recurse.
    private static func dismantle(_ containers: [Container]) {
        for container in containers { container.children = [] }
    }

    /// Steps 1 to 7: the thread roots in order, each with its tree, and every container made
    /// (to be dismantled by the caller).
    private static func containers(_ facts: [ThreadFacts]) -> (threads: [Container], all: [Container]) {
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
                if let previous, current.parent == nil, current !== previous, !current.mayBeAncestor(of: previous) {
                    current.setParent(previous)
                }
                previous = current
            }
            // Step 1C: the last reference is this message's parent.
            if let previous, previous !== own, !own.mayBeAncestor(of: previous) {
                own.setParent(previous)
            } else if own.parent != nil, fact.references.isEmpty {
                own.setParent(nil)
            }
        }
        // Step 2: the root set.
        var roots = all.filter { $0.parent == nil }
        // Step 3 happened implicitly (no table to discard). Step 4: prune empty containers,
        // children before their parents (without recursion): below the root, a container without
        // a message gives way to its children (none: it goes).
        var order: [Container] = []
        var stack = roots
        while let node = stack.popLast() {
            order.append(node)
            stack.append(contentsOf: node.children)
        }
        for node in order.reversed() {
            var kept: [Container] = []
            for child in node.children {
                if child.message == nil {
                    for grandchild in child.children { grandchild.parent = node }
                    kept += child.children
                } else {
                    kept.append(child)
                }
            }
            node.children = kept
        }
        // At the root, one without a message stays when it holds several threads.
        roots = roots.flatMap { root -> [Container] in
            guard root.message == nil, root.children.count <= 1 else { return [root] }
            return root.children
        }
        for root in roots { root.parent = nil }
        // Step 5: threads with the same base subject are gathered.
        var bySubject: [String: Int] = [:]
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
            guard let index = bySubject[key] else {
                bySubject[key] = merged.count
                merged.append(root)
                continue
            }
            let existing = merged[index]
            if existing.message == nil && root.message == nil {
                existing.children += root.children
                for child in root.children { child.parent = existing }
            } else if existing.message == nil {
                root.parent = existing
                existing.children.append(root)
            } else if root.message == nil {
                existing.parent = root
                root.children.append(existing)
                merged[index] = root
            } else {
                // Neither is a dummy: both become children of a new dummy.
                let dummy = Container()
                existing.parent = dummy
                root.parent = dummy
                dummy.children = [existing, root]
                merged[index] = dummy
            }
        }
        // Step 6: siblings by date; step 7: threads by their first date. Each container's
        // date is worked out once, children before parents.
        func assignSortKeys(_ container: Container) {
            var order: [Container] = []
            var stack = [container]
            while let node = stack.popLast() {
                order.append(node)
                stack.append(contentsOf: node.children)
            }
            for node in order.reversed() {
                if let message = node.message {
                    node.sortKey = (message.sent, message.sequence)
                } else {
                    node.sortKey = node.children.map(\.sortKey).min { $0 < $1 } ?? (.distantPast, 0)
                }
            }
        }
        for root in merged { assignSortKeys(root) }
        for container in all + merged {
            container.children.sort { $0.sortKey < $1.sortKey }
        }
        return (merged.sorted { $0.sortKey < $1.sortKey }, all)
    }
}
