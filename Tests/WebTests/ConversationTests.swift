import Foundation
import MailMessage
import SharedTree
import Testing

@testable import Web

/// Grouping a folder into conversations (`ConversationIndex` over MailMessage's REFERENCES
/// threading) and the list orders that need the header fields.
@Suite struct ConversationTests {
    /// A message of a test folder: its UID (it arrived at minute UID) and header.
    struct Mail {
        var uid: UInt32
        var header: String
    }

    static func index(_ mails: [Mail]) -> ConversationIndex {
        var fields: [UInt32: MessageSummary] = [:]
        for mail in mails { fields[mail.uid] = MessageSummary(header: Array((mail.header + "\r\n\r\n").utf8)) }
        return ConversationIndex(messages: mails.map { ($0.uid, Date(timeIntervalSince1970: TimeInterval($0.uid) * 60)) }, fields: fields)
    }

    /// The conversations as UID lists, newest conversation first.
    static func groups(_ mails: [Mail]) -> [[UInt32]] { index(mails).conversations.map(\.uids) }

    static func mail(_ uid: UInt32, id: String?, subject: String, from: String = "a@example.org", inReplyTo: String? = nil, references: String? = nil, date: String? = nil) -> Mail {
        var lines = ["From: \(from)", "Subject: \(subject)"]
        if let id { lines.append("Message-ID: <\(id)>") }
        if let inReplyTo { lines.append("In-Reply-To: \(inReplyTo)") }
        if let references { lines.append("References: \(references)") }
        if let date { lines.append("Date: \(date)") }
        return Mail(uid: uid, header: lines.joined(separator: "\r\n"))
    }

    @Test func repliesJoinTheirOriginalAndNewestConversationComesFirst() {
        let mails = [
            Self.mail(1, id: "a@x", subject: "Lunch", from: "Ann <ann@example.org>"),
            Self.mail(2, id: "b@x", subject: "Budget"),
            Self.mail(3, id: "c@x", subject: "Re: Lunch", from: "Bob <bob@example.org>", inReplyTo: "<a@x>"),
            Self.mail(4, id: "d@x", subject: "Re: Lunch", from: "Ann <ann@example.org>", references: "<a@x> <c@x>"),
        ]
        let index = Self.index(mails)
        #expect(index.conversations.map(\.uids) == [[1, 3, 4], [2]])
        let lunch = index.conversations[0]
        #expect(lunch.newest == 4)
        #expect(lunch.subject == "Lunch")
        #expect(lunch.participants == ["Ann", "Bob"])
        #expect(index.conversation(containing: 3) == lunch)
        #expect(index.conversation(containing: 2)?.uids == [2])
        #expect(index.conversation(containing: 99) == nil)
    }

    @Test func aReplyToAnOlderConversationMovesItToTheTop() {
        let mails = [
            Self.mail(1, id: "a@x", subject: "Old"),
            Self.mail(2, id: "b@x", subject: "Middle"),
            Self.mail(3, id: "c@x", subject: "Re: Old", references: "<a@x>"),
        ]
        #expect(Self.groups(mails) == [[1, 3], [2]])
    }

    @Test func missingParentsStillGroupSiblings() {
        // The original (<root@x>) is not in the folder: both replies name it.
        let mails = [
            Self.mail(1, id: "r1@x", subject: "Re: Plan", references: "<root@x>"),
            Self.mail(2, id: "other@x", subject: "Unrelated"),
            Self.mail(3, id: "r2@x", subject: "Re: Plan", references: "<root@x> <r1@x>"),
            Self.mail(4, id: "r3@x", subject: "Re: Plan (changed)", inReplyTo: "<root@x>"),
        ]
        #expect(Self.groups(mails) == [[1, 3, 4], [2]])
    }

    @Test func subjectFallbackGathersMessagesWithoutReferences() {
        let mails = [
            Self.mail(1, id: "a@x", subject: "Party"),
            Self.mail(2, id: nil, subject: "Something else"),
            Self.mail(3, id: "c@x", subject: "RE: [list] Party"),
            Self.mail(4, id: "d@x", subject: "Fwd: Party (fwd)"),
            // An empty subject never gathers.
            Self.mail(5, id: "e@x", subject: ""),
            Self.mail(6, id: "f@x", subject: "Re: "),
        ]
        #expect(Self.groups(mails) == [[6], [5], [1, 3, 4], [2]])
    }

    @Test func cyclesAndBadReferencesDoNotLoopOrLoseMessages() {
        let mails = [
            // Each names the other as its parent.
            Self.mail(1, id: "a@x", subject: "One", references: "<b@x>"),
            Self.mail(2, id: "b@x", subject: "Two", references: "<a@x>"),
            // Names itself, has junk and an unterminated id.
            Self.mail(3, id: "c@x", subject: "Three", references: "<c@x> junk <<> <d@x"),
            // The same Message-ID again: a message of its own.
            Self.mail(4, id: "a@x", subject: "Four"),
            // A long chain through ids that never arrived.
            Self.mail(5, id: "e@x", subject: "Five", references: (0..<500).map { "<chain\($0)@x>" }.joined(separator: " ")),
            Self.mail(6, id: "f@x", subject: "Six", references: "<chain499@x>"),
        ]
        let index = Self.index(mails)
        let all = index.conversations.flatMap(\.uids).sorted()
        #expect(all == [1, 2, 3, 4, 5, 6])
        #expect(index.conversation(containing: 1)?.uids == [1, 2])
        #expect(index.conversation(containing: 3)?.uids == [3])
        #expect(index.conversation(containing: 4)?.uids == [4])
        #expect(index.conversation(containing: 6)?.uids == [5, 6])
    }

