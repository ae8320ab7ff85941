import ArgumentParser
import Directory
import Foundation
import Logging
import MailMessage
import MessageCache
import Node
import SharedTree

@main
struct Svcpkg: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "svcpkg",
        abstract: "Service Package: one binary for a clustered mail and groupware node.",
        version: svcpkgVersion,
        subcommands: [Serve.self, Config.self, Check.self, Cluster.self, Queue.self, Reindex.self])
}

/// Options every command shares: where the bootstrap file and the local cache are.
struct NodeOptions: ParsableArguments {
    @Option(help: "Bootstrap file (default: $SVCPKG_BOOTSTRAP, else /etc/svcpkg/bootstrap.conf).")
    var bootstrap: String?

    @Option(help: "Node-local cache directory (default: $SVCPKG_CACHE_DIR, else /var/lib/svcpkg).")
    var cacheDir: String?

    var bootstrapPath: String { Bootstrap.resolvePath(option: bootstrap) }

    var cacheDirectory: String {
        if let cacheDir, !cacheDir.isEmpty { return cacheDir }
        if let fromEnvironment = ProcessInfo.processInfo.environment["SVCPKG_CACHE_DIR"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return "/var/lib/svcpkg"
    }

    func loadBootstrap() throws -> Bootstrap {
        do {
            return try Bootstrap.load(path: bootstrapPath)
        } catch {
            throw CommandFailure("\(error)")
        }
    }

    /// This node's config entries and effective config, resolved as `serve` does (the local
    /// cache supplies the last good values).
    func loadConfig(_ bootstrap: Bootstrap, directory: DirectoryClient) async throws -> (entries: ConfigEntries, effective: EffectiveConfig) {
        do {
            let entries = try await directory.configEntries(node: bootstrap.node)
            let previous = ConfigCache(directory: cacheDirectory).load()?.effective
            return (entries, EffectiveConfig.resolve(nodeName: bootstrap.node, cluster: entries.cluster, node: entries.node, previous: previous))
        } catch {
            throw CommandFailure("cannot read the config from LDAP: \(error)")
        }
    }

    func nodeConfig(_ bootstrap: Bootstrap, directory: DirectoryClient) async throws -> NodeConfig {
        NodeConfig(try await loadConfig(bootstrap, directory: directory).effective)
    }

    func directory(_ bootstrap: Bootstrap) throws -> DirectoryClient {
        var logger = Logger(label: "svcpkg")
        logger.logLevel = .warning
        do {
            return try DirectoryClient(bootstrap: bootstrap, logger: logger)
        } catch {
            throw CommandFailure("\(error)")
        }
    }
}

/// An error whose text is the whole message: printed as one line, exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run this node: the modules its effective config enables.")

    @OptionGroup var options: NodeOptions

    func run() async throws {
        NodeLogLevel.bootstrap()
        let logger = Logger(label: "svcpkg")
        let bootstrap = try options.loadBootstrap()
        do {
            try await NodeServer(bootstrap: bootstrap, cacheDirectory: options.cacheDirectory, logger: logger).run()
        } catch let error as NodeStartError {
            logger.critical("\(error)")
            throw ExitCode(2)
        }
    }
}

struct Config: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Inspect the effective config.", subcommands: [Show.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every setting of a node's effective config with its source (default, cluster or node).")

        @OptionGroup var options: NodeOptions

        @Option(help: "The node to show (default: this node, from the bootstrap file).")
        var node: String?

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() async throws {
            let bootstrap = try options.loadBootstrap()
            let directory = try options.directory(bootstrap)
            defer { Task { await directory.shutdown() } }
            let name = node ?? bootstrap.node
            guard NodeName.isValid(name) else { throw CommandFailure("`\(name)` is not a valid node name") }
            let entries: ConfigEntries
            do {
                entries = try await directory.configEntries(node: name)
            } catch {
                throw CommandFailure("cannot read the config from LDAP: \(error)")
            }
            // For this node, resolve against its last good config, as the running node does.
            let previous = name == bootstrap.node ? ConfigCache(directory: options.cacheDirectory).load()?.effective : nil
            let config = EffectiveConfig.resolve(nodeName: name, cluster: entries.cluster, node: entries.node, previous: previous)
            if json {
                print(ConfigPrinter.json(config))
            } else {
                print(ConfigPrinter.table(config, nodeDN: entries.node?.dn ?? directory.layout.nodeDN(name)), terminator: "")
            }
        }
    }
}

