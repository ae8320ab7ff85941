import Foundation
import Testing

@testable import MailMessage

/// REFERENCES threading (RFC 5256 §2.2) as IMAP THREAD and web-mail's conversations use it,
/// on hostile shapes: very deep chains either way round, and a long chain's bound.
@Suite struct MessageThreadingTests {
    static func fact(_ number: UInt32, id: String?, references: [String] = [], subject: String = "") -> ThreadFacts {
        ThreadFacts(
            number: number, sequence: number, sent: Date(timeIntervalSince1970: TimeInterval(number)), baseSubject: subject,
            messageID: id, references: references)
    }

    @Test func treeAndGroupsAgree() {
        let facts = [
            Self.fact(1, id: "a", subject: "X"), Self.fact(2, id: "b", references: ["a"], subject: "X"),
            Self.fact(3, id: "c", references: ["missing"], subject: "Y"), Self.fact(4, id: "d", references: ["missing"], subject: "Z"),
            Self.fact(5, id: "e", references: ["a", "b"], subject: "X"),
        ]
        #expect(MessageThreading.references(facts) == [MessageThread(1, [MessageThread(2, [MessageThread(5)])]), MessageThread(nil, [MessageThread(3), MessageThread(4)])])
        #expect(MessageThreading.groups(facts) == [[1, 2, 5], [3, 4]])
    }

    @Test func aChainOfFiftyThousandRepliesNeitherRecursesNorLoopsForever() {
        // Each message answers the one before it.
        let forward = (1...UInt32(50_000)).map { Self.fact($0, id: "m\($0)", references: $0 == 1 ? [] : ["m\($0 - 1)"]) }
        let groups = MessageThreading.groups(forward)
        #expect(groups.flatMap { $0 }.sorted() == Array(1...UInt32(50_000)))
        // Past the ancestor bound a reply starts a thread of its own; a subject would gather them.
        let segment = MessageThreading.maxAncestorSteps + 1
        #expect(groups.count == (50_000 + segment - 1) / segment)
        #expect(groups.allSatisfy { $0.count <= segment })
        #expect(groups[0] == Array(1...UInt32(segment)))
        // Each message is answered by the one after it (the chain grows upwards through
        // placeholders): 50,000 deep, pruned and freed without recursion.
        let backward = (1...UInt32(50_000)).map { Self.fact($0, id: "n\($0)", references: ["n\($0 + 1)"]) }
        let deep = MessageThreading.groups(backward)
        #expect(deep.count == 1 && deep[0].count == 50_000)
        #expect(deep[0].first == 50_000 && deep[0].last == 1)
        // IMAP's nested answer for the same chain: cut into trees of bounded depth, every
        // message once, each piece a run of the chain in its order.
        let trees = MessageThreading.references(backward)
        func depthAndNumbers(_ tree: MessageThread) -> (Int, [UInt32]) {
            var deepest = 0
            var numbers: [UInt32] = []
            var stack = [(tree, 1)]
            while let (node, depth) = stack.popLast() {
                deepest = max(deepest, depth)
                if let id = node.id { numbers.append(id) }
                stack += node.children.map { ($0, depth + 1) }
            }
            return (deepest, numbers)
        }
        let measured = trees.map(depthAndNumbers)
        #expect(measured.allSatisfy { $0.0 <= MessageThreading.maxTreeDepth })
        #expect(measured.flatMap(\.1).sorted() == Array(1...UInt32(50_000)))
        #expect(measured.allSatisfy { piece in zip(piece.1, piece.1.dropFirst()).allSatisfy { $0 == $1 + 1 } })
    }
}