    @Test func messagesInAConversationAreInDateOrder() {
        // The reply claims an earlier Date: than its original: reading order follows the dates;
        // an unreadable Date: counts as the arrival date (1970 here, so first).
        let mails = [
            Self.mail(1, id: "a@x", subject: "Q", date: "Mon, 7 Dec 2026 10:00:00 +0000"),
            Self.mail(2, id: "b@x", subject: "Re: Q", references: "<a@x>", date: "Mon, 7 Dec 2026 09:00:00 +0000"),
            Self.mail(3, id: "c@x", subject: "Re: Q", references: "<a@x>", date: "garbage"),
        ]
        #expect(Self.groups(mails) == [[3, 2, 1]])
    }

    @Test func twentyThousandMessagesGroupIntoTheirConversations() {
        // 20,000 messages in 2,000 conversations of ten, each reply naming the previous one.
        var mails: [Mail] = []
        for uid in 1...UInt32(20_000) {
            let thread = (uid - 1) % 2000
            let step = (uid - 1) / 2000
            let references = step == 0 ? nil : (0..<step).map { "<t\(thread)-\($0)@x>" }.joined(separator: " ")
            mails.append(Self.mail(uid, id: "t\(thread)-\(step)@x", subject: step == 0 ? "Topic \(thread)" : "Re: Topic \(thread)", references: references))
        }
        // (Speed is measured by bench/web_bench.py, not here: this machine is shared.)
        let index = Self.index(mails)
        #expect(index.conversations.count == 2000)
        #expect(index.conversations.first?.newest == 20_000)
        #expect(index.conversations.first?.uids == (0..<UInt32(10)).map { 2000 + 2000 * $0 })
        #expect(index.conversations.allSatisfy { $0.uids.count == 10 })
    }

    @Test func sentDatesParseAndMissingOnesAreNil() {
        let summary = MessageSummary(header: Array("Subject: x\r\nDate: Mon, 7 Dec 2026 10:00:00 +0100\r\nIn-Reply-To: <p@x> <q@x>\r\n\r\n".utf8))
        #expect(summary.sent == Date(timeIntervalSince1970: 1_796_637_600 - 3600))
        #expect(summary.references == ["p@x"])
        #expect(MessageSummary(header: Array("Subject: x\r\nDate: soon\r\n\r\n".utf8)).sent == nil)
    }

    @Test func dateOrderUsesTheDateFieldThenArrival() throws {
        let root = NSTemporaryDirectory() + "svcpkg-order-\(UUID().uuidString)"
        try SharedTreeLayout(root: root).createSkeleton(createRoot: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let store = MailStore(layout: SharedTreeLayout(root: root), user: try MailUser(address: "alice@example.org"), node: "test")
        for _ in 1...4 { _ = try store.deliver(Array("Subject: x\r\n\r\nx\r\n".utf8)) }
        let messages = try store.sync(.inbox).messages
        #expect(messages.map(\.uid) == [1, 2, 3, 4])
        let fields: [UInt32: MessageSummary] = [
            1: MessageSummary(subject: "b", from: "Zed", sent: Date(timeIntervalSince1970: 3000)),
            2: MessageSummary(subject: "a", from: "amy", sent: Date(timeIntervalSince1970: 1000)),
            3: MessageSummary(subject: "Re: c", from: "Bob", sent: Date(timeIntervalSince1970: 2000)),
            // 4: no Date: its arrival (now) is the newest.
        ]
        #expect(WebMail.ListOrder.date.sorted(messages, fields: fields) == [4, 1, 3, 2])
        #expect(WebMail.ListOrder.sender.sorted(messages, fields: fields) == [4, 2, 3, 1])
        #expect(WebMail.ListOrder.subject.sorted(messages, fields: fields) == [4, 2, 1, 3])
        #expect(WebMail.ListOrder.newest.sorted(messages, fields: fields) == [4, 3, 2, 1])
    }

    @Test func listViewRoundTripsThroughLinks() {
        let view = WebMail.ListView(query: WebForm.urlEncoded("order=date&reverse=1"))
        #expect(view == WebMail.ListView(order: .date, reverse: true, conversations: false))
        #expect(view.queryText(hasQuery: true) == "&order=date&reverse=1")
        let conversations = WebMail.ListView(query: WebForm.urlEncoded("view=conversations&order=sender"))
        #expect(conversations.conversations && conversations.queryText(hasQuery: false) == "?view=conversations")
        #expect(WebMail.ListView(query: WebForm.urlEncoded("")).queryText(hasQuery: true) == "")
    }
}
