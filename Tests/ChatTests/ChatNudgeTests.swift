import NIOCore
import Testing

@testable import Chat

@Suite struct ChatNudgeTests {
    @Test func aNudgeDeliversWithoutWaitingForAPoll() async throws {
        let cluster = try ChatCluster()
        defer { cluster.shutdown() }
        let n1 = try await ChatNudge.bind(host: "127.0.0.1", port: 0, hub: cluster.hub("n1"))
        let n2 = try await ChatNudge.bind(host: "127.0.0.1", port: 0, hub: cluster.hub("n2"))
        n1.setPeers([try #require(n2.localAddress)])
        n2.setPeers([try #require(n1.localAddress)])
        cluster.hub("n1").attach(n1)
        cluster.hub("n2").attach(n2)
        let (alice, bob) = await TestClient.aliceAndBob(cluster, joining: "#fast")
        // Neither hub's poll loop runs here: only the nudge can bring the lines over.
        #expect(await alice.delivered(within: .seconds(2)) == [":bob!bob@example.org JOIN #fast"])
        #expect(await alice.send("PRIVMSG #fast :quick") == [])
        #expect(await bob.delivered(within: .seconds(2)) == [":alice!alice@example.org PRIVMSG #fast :quick"])
        #expect(await alice.send("PRIVMSG bob :direct") == [])
        #expect(await bob.delivered(within: .seconds(2)) == [":alice!alice@example.org PRIVMSG bob :direct"])
        await alice.finish()
        await bob.finish()
        await n1.close()
        await n2.close()
    }

    struct DatagramCase: Sendable, CustomStringConvertible {
        var text: String
        var key: String?
        var description: String { text }
    }

    static let datagrams: [DatagramCase] = [
        DatagramCase(text: "svcpkg-chat1 c:23666173", key: "c:23666173"),
        DatagramCase(text: "svcpkg-chat1 u:626f62", key: "u:626f62"),
        DatagramCase(text: "svcpkg-chat1 c:../../etc", key: nil),
        DatagramCase(text: "svcpkg-chat1 x:2366", key: nil),
        DatagramCase(text: "svcpkg-chat1 c:", key: nil),
        DatagramCase(text: "svcpkg-chat1 c:23ABCD", key: nil),
        DatagramCase(text: "hello", key: nil),
        DatagramCase(text: "svcpkg-chat1 c:" + String(repeating: "ab", count: 51), key: nil),
    ]

    @Test(arguments: datagrams)
    func onlyWellFormedNudgesCount(_ item: DatagramCase) {
        #expect(ChatNudge.key(in: ByteBuffer(string: item.text)) == item.key)
    }
}