enum ConfigPrinter {
    static func table(_ config: EffectiveConfig, nodeDN: String) -> String {
        var out = "# effective config of node \(config.nodeName) (\(config.nodeDN ?? "\(nodeDN): no such entry"))\n"
        let width = SettingsRegistry.all.map(\.attribute.count).max() ?? 20
        for definition in SettingsRegistry.all {
            let setting = config.setting(definition.attribute)
            let value = setting.values.isEmpty ? "(unset)" : SettingsRegistry.displayed(definition.attribute, setting.values).joined(separator: " ")
            let name = definition.attribute.padding(toLength: width, withPad: " ", startingAt: 0)
            out += "\(name)  \(value)  [\(setting.source)]\n"
        }
        for problem in config.problems { out += "problem: \(problem)\n" }
        return out
    }

    static func json(_ config: EffectiveConfig) -> String {
        var settings: [String: Any] = [:]
        for definition in SettingsRegistry.all {
            let setting = config.setting(definition.attribute)
            var item: [String: Any] = ["values": SettingsRegistry.displayed(definition.attribute, setting.values), "source": setting.source.kind]
            switch setting.source {
            case .cluster(let dn), .node(let dn): item["dn"] = dn
            case .builtInDefault: break
            }
            settings[definition.attribute] = item
        }
        let problems: [[String: String]] = config.problems.map {
            ["dn": $0.dn, "attribute": $0.attribute, "value": $0.value, "reason": $0.reason, "keeping": $0.keeping]
        }
        let object: [String: Any] = ["node": config.nodeName, "settings": settings, "problems": problems]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the bootstrap file, LDAP access, this node's config and the shared tree; exit 1 naming the first problem.")

    @OptionGroup var options: NodeOptions

    @Option(name: .customLong("store"), help: "Also check USER's mail store (UID lists against files, stale temporary files).")
    var storeUser: String?

    func run() async throws {
        func ok(_ text: String) { print("ok: \(text)") }
        func fail(_ text: String) throws -> Never {
            FileHandle.standardError.write(Data("error: \(text)\n".utf8))
            throw ExitCode(1)
        }
        let bootstrap: Bootstrap
        do { bootstrap = try Bootstrap.load(path: options.bootstrapPath) } catch { try fail("\(error)") }
        ok("bootstrap \(bootstrap.path) (node \(bootstrap.node))")
        let password: String
        do { password = try bootstrap.bindPassword() } catch { try fail("\(error)") }
        var logger = Logger(label: "svcpkg")
        logger.logLevel = .critical
        let directory = DirectoryClient(
            settings: .init(uris: bootstrap.ldapURIs, bindDN: bootstrap.bindDN, bindPassword: password, baseDN: bootstrap.baseDN),
            logger: logger)
        defer { Task { await directory.shutdown() } }
        do {
            try await directory.probe()
        } catch let error as LDAPError where error.isInvalidCredentials {
            try fail("LDAP bind as \(bootstrap.bindDN) rejected: wrong bind password or DN (\(error.description)); check \(bootstrap.bindPasswordFile)")
        } catch let error as LDAPError where error.isConnectionFailure {
            try fail("cannot reach LDAP at \(bootstrap.ldapURIs.joined(separator: " ")): \(LDAPError.message(for: error.code))")
        } catch {
            try fail("LDAP at \(bootstrap.ldapURIs.joined(separator: " ")): \(error)")
        }
        ok("LDAP bind as \(bootstrap.bindDN) at \(bootstrap.ldapURIs.joined(separator: " "))")
        let entries: ConfigEntries
        do {
            entries = try await directory.configEntries(node: bootstrap.node)
        } catch let error as LDAPError where error.isNoSuchObject {
            try fail("LDAP entry \(directory.layout.svcpkgDN) is missing: load ldap-schema/ and the bootstrap DIT (base_dn \(bootstrap.baseDN) right?)")
        } catch {
            try fail("reading the config entries: \(error)")
        }
        guard let cluster = entries.cluster else { try fail("cluster entry \(directory.layout.clusterDN) is missing") }
        ok("cluster entry \(cluster.dn)")
        if let node = entries.node {
            ok("node entry \(node.dn)")
        } else {
            print("warning: node entry \(directory.layout.nodeDN(bootstrap.node)) is missing; the node runs on cluster defaults")
        }
        let config = EffectiveConfig.resolve(nodeName: bootstrap.node, cluster: entries.cluster, node: entries.node, previous: nil)
        if let problem = config.problems.first { try fail("\(problem)") }
        ok("\(SettingsRegistry.all.count) settings valid")
        let nodeConfig = NodeConfig(config)
        let layout = SharedTreeLayout(root: nodeConfig.sharedRoot)
        do {
            try SharedTreeProbe.checkWritable(layout: layout)
        } catch {
            try fail("shared tree: \(error)")
        }
        ok("shared tree \(layout.root) writable")
        guard let storeUser else { return }
        let problems: [MailStoreProblem]
        do {
            let user = try MailUser(address: storeUser)
            problems = try MailStore(layout: layout, user: user, node: bootstrap.node).checkConsistency()
        } catch {
            try fail("mail store of \(storeUser): \(error)")
        }
        for problem in problems { FileHandle.standardError.write(Data("error: \(problem)\n".utf8)) }
        guard problems.isEmpty else { throw ExitCode(1) }
        ok("mail store of \(storeUser) consistent")
    }
}

struct Queue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect and steer the shared MTA queue.", subcommands: [List.self, Show.self, Retry.self, Delete.self])

