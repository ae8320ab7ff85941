import Foundation
import MailMessage

/// A folder's messages grouped into conversations: the REFERENCES threads of RFC 5256 §2.2
/// (Message-ID, In-Reply-To and References, then threads with the same base subject gathered),
/// worked out by `MessageThreading` in MailMessage, the code IMAP THREAD=REFERENCES runs.
/// Depends only on the UIDs and header fields, not on flags, so it is kept per folder state.
struct ConversationIndex: Sendable {
    struct Conversation: Sendable, Equatable {
        /// The messages in reading order: by their Date: field (arrival date when missing), then UID.
        var uids: [UInt32]
        /// The newest message by arrival (the highest UID): conversations are ordered by it.
        var newest: UInt32
        /// The subject of its first message.
        var subject: String
        /// Distinct senders in reading order, at most `maxParticipants`.
        var participants: [String]
    }

    static let maxParticipants = 4

    /// Newest conversation first.
    var conversations: [Conversation]
    /// UID → index in `conversations`.
    var position: [UInt32: Int]

    /// `messages` are the folder's (UID, arrival date) pairs; `fields` its header facts by UID
    /// (a message without them stands alone, with its arrival date).
    init(messages: [(uid: UInt32, arrival: Date)], fields: [UInt32: MessageSummary]) {
        var facts: [ThreadFacts] = []
        facts.reserveCapacity(messages.count)
        var sent: [UInt32: Date] = [:]
        sent.reserveCapacity(messages.count)
        for message in messages {
            let summary = fields[message.uid]
            let date = summary?.sent ?? message.arrival
            sent[message.uid] = date
            facts.append(
                ThreadFacts(
                    number: message.uid, sequence: message.uid, sent: date, baseSubject: BaseSubject.extract(summary?.subject ?? ""),
                    messageID: summary?.messageID, references: summary?.references ?? []))
        }
        var conversations: [Conversation] = []
        conversations.reserveCapacity(messages.count)
        for thread in MessageThreading.groups(facts) {
            let uids = thread.sorted { (sent[$0] ?? .distantPast, $0) < (sent[$1] ?? .distantPast, $1) }
            guard let first = uids.first, let newest = uids.max() else { continue }
            var participants: [String] = []
            for uid in uids where participants.count < Self.maxParticipants {
                let from = fields[uid]?.from ?? ""
                if !from.isEmpty, !participants.contains(from) { participants.append(from) }
            }
            conversations.append(Conversation(uids: uids, newest: newest, subject: fields[first]?.subject ?? "", participants: participants))
        }
        conversations.sort { $0.newest > $1.newest }
        var position: [UInt32: Int] = [:]
        position.reserveCapacity(messages.count)
        for (index, conversation) in conversations.enumerated() {
            for uid in conversation.uids { position[uid] = index }
        }
        self.conversations = conversations
        self.position = position
    }

    func conversation(containing uid: UInt32) -> Conversation? {
        position[uid].map { conversations[$0] }
    }
}
