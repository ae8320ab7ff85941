import Directory
import Foundation
import Logging
import ServiceLifecycle

/// Polls the node's two config entries (one LDAP search) every `svcpkgConfigPollInterval`
/// and applies what changed. Polling works against any LDAP server; with the default 1 s
/// interval a `ldapmodify` reaches the node in at most one interval plus one round trip.
public struct ConfigWatcher: Service {
    let directory: DirectoryClient
    let runtime: NodeRuntime
    let cache: ConfigCache
    let logger: Logger

    public init(directory: DirectoryClient, runtime: NodeRuntime, cache: ConfigCache, logger: Logger) {
        self.directory = directory
        self.runtime = runtime
        self.cache = cache
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var lastEntries: ConfigEntries? = nil
            while !Task.isCancelled {
                lastEntries = await pollOnce(lastEntries: lastEntries)
                let interval = runtime.snapshot.nodeConfig.configPollIntervalMilliseconds
                try? await Task.sleep(for: .milliseconds(interval))
            }
        }
    }

    /// One poll: fetch, resolve against the config in force, apply and cache what changed.
    func pollOnce(lastEntries: ConfigEntries?) async -> ConfigEntries? {
        let node = runtime.snapshot.config.nodeName
        do {
            let entries = try await directory.configEntries(node: node)
            let wasReachable = runtime.snapshot.ldapReachable
            if !wasReachable { logger.notice("LDAP reachable again; config is live from LDAP") }
            if entries != lastEntries {
                apply(entries: entries)
            }
            runtime.update {
                $0.ldapReachable = true
                $0.ldapError = nil
                $0.configOrigin = .ldap
                $0.configConfirmedAt = Date()
            }
            return entries
        } catch {
            let snapshot = runtime.snapshot
            if snapshot.ldapReachable || snapshot.ldapError != "\(error)" {
                logger.error("LDAP unreachable; serving with the last good config", metadata: [
                    "error": "\(error)", "configAge": "\(Int(Date().timeIntervalSince(snapshot.configConfirmedAt)))s",
                ])
            }
            runtime.update {
                $0.ldapReachable = false
                $0.ldapError = "\(error)"
            }
            return lastEntries
        }
    }

    func apply(entries: ConfigEntries) {
        let before = runtime.snapshot.config
        if entries.node == nil {
            logger.warning("no node entry; running on cluster defaults", metadata: ["dn": "\(directory.layout.nodeDN(before.nodeName))"])
        }
        let after = EffectiveConfig.resolve(
            nodeName: before.nodeName, cluster: entries.cluster, node: entries.node, previous: before)
        for problem in after.problems where !before.problems.contains(problem) {
            logger.error("\(problem)")
        }
        for definition in SettingsRegistry.all {
            let old = before.setting(definition.attribute)
            let new = after.setting(definition.attribute)
            if old != new {
                logger.notice("setting changed", metadata: [
                    "attribute": "\(definition.attribute)",
                    "from": "\(SettingsRegistry.displayed(definition.attribute, old.values).joined(separator: " "))",
                    "to": "\(SettingsRegistry.displayed(definition.attribute, new.values).joined(separator: " "))",
                    "source": "\(new.source)",
                ])
            }
        }
        let nodeConfig = NodeConfig(after)
        NodeLogLevel.set(NodeLogLevel.parse(nodeConfig.logLevel))
        runtime.update {
            $0.config = after
            $0.nodeConfig = nodeConfig
        }
        do {
            try cache.save(.init(savedAt: Date(), entries: entries, effective: after))
        } catch {
            logger.error("cannot write the config cache", metadata: ["path": "\(cache.path)", "error": "\(error)"])
        }
    }
}