    /// The queue as this node sees it (shared root from its effective config).
    static func store(_ options: NodeOptions) async throws -> QueueStore {
        let bootstrap = try options.loadBootstrap()
        let directory = try options.directory(bootstrap)
        defer { Task { await directory.shutdown() } }
        let config = try await options.nodeConfig(bootstrap, directory: directory)
        return QueueStore(
            layout: SharedTreeLayout(root: config.sharedRoot), node: bootstrap.node,
            lockOptions: LockOptions(staleTimeout: TimeInterval(config.lockStaleTimeout), timeout: 0))
    }

    /// Runs `action` on each id, one line per id; exit 1 when any was claimed or missing.
    static func apply(_ ids: [String], verb: String, _ action: (String) throws -> Bool) throws {
        var failed = false
        for id in ids {
            if try action(id) {
                print("\(verb): \(id)")
            } else {
                failed = true
                FileHandle.standardError.write(Data("error: \(id) is claimed by a runner right now or does not exist\n".utf8))
            }
        }
        if failed { throw ExitCode(1) }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List queue entries: id, state, age, attempts, sender, pending recipients.")
        @OptionGroup var options: NodeOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let queue = try await Queue.store(options)
            var rows: [(QueueEnvelope, String)] = []
            for state in QueueStore.State.allCases {
                for envelope in try queue.list(state) {
                    rows.append((envelope, try queue.isClaimed(envelope.id) ? "active" : state.rawValue))
                }
            }
            if json {
                let objects: [[String: Any]] = rows.map { envelope, state in
                    ["id": envelope.id, "state": state, "sender": envelope.sender, "attempts": envelope.attempts, "size": envelope.size,
                     "recipients": envelope.recipients.map { ["address": $0.address, "status": $0.status.rawValue, "last_result": $0.lastResult ?? ""] }]
                }
                let data = try JSONSerialization.data(withJSONObject: ["entries": objects], options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("ID                                      STATE     AGE     TRIES  FROM -> PENDING")
            for (envelope, state) in rows {
                let age = Int(Date().timeIntervalSince(envelope.receivedAt))
                let pending = envelope.pendingRecipients.map(\.address).joined(separator: ", ")
                print(envelope.id.padding(toLength: 40, withPad: " ", startingAt: 0) + state.padding(toLength: 10, withPad: " ", startingAt: 0)
                      + "\(age)s".padding(toLength: 8, withPad: " ", startingAt: 0) + "\(envelope.attempts)".padding(toLength: 7, withPad: " ", startingAt: 0)
                      + "<\(envelope.sender)> -> \(pending)")
            }
            print("\(rows.count) entries")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one entry: envelope, per-recipient results and the message header.")
        @OptionGroup var options: NodeOptions
        @Argument var id: String

        func run() async throws {
            let queue = try await Queue.store(options)
            guard let (envelope, state) = try queue.find(id) else { throw CommandFailure("no queue entry \(id)") }
            print("id: \(envelope.id)\nstate: \(try queue.isClaimed(id) ? "active" : state.rawValue)\nsender: <\(envelope.sender)>")
            print("received: \(envelope.receivedAt) by \(envelope.receivedBy)\nattempts: \(envelope.attempts), next: \(envelope.nextAttemptAt)\nsize: \(envelope.size)")
            for recipient in envelope.recipients {
                print("recipient: \(recipient.address) \(recipient.status.rawValue) \(recipient.lastResult ?? "")")
            }
            let message = try queue.message(id, maxBytes: 1 << 20)
            let header = MessageHeader.parse(message)
            print("")
            for field in header.fields { print("\(field.name): \(field.value)") }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make entries due now (failed ones get their failed recipients back).")
        @OptionGroup var options: NodeOptions
        @Argument(help: "Entry ids; none with --all.") var ids: [String] = []
        @Flag(help: "Every deferred entry.") var all = false

        func run() async throws {
            let queue = try await Queue.store(options)
            let targets = all ? try queue.list(.deferred).map(\.id) : ids
            guard !targets.isEmpty else { throw CommandFailure("name entry ids or use --all") }
            try Queue.apply(targets, verb: "retry") { try queue.retryNow($0) }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete entries and their messages (no bounce is sent).")
        @OptionGroup var options: NodeOptions
        @Argument var ids: [String]

        func run() async throws {
            let queue = try await Queue.store(options)
            try Queue.apply(ids, verb: "deleted") { try queue.delete($0) }
        }
    }
}

struct Reindex: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rebuild this node's local message cache (parse results, full-text index) for a user.")

    @OptionGroup var options: NodeOptions

    @Argument(help: "The user's address.")
    var user: String

    func run() async throws {
        let bootstrap = try options.loadBootstrap()
        let directory = try options.directory(bootstrap)
        defer { Task { await directory.shutdown() } }
        let config = try await options.nodeConfig(bootstrap, directory: directory)
        let cachePath = options.cacheDirectory + "/messages.sqlite"
        do {
            let mailUser = try MailUser(address: user)
            let store = MailStore(layout: SharedTreeLayout(root: config.sharedRoot), user: mailUser, node: bootstrap.node)
            let cache = try MessageCache(path: cachePath)
            let forgotten = try cache.forget(user: mailUser.description)
            var indexed = 0
            for entry in try store.listFolders() where entry.exists {
                let snapshot = try store.sync(entry.name)
                for message in snapshot.messages {
                    guard let bytes = try store.readMessage(message, in: entry.name) else { continue }
                    let key = MessageKey(user: mailUser.description, folder: entry.name.description, uidValidity: snapshot.uidValidity, uid: message.uid)
                    // A Maildir name starts with the delivery time in seconds: the message's INTERNALDATE.
                    let delivered = Double(message.baseName.prefix { $0.isNumber }).map(Date.init(timeIntervalSince1970:)) ?? Date()
                    try cache.index(key, message: bytes, internalDate: delivered)
                    indexed += 1
                }
            }
            print("reindexed \(user): \(indexed) messages (dropped \(forgotten) cached rows) in \(cachePath)")
        } catch {
            throw CommandFailure("reindex \(user): \(error)")
        }
    }
}

struct Cluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cluster-wide views.", subcommands: [Status.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every node in LDAP with its state and heartbeat age on the shared tree.")

        @OptionGroup var options: NodeOptions

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() async throws {
            let bootstrap = try options.loadBootstrap()
            let directory = try options.directory(bootstrap)
            defer { Task { await directory.shutdown() } }
            let (entries, effective) = try await options.loadConfig(bootstrap, directory: directory)
            let nodes: [NodeEntry]
            do {
                nodes = try await directory.nodes()
            } catch {
                throw CommandFailure("cannot read the node list from LDAP: \(error)")
            }
            let nodeConfig = NodeConfig(effective)
            // The state of a node whose entry sets none: the cluster entry's, else the default.
            let clusterState = NodeConfig(
                EffectiveConfig.resolve(nodeName: bootstrap.node, cluster: entries.cluster, node: nil, previous: nil)).state
            let readings: [HeartbeatReading]
            do {
                readings = try HeartbeatStore.readAll(layout: SharedTreeLayout(root: nodeConfig.sharedRoot))
            } catch {
                throw CommandFailure("cannot read heartbeats under \(nodeConfig.sharedRoot): \(error)")
            }
            let rows = ClusterStatusRow.rows(
                nodes: nodes, readings: readings, staleAfter: TimeInterval(nodeConfig.heartbeatStaleAfter),
                defaultState: clusterState)
            if json {
                let objects: [[String: Any]] = rows.map { row in
                    var object: [String: Any] = ["node": row.node, "state": row.state, "status": row.status, "in_ldap": row.inLDAP]
                    object["address"] = row.address ?? NSNull()
                    object["heartbeat_age"] = row.age ?? NSNull()
                    object["pid"] = row.pid.map { Int($0) } ?? NSNull()
                    return object
                }
                let data = try JSONSerialization.data(withJSONObject: ["nodes": objects], options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(ClusterStatusRow.table(rows), terminator: "")
            }
        }
    }
}

struct ClusterStatusRow {
    var node: String
    var state: String
    var address: String?
    var age: Double?
    var pid: Int32?
    var status: String
    var inLDAP: Bool

