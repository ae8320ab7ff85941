import Chat
import Directory
import Logging
import Metrics
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

/// Runs the chat hub (log tailing, dead-node reaping) while the chat module is enabled,
/// and keeps its timing in line with the config.
struct ChatHubService: Service {
    let hub: ChatHub
    let runtime: NodeRuntime

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await hub.run() }
                group.addTask {
                    while !Task.isCancelled {
                        let config = runtime.snapshot.nodeConfig
                        hub.update {
                            $0.pollInterval = .milliseconds(config.chatPollInterval)
                            $0.heartbeatStaleAfter = Double(config.heartbeatStaleAfter)
                        }
                        try? await Task.sleep(for: .seconds(1))
                    }
                }
            }
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
