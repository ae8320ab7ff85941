import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import SharedTree
import Testing

@testable import Chat

/// Passwords for the transcript tests: `<address>` logs in with `pw-<address>`. The real
/// check (LDAP) is the node's; the e2e tests run it.
struct TableAuthenticator: ChatAuthenticator {
    func authenticate(user: String, password: String, remoteAddress: String) async -> AuthenticationResult {
        password == "pw-\(user)" ? .ok(account: user) : .invalid
    }
}

/// A shared tree in a temporary directory and one hub per "node" on it, all in this process
/// (each hub has its own node name, so they see each other as other nodes).
final class ChatCluster: Sendable {
    let root: String
    let threads: NIOThreadPool
    let hubs: [String: ChatHub]
    static let logger: Logger = {
        var logger = Logger(label: "ChatTests")
        logger.logLevel = .critical
        return logger
    }()

    init(nodes: [String] = ["n1", "n2"]) throws {
        var template = Array("/tmp/chat-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SharedTreeError.io(operation: "mkdtemp", path: "/tmp", code: errno) }
        root = String(cString: made)
        let layout = SharedTreeLayout(root: root)
        try layout.createSkeleton()
        threads = NIOThreadPool(numberOfThreads: 4)
        threads.start()
        var hubs: [String: ChatHub] = [:]
        for node in nodes {
            try HeartbeatStore.write(NodeHeartbeat(node: node, pid: getpid(), state: "serving", version: "test", host: "localhost"), layout: layout)
            let store = ChatStore(root: layout.chatDirectory, node: node, lockOptions: LockOptions(staleTimeout: 30, timeout: 10))
            hubs[node] = ChatHub(store: store, sharedRoot: root, threads: threads, logger: Self.logger)
        }
        self.hubs = hubs
    }

    func hub(_ node: String) -> ChatHub {
        guard let hub = hubs[node] else { preconditionFailure("no hub \(node) in the test cluster") }
        return hub
    }

    func shutdown() {
        try? threads.syncShutdownGracefully()
        try? FileManager.default.removeItem(atPath: root)
    }
}

/// One IRC client connected to a hub, driven line by line as the NIO edge would.
final class TestClient: @unchecked Sendable {
    var driver: IRCConnectionDriver
    let received = NIOLockedValueBox<[ChatDelivery]>([])
    let collector: Task<Void, Never>
    var clock: Int64 = 1_000_000

    init(_ cluster: ChatCluster, node: String, configure: (inout IRCSession.Configuration) -> Void = { _ in }) {
        let hub = cluster.hub(node)
        let (id, deliveries) = hub.connect()
        var configuration = IRCSession.Configuration(serverName: "irc.\(node)", node: node, pid: getpid())
        configuration.allowPlaintextAuth = true
        configure(&configuration)
        driver = IRCConnectionDriver(
            hub: hub, authenticator: TableAuthenticator(), session: IRCSession(configuration: configuration), clientID: id,
            remoteAddress: "192.0.2.1")
        let box = received
        collector = Task {
            for await delivery in deliveries { box.withLockedValue { $0.append(delivery) } }
        }
    }

    /// Sends one line (CR LF added) and returns the replies, with volatile tag values
    /// (time, msgid) replaced by placeholders.
    func send(_ line: String) async -> [String] {
        clock += 1000
        let output = await driver.received(Array((line + "\r\n").utf8), now: clock)
        return Self.normalize(output.messages)
    }

    func sendRaw(_ bytes: [UInt8]) async -> [String] {
        clock += 1000
        return Self.normalize(await driver.received(bytes, now: clock).messages)
    }

    /// Lets the hub poll the logs, then returns what the client was sent from them.
    func drain() async -> [String] {
        await driver.hub.pollAll()
        try? await Task.sleep(for: .milliseconds(30))
        return await take()
    }

    /// What the hub delivered so far, without polling (waits up to `timeout` for something).
    func delivered(within timeout: Duration) async -> [String] {
        let deadline = ContinuousClock.now + timeout
        while received.withLockedValue({ $0.isEmpty }) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return await take()
    }

    func take() async -> [String] {
        let deliveries = received.withLockedValue { list in
            defer { list.removeAll() }
            return list
        }
        var lines: [IRCMessage] = []
        for delivery in deliveries { lines += await driver.delivered(delivery).messages }
        return Self.normalize(lines)
    }

    static func normalize(_ messages: [IRCMessage]) -> [String] {
        messages.map { message in
            var message = message
            message.tags = message.tags.map { tag in
                switch tag.key {
                case "time": return IRCTag("time", ServerTime.parse(tag.value) != nil ? "T" : "BAD:\(tag.value)")
                case "msgid": return IRCTag("msgid", "ID")
                default: return tag
                }
            }
            let wire = message.encoded()
            return String(decoding: wire.utf8.dropLast(2), as: UTF8.self)
        }
    }

    /// Registers with SASL PLAIN as `account`, nick `nick`, with `caps` besides sasl.
    func login(nick: String, account: String, caps: [String] = []) async -> [String] {
        var all: [String] = []
        all += await send("CAP LS 302")
        all += await send("NICK \(nick)")
        all += await send("USER \(nick) 0 * :\(nick) real")
        all += await send("CAP REQ :\((["sasl"] + caps).joined(separator: " "))")
        all += await send("AUTHENTICATE PLAIN")
        let token = Data("\0\(account)\0pw-\(account)".utf8).base64EncodedString()
        all += await send("AUTHENTICATE \(token)")
        all += await send("CAP END")
        return all
    }

    func finish() async {
        await driver.finish()
        collector.cancel()
    }

    /// alice on n1 and bob on n2, logged in, both in `channels` (joined in one JOIN).
    static func aliceAndBob(_ cluster: ChatCluster, joining channels: String? = nil) async -> (TestClient, TestClient) {
        let alice = TestClient(cluster, node: "n1")
        let bob = TestClient(cluster, node: "n2")
        _ = await alice.login(nick: "alice", account: "alice@example.org")
        _ = await bob.login(nick: "bob", account: "bob@example.org")
        if let channels {
            _ = await alice.send("JOIN \(channels)")
            _ = await bob.send("JOIN \(channels)")
        }
        return (alice, bob)
    }
}
