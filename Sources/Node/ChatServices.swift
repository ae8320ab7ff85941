import Chat
import Directory
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import SharedTree

/// IRC's view of the node: connection accounting shared with the other protocols, and
/// passwords checked against LDAP with the shared failure delay and lockout.
final class ChatServices: IRCServices {
    let mail: MailServices

    init(mail: MailServices) {
        self.mail = mail
    }

    func connectionOpened(remoteAddress: String) -> String? {
        guard mail.connections.open(remoteAddress, limit: mail.runtime.snapshot.nodeConfig.maxConnectionsPerIP) else {
            Counter(label: "svcpkg_irc_refused_total", dimensions: [("reason", "connections_per_ip")]).increment()
            return "Too many connections from your address, try again later"
        }
        mail.runtime.connectionOpened()
        return nil
    }

    func connectionClosed(remoteAddress: String) {
        mail.connections.close(remoteAddress)
        mail.runtime.connectionClosed()
    }

    func authenticate(user: String, password: String, remoteAddress: String) async -> AuthenticationResult {
        switch await mail.checkCredentials(user: user, password: password, remoteAddress: remoteAddress, protocolName: "irc") {
        case .ok(let account): return .ok(account: account.address)
        case .invalid: return .invalid
        case .refused: return .temporarilyRefused
        }
    }

    /// The session configuration for a new connection from the current config.
    static func sessionConfiguration(_ config: NodeConfig, loopback: Bool, tlsActive: Bool, pid: Int32) -> IRCSession.Configuration {
        var configuration = IRCSession.Configuration(serverName: config.hostname, node: config.nodeName, pid: pid)
        configuration.version = "svcpkg-\(svcpkgVersion)"
        configuration.allowGuests = config.chatAllowGuests
        configuration.allowPlaintextAuth = config.allowPlaintextAuthLoopback && loopback
        configuration.tlsActive = tlsActive
        configuration.flood.burst = Double(config.chatFloodBurst)
        configuration.flood.linesPerSecond = Double(config.chatFloodRate)
        return configuration
    }
}

/// Runs the chat hub (log tailing, dead-node reaping) and keeps it in line with the config:
/// its timing, and the UDP nudge socket on the IRC port number of the listen address with
/// the other nodes of LDAP's node list as peers (polling goes on if any of that fails).
struct ChatHubService: Service {
    static let peerRefreshInterval: Duration = .seconds(5)

    let hub: ChatHub
    let runtime: NodeRuntime
    let directory: DirectoryClient
    let fileThreads: NIOThreadPool
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await hub.run() }
                group.addTask { await superviseNudge() }
            }
        }
    }

    func superviseNudge() async {
        var bound: (endpoint: String, nudge: ChatNudge)?
        var lastPeers = ContinuousClock.now - Self.peerRefreshInterval
        while !Task.isCancelled {
            let config = runtime.snapshot.nodeConfig
            hub.update {
                $0.pollInterval = .milliseconds(config.chatPollInterval)
                $0.heartbeatStaleAfter = Double(config.heartbeatStaleAfter)
            }
            let endpoint = config.modules.contains(.chat) ? "\(config.listenAddress):\(config.ircPort)" : nil
            if bound?.endpoint != endpoint {
                if let old = bound {
                    hub.attach(nil)
                    await old.nudge.close()
                    bound = nil
                }
                if let endpoint {
                    do {
                        let nudge = try await ChatNudge.bind(host: config.listenAddress, port: config.ircPort, hub: hub)
                        bound = (endpoint, nudge)
                        hub.attach(nudge)
                        lastPeers = ContinuousClock.now - Self.peerRefreshInterval
                    } catch {
                        logger.warning("chat nudge socket unavailable; other nodes' lines arrive by polling", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
                    }
                }
            }
            if let nudge = bound?.nudge, ContinuousClock.now - lastPeers >= Self.peerRefreshInterval {
                lastPeers = ContinuousClock.now
                if let peers = await peerAddresses(config) { nudge.setPeers(peers) }
            }
            try? await Task.sleep(for: .seconds(1))
        }
        if let bound { await bound.nudge.close() }
    }

    /// The other nodes' addresses: their listen address from LDAP, or their name when they
    /// listen on every address. nil when LDAP cannot answer (the old list stays).
    func peerAddresses(_ config: NodeConfig) async -> [SocketAddress]? {
        guard let nodes = try? await directory.nodes() else { return nil }
        let port = config.ircPort
        let hosts = nodes.filter { $0.name != config.nodeName && $0.state != .maint }.map { node -> String in
            guard let address = node.listenAddress, address != "0.0.0.0", address != "::" else { return node.name }
            return address
        }
        // Name resolution blocks: on the file threads, like other blocking calls.
        return try? await fileThreads.runIfActive {
            hosts.compactMap { try? SocketAddress.makeAddressResolvingHost($0, port: port) }
        }
    }

    static func makeHub(runtime: NodeRuntime, mail: MailServices, logger: Logger) -> ChatHub {
        let config = runtime.snapshot.nodeConfig
        let layout = SharedTreeLayout(root: config.sharedRoot)
        let store = ChatStore(root: layout.chatDirectory, node: mail.nodeName, lockOptions: mail.lockOptions)
        return ChatHub(
            store: store, sharedRoot: config.sharedRoot, threads: mail.fileThreads,
            settings: ChatHub.Settings(
                pollInterval: .milliseconds(config.chatPollInterval), heartbeatStaleAfter: Double(config.heartbeatStaleAfter)),
            logger: logger)
    }
}