    static func rows(nodes: [NodeEntry], readings: [HeartbeatReading], staleAfter: TimeInterval, defaultState: NodeState) -> [ClusterStatusRow] {
        var byNode: [String: HeartbeatReading] = [:]
        for reading in readings { byNode[reading.node] = reading }
        func status(_ reading: HeartbeatReading?) -> String {
            guard let reading else { return "no heartbeat" }
            if reading.heartbeat?.state == "stopped" { return "stopped" }
            return reading.age > staleAfter ? "stale" : "alive"
        }
        var rows = nodes.map { node in
            let reading = byNode[node.name]
            return ClusterStatusRow(
                node: node.name, state: (node.state ?? defaultState).rawValue, address: node.listenAddress,
                age: reading?.age, pid: reading?.heartbeat?.pid,
                status: status(reading), inLDAP: true)
        }
        let known = Set(nodes.map(\.name))
        for reading in readings where !known.contains(reading.node) {
            rows.append(ClusterStatusRow(
                node: reading.node, state: reading.heartbeat?.state ?? "?", address: nil,
                age: reading.age, pid: reading.heartbeat?.pid, status: status(reading) + " (not in LDAP)",
                inLDAP: false))
        }
        return rows
    }

    static func table(_ rows: [ClusterStatusRow]) -> String {
        var out = "NODE            STATE   ADDRESS          HEARTBEAT  STATUS\n"
        for row in rows {
            let age = row.age.map { String(format: "%.1fs", $0) } ?? "-"
            out += row.node.padding(toLength: 16, withPad: " ", startingAt: 0)
                + row.state.padding(toLength: 8, withPad: " ", startingAt: 0)
                + (row.address ?? "-").padding(toLength: 17, withPad: " ", startingAt: 0)
                + age.padding(toLength: 11, withPad: " ", startingAt: 0)
                + row.status + "\n"
        }
        return out
    }
}

/// ArgumentParser prints `Error: <description>` for thrown errors and exits 1.
extension CommandFailure: LocalizedError {
    var errorDescription: String? { description }
}

