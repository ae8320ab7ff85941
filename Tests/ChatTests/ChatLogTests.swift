import Foundation
import SharedTree
import Testing

@testable import Chat

@Suite struct ChatLogTests {
    func user(_ nick: String, node: String = "n1") -> ChatUser {
        ChatUser(nick: nick, userHost: "\(nick)@example.org", account: "\(nick)@example.org", realName: nick, node: node, pid: 1)
    }

    @Test func concurrentWritersOnTwoNodesGetOneOrder() throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let stores = [cluster.hub("n1").store, cluster.hub("n2").store]
        for (index, store) in stores.enumerated() {
            guard case .joined = try store.join("#busy", key: nil, user: user("u\(index)", node: store.node)) else {
                Issue.record("join failed")
                return
            }
        }
        let writers = 4
        let perWriter = 40
        DispatchQueue.concurrentPerform(iterations: writers) { writer in
            let store = stores[writer % 2]
            let sender = user("u\(writer % 2)", node: store.node)
            for number in 0..<perWriter {
                _ = try? store.post(.privmsg, to: "#busy", user: sender, text: "w\(writer) #\(number)", tags: nil)
            }
        }
        let log = stores[0].channelLog("#busy")
        let state = try #require(try log.readState())
        let events = try log.dayFiles().flatMap { try log.events(inDayFile: $0) }
        #expect(events.count == 2 + writers * perWriter)
        #expect(events.map(\.seq) == Array(1...UInt64(events.count)))
        #expect(state.seq == UInt64(events.count))
        // Each writer's own lines are in the order it wrote them.
        for writer in 0..<writers {
            let mine = events.compactMap(\.text).filter { $0.hasPrefix("w\(writer) ") }
            #expect(mine == (0..<perWriter).map { "w\(writer) #\($0)" })
        }
    }

    @Test func aWriterThatDiedBeforeItsStateWriteIsRecovered() throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let store = cluster.hub("n1").store
        _ = try store.join("#c", key: nil, user: user("alice"))
        _ = try store.post(.privmsg, to: "#c", user: user("alice"), text: "one", tags: nil)
        let log = store.channelLog("#c")
        let before = try #require(try log.readState())
        let file = try #require(before.file)
        // A dead writer's complete line (a JOIN) and then a torn one, past the committed offset.
        var lost = user("bob").event(.join, target: "#c")
        lost.seq = before.seq + 1
        lost.time = ServerTime.nowMilliseconds()
        let encoder = JSONEncoder()
        let handle = try #require(FileHandle(forWritingAtPath: log.directory + "/" + file))
        try handle.seekToEnd()
        try handle.write(contentsOf: try encoder.encode(lost) + Data("\n{\"seq\":99,\"ti".utf8))
        try handle.close()

        _ = try store.post(.privmsg, to: "#c", user: user("bob"), text: "two", tags: nil)
        let events = try log.events(inDayFile: file)
        #expect(events.map(\.seq) == [1, 2, 3, 4])
        #expect(events.map(\.kind) == [.join, .privmsg, .join, .privmsg])
        let after = try #require(try log.readState())
        #expect(after.channel?.member("bob") != nil)
        #expect(after.offset == UInt64((try Data(contentsOf: URL(fileURLWithPath: log.directory + "/" + file))).count))
    }

    @Test func readersFollowCommittedLinesOnly() throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let store = cluster.hub("n1").store
        _ = try store.join("#r", key: nil, user: user("alice"))
        let log = store.channelLog("#r")
        var cursor = ChatLogCursor(seq: 0, file: nil, offset: 0)
        var seen: [String] = []
        for round in 0..<3 {
            _ = try store.post(.privmsg, to: "#r", user: user("alice"), text: "m\(round)", tags: nil)
            let state = try #require(try log.readState())
            let (events, next) = try log.readNew(after: cursor, state: state)
            seen += events.map { $0.text ?? $0.kind.rawValue }
            cursor = next
        }
        #expect(seen == ["alice", "m0", "m1", "m2"])
        // Nothing new: nothing read.
        let state = try #require(try log.readState())
        #expect(try log.readNew(after: cursor, state: state).events.isEmpty)
    }

    @Test func aGroupCommitKeepsEachMessagesOutcome() throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let store = cluster.hub("n1").store
        _ = try store.join("#g", key: nil, user: user("alice"))
        let posts: [ChatStore.Post] = [
            ChatStore.Post(kind: .privmsg, user: user("alice"), text: "first", tags: nil),
            ChatStore.Post(kind: .privmsg, user: user("mallory"), text: "outsider", tags: nil),
            ChatStore.Post(kind: .notice, user: user("alice"), text: "second", tags: ["+typing": "done"]),
        ]
        let outcomes = store.post(posts, to: "#g")
        #expect(try outcomes[0].get().seq == 2)
        #expect(throws: ChatStoreError.self) { try outcomes[1].get() }
        #expect(try outcomes[2].get().seq == 3)
        let log = store.channelLog("#g")
        let texts = try log.dayFiles().flatMap { try log.events(inDayFile: $0) }.compactMap(\.text)
        #expect(texts == ["alice", "first", "second"])
        #expect(store.post(posts, to: "#nowhere").allSatisfy { (try? $0.get()) == nil })
    }

    @Test func refusalsWriteNothing() throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let store = cluster.hub("n1").store
        _ = try store.join("#q", key: nil, user: user("alice"))
        #expect(throws: ChatStoreError.self) { try store.post(.privmsg, to: "#q", user: user("mallory"), text: "spam", tags: nil) }
        #expect(throws: ChatStoreError.self) { try store.setTopic("#q", user: user("mallory"), topic: "x") }
        #expect(throws: ChatStoreError.self) { try store.part("#nowhere", user: user("alice"), reason: nil) }
        #expect(try store.channelLog("#q").readState()?.seq == 1)
    }
}
