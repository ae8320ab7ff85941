import Directory
import Foundation
import Logging
import MessageCache
import NIOPosix
import ServiceLifecycle
import Web

public enum NodeStartError: Error, CustomStringConvertible {
    case noConfig(ldapError: String, cachePath: String)

    public var description: String {
        switch self {
        case .noConfig(let ldapError, let cachePath):
            return "cannot start: LDAP is unreachable (\(ldapError)) and there is no cached config at \(cachePath); fix LDAP access (see `svcpkg check`) and start again"
        }
    }
}

/// `svcpkg serve`: loads the config (LDAP, else the local cache), then runs the watcher,
/// the heartbeat and the listeners as one service group; SIGTERM/SIGINT drain and stop.
public struct NodeServer {
    public let bootstrap: Bootstrap
    public let cacheDirectory: String
    public let logger: Logger

    public init(bootstrap: Bootstrap, cacheDirectory: String, logger: Logger) {
        self.bootstrap = bootstrap
        self.cacheDirectory = cacheDirectory
        var logger = logger
        logger[metadataKey: "node"] = "\(bootstrap.node)"
        self.logger = logger
    }

    public func run() async throws {
        let directory = try DirectoryClient(bootstrap: bootstrap, logger: logger)
        let cache = ConfigCache(directory: cacheDirectory)
        let cached = cache.load()
        let runtime: NodeRuntime
        do {
            let entries = try await directory.configEntries(node: bootstrap.node)
            let effective = EffectiveConfig.resolve(
                nodeName: bootstrap.node, cluster: entries.cluster, node: entries.node, previous: cached?.effective)
            runtime = NodeRuntime(config: effective, origin: .ldap, confirmedAt: Date(), ldapReachable: true, version: svcpkgVersion)
            try? cache.save(.init(savedAt: Date(), entries: entries, effective: effective))
            if entries.cluster == nil { logger.warning("no cluster entry in LDAP; using built-in defaults", metadata: ["dn": "\(directory.layout.clusterDN)"]) }
            if entries.node == nil { logger.warning("no node entry in LDAP; running on cluster defaults", metadata: ["dn": "\(directory.layout.nodeDN(bootstrap.node))"]) }
        } catch {
            guard let cached else {
                throw NodeStartError.noConfig(ldapError: "\(error)", cachePath: cache.path)
            }
            logger.error("LDAP unreachable at start; serving with the cached config", metadata: [
                "error": "\(error)", "cachedAt": "\(cached.savedAt)",
            ])
            runtime = NodeRuntime(config: cached.effective, origin: .cache, confirmedAt: cached.savedAt, ldapReachable: false, version: svcpkgVersion)
            runtime.update { $0.ldapError = "\(error)" }
        }
        let snapshot = runtime.snapshot
        NodeLogLevel.set(NodeLogLevel.parse(snapshot.nodeConfig.logLevel))
        for problem in snapshot.config.problems { logger.error("\(problem)") }
        logger.notice("starting", metadata: [
            "version": "\(svcpkgVersion)", "state": "\(snapshot.nodeConfig.state.rawValue)",
            "config": "\(snapshot.configOrigin.rawValue)", "sharedRoot": "\(snapshot.nodeConfig.sharedRoot)",
        ])

        let metrics = NodeMetrics()
        metrics.bootstrapMetricsSystem()
        // File-server calls are latency-bound (NFS round trips), and IMAP sessions make many.
        let fileThreads = NIOThreadPool(numberOfThreads: 16)
        fileThreads.start()
        let mail = MailServices(runtime: runtime, directory: directory, fileThreads: fileThreads, logger: logger)
        // Node-local, never on the shared tree (DESIGN.md): losing it only costs re-indexing.
        let messageCache: MessageCache?
        do {
            messageCache = try MessageCache(path: cacheDirectory + "/messages.sqlite")
        } catch {
            logger.error("message cache unavailable; IMAP SEARCH scans message files", metadata: ["error": "\(error)"])
            messageCache = nil
        }
        let chatHub = ChatHubService.makeHub(runtime: runtime, mail: mail, logger: logger)
        let web: WebMail?
        do {
            let webChat = WebChatBridge(chat: ChatServices(mail: mail), hub: chatHub, runtime: runtime, logger: logger)
            web = try WebMail(services: WebMailServices(mail: mail, messageCache: messageCache), chat: webChat, logger: logger)
        } catch {
            logger.error("web-mail unavailable: its page templates do not parse", metadata: ["error": "\(error)"])
            web = nil
        }
        if snapshot.nodeConfig.modules.contains(.web), snapshot.nodeConfig.webSessionKey == nil {
            logger.warning("web login disabled: no svcpkgWebSessionKey in LDAP (base64 of 32 random bytes on cn=cluster)")
        }
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: ConfigWatcher(directory: directory, runtime: runtime, cache: cache, logger: logger)),
                .init(service: HeartbeatService(runtime: runtime, threadPool: fileThreads, logger: logger)),
                .init(service: QueueRunner(
                    runtime: runtime, mail: mail,
                    outbound: OutboundDelivery(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, resolvers: mail.dnsResolvers, logger: logger),
                    signer: DKIMSigningService(logger: logger), fileThreads: fileThreads, logger: logger)),
                .init(service: ChatHubService(hub: chatHub, runtime: runtime, directory: directory, fileThreads: fileThreads, logger: logger)),
                // Last in the list, so first to be shut down: it drains while config and heartbeat still run.
                .init(service: ListenerSupervisor(
                    runtime: runtime, mail: mail, pop3: POP3MailServices(mail: mail), imap: IMAPMailServices(mail: mail, messageCache: messageCache),
                    chat: ChatServices(mail: mail), chatHub: chatHub, web: web, tls: TLSContextProvider(logger: logger), metrics: metrics,
                    logger: logger)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        try? await fileThreads.shutdownGracefully()
        await directory.shutdown()
        logger.notice("stopped")
    }
}
