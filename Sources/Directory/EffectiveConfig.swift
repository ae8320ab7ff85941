import Foundation

/// Where a setting's effective value came from.
public enum SettingSource: Sendable, Equatable, Codable, CustomStringConvertible {
    case builtInDefault
    case cluster(dn: String)
    case node(dn: String)

    public var description: String {
        switch self {
        case .builtInDefault: return "default"
        case .cluster(let dn): return "cluster (\(dn))"
        case .node(let dn): return "node (\(dn))"
        }
    }

    public var kind: String {
        switch self {
        case .builtInDefault: return "default"
        case .cluster: return "cluster"
        case .node: return "node"
        }
    }
}

public struct ResolvedSetting: Sendable, Equatable, Codable {
    public var values: [String]
    public var source: SettingSource
}

/// A value in LDAP that failed validation. The node reports it and keeps its last good value.
public struct SettingProblem: Sendable, Equatable, Codable, CustomStringConvertible {
    public struct Reason: Error, Sendable, Equatable, Codable {
        public var text: String
        public init(_ text: String) { self.text = text }
    }

    public var dn: String
    public var attribute: String
    public var value: String
    public var reason: String
    /// What stays in force instead.
    public var keeping: String

    public var description: String {
        "invalid value in \(dn): \(attribute): \(reason); keeping \(keeping)"
    }
}

/// Cluster defaults overridden attribute by attribute by the node's entry, every value validated.
public struct EffectiveConfig: Sendable, Equatable, Codable {
    public var nodeName: String
    public var settings: [String: ResolvedSetting]
    public var problems: [SettingProblem]
    public var clusterDN: String?
    public var nodeDN: String?

    public func setting(_ attribute: String) -> ResolvedSetting {
        settings[attribute.lowercased()] ?? ResolvedSetting(values: [], source: .builtInDefault)
    }

    /// Builds the effective config from the two entries. `previous` is the config in force:
    /// for a setting whose winning LDAP value is invalid, its value stays as it was
    /// (or falls through to the next layer when there is no previous config).
    public static func resolve(
        nodeName: String, cluster: LDAPEntry?, node: LDAPEntry?, previous: EffectiveConfig?
    ) -> EffectiveConfig {
        var settings: [String: ResolvedSetting] = [:]
        var problems: [SettingProblem] = []
        for definition in SettingsRegistry.all {
            let key = definition.attribute.lowercased()
            var layers: [(entry: LDAPEntry, source: SettingSource)] = []
            if let node { layers.append((node, .node(dn: node.dn))) }
            if let cluster { layers.append((cluster, .cluster(dn: cluster.dn))) }
            var chosen: ResolvedSetting?
            var firstProblem: (dn: String, value: String, reason: String)?
            for layer in layers {
                let raw = layer.entry.values(definition.attribute)
                if raw.isEmpty { continue }
                switch validate(raw, definition) {
                case .success(let values):
                    chosen = ResolvedSetting(values: values, source: layer.source)
                case .failure(let failure):
                    firstProblem = (layer.entry.dn, failure.value, failure.reason.text)
                }
                break  // the highest layer that sets the attribute decides, valid or not
            }
            if chosen == nil, let firstProblem {
                let kept = previous?.settings[key] ?? nil
                let fallback: ResolvedSetting
                if let kept {
                    fallback = kept
                } else {
                    fallback = lowerLayer(below: firstProblem.dn, layers: layers, definition: definition)
                }
                chosen = fallback
                // Problems reach logs and /healthz: secret values are never spelled out.
                let shown = { (values: [String]) in SettingsRegistry.displayed(definition.attribute, values).joined(separator: " ") }
                let keptText = fallback.values.isEmpty ? "(unset)" : shown(fallback.values)
                problems.append(SettingProblem(
                    dn: firstProblem.dn, attribute: definition.attribute, value: shown([firstProblem.value]),
                    reason: firstProblem.reason,
                    keeping: "\(keptText) from \(fallback.source)"))
            }
            settings[key] = chosen ?? ResolvedSetting(values: definition.defaultValues, source: .builtInDefault)
        }
        return EffectiveConfig(
            nodeName: nodeName, settings: settings, problems: problems, clusterDN: cluster?.dn, nodeDN: node?.dn)
    }

    private static func validate(
        _ raw: [String], _ definition: SettingDefinition
    ) -> Result<[String], InvalidValue> {
        if !definition.multiValued, raw.count > 1 {
            return .failure(InvalidValue(value: raw.joined(separator: ", "), reason: .init("single-valued setting has \(raw.count) values")))
        }
        var canonical: [String] = []
        for value in raw {
            switch definition.rule.validate(value) {
            case .success(let good): if !canonical.contains(good) { canonical.append(good) }
            case .failure(let reason): return .failure(InvalidValue(value: value, reason: reason))
            }
        }
        return .success(canonical)
    }

    struct InvalidValue: Error {
        var value: String
        var reason: SettingProblem.Reason
    }

    /// With no previous config, an invalid node value falls back to the cluster value (if valid), then the default.
    private static func lowerLayer(
        below dn: String, layers: [(entry: LDAPEntry, source: SettingSource)], definition: SettingDefinition
    ) -> ResolvedSetting {
        var passed = false
        for layer in layers {
            if layer.entry.dn == dn { passed = true; continue }
            guard passed else { continue }
            let raw = layer.entry.values(definition.attribute)
            if raw.isEmpty { continue }
            if case .success(let values) = validate(raw, definition) {
                return ResolvedSetting(values: values, source: layer.source)
            }
        }
        return ResolvedSetting(values: definition.defaultValues, source: .builtInDefault)
    }
}

/// The typed, validated view of `EffectiveConfig` that modules read.
public struct NodeConfig: Sendable, Equatable {
    public var nodeName: String
    public var modules: Set<ModuleName>
    public var state: NodeState
    public var listenAddress: String
    public var smtpPort: Int
    public var submissionPort: Int
    public var smtpsPort: Int
    public var pop3Port: Int
    public var pop3sPort: Int
    public var imapPort: Int
    public var imapsPort: Int
    public var ircPort: Int
    public var ircsPort: Int
    public var httpPort: Int
    public var httpsPort: Int
    public var agentPort: Int
    public var sharedRoot: String
    public var logLevel: String
    public var lockStaleTimeout: Int
    public var heartbeatInterval: Int
    public var heartbeatStaleAfter: Int
    public var configPollIntervalMilliseconds: Int
    public var drainTimeout: Int
    public var maxConnections: Int
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    public var allowPlaintextAuthLoopback: Bool
    public var maxMessageSize: Int
    public var dnsServer: String?
    public var hostname: String
    public var authFailureDelayMilliseconds: Int
    public var maxAuthFailures: Int
    public var authFailureWindow: Int
    /// Relay for all outbound mail; nil: deliver to each domain's MX.
    public var smarthost: HostPort?
    public var smarthostUser: String?
    public var smarthostPassword: String?
    public var outboundTLS: String
    public var remoteSMTPPort: Int
    public var queueLifetime: Int
    public var queueRetryInterval: Int
    public var maxConnectionsPerIP: Int
    public var messageRatePerIP: Int
    public var messageRatePerUser: Int
    public var maxRecipients: Int
    /// nil: EXPIRE NEVER.
    public var pop3ExpireDays: Int?
    public var pop3LoginDelay: Int
    public var maxConnectionsPerUser: Int
    public var imapPollInterval: Int
    public var chatAllowGuests: Bool
    public var chatPollInterval: Int
    public var chatFloodBurst: Int
    public var chatFloodRate: Int
    /// The web-mail cookie key (32 bytes); nil: web login is disabled.
    public var webSessionKey: [UInt8]?
    public var webSessionLifetime: Int

    public init(_ config: EffectiveConfig) {
        func one(_ attribute: String) -> String? { config.setting(attribute).values.first }
        // Values were validated by `EffectiveConfig.resolve`; the fallbacks are the documented defaults.
        func int(_ attribute: String, _ fallback: Int) -> Int { one(attribute).flatMap { Int($0) } ?? fallback }
        nodeName = config.nodeName
        modules = Set(config.setting("svcpkgModule").values.compactMap(ModuleName.init(rawValue:)))
        state = one("svcpkgNodeState").flatMap(NodeState.init(rawValue:)) ?? .active
        listenAddress = one("svcpkgListenAddress") ?? "0.0.0.0"
        smtpPort = int("svcpkgSmtpPort", 25)
        submissionPort = int("svcpkgSubmissionPort", 587)
        smtpsPort = int("svcpkgSmtpsPort", 465)
        pop3Port = int("svcpkgPop3Port", 110)
        pop3sPort = int("svcpkgPop3sPort", 995)
        imapPort = int("svcpkgImapPort", 143)
        imapsPort = int("svcpkgImapsPort", 993)
        ircPort = int("svcpkgIrcPort", 6667)
        ircsPort = int("svcpkgIrcsPort", 6697)
        httpPort = int("svcpkgHttpPort", 80)
        httpsPort = int("svcpkgHttpsPort", 443)
        agentPort = int("svcpkgAgentPort", 9777)
        sharedRoot = one("svcpkgSharedRoot") ?? "/srv/svcpkg"
        logLevel = one("svcpkgLogLevel") ?? "info"
        lockStaleTimeout = int("svcpkgLockStaleTimeout", 30)
        heartbeatInterval = int("svcpkgHeartbeatInterval", 2)
        heartbeatStaleAfter = int("svcpkgHeartbeatStaleAfter", 10)
        configPollIntervalMilliseconds = int("svcpkgConfigPollInterval", 1000)
        drainTimeout = int("svcpkgDrainTimeout", 30)
        maxConnections = int("svcpkgMaxConnections", 10000)
        tlsCertificateFile = one("svcpkgTlsCertificateFile")
        tlsKeyFile = one("svcpkgTlsKeyFile")
        allowPlaintextAuthLoopback = one("svcpkgAllowPlaintextAuthLoopback") == "TRUE"
        maxMessageSize = int("svcpkgMaxMessageSize", 52_428_800)
        dnsServer = one("svcpkgDnsServer")
        hostname = one("svcpkgHostname") ?? config.nodeName
        authFailureDelayMilliseconds = int("svcpkgAuthFailureDelay", 1000)
        maxAuthFailures = int("svcpkgMaxAuthFailures", 10)
        authFailureWindow = int("svcpkgAuthFailureWindow", 300)
        smarthost = one("svcpkgSmarthost").flatMap { HostPort.parse($0, defaultPort: 587) }
        smarthostUser = one("svcpkgSmarthostUser")
        smarthostPassword = one("svcpkgSmarthostPassword")
        outboundTLS = one("svcpkgOutboundTls") ?? "opportunistic"
        remoteSMTPPort = int("svcpkgRemoteSmtpPort", 25)
        queueLifetime = int("svcpkgQueueLifetime", 432_000)
        queueRetryInterval = int("svcpkgQueueRetryInterval", 300)
        maxConnectionsPerIP = int("svcpkgMaxConnectionsPerIp", 20)
        messageRatePerIP = int("svcpkgMessageRatePerIp", 600)
        messageRatePerUser = int("svcpkgMessageRatePerUser", 1000)
        maxRecipients = int("svcpkgMaxRecipients", 100)
        pop3ExpireDays = one("svcpkgPop3Expire").flatMap { Int($0) }
        pop3LoginDelay = int("svcpkgPop3LoginDelay", 0)
        maxConnectionsPerUser = int("svcpkgMaxConnectionsPerUser", 20)
        imapPollInterval = int("svcpkgImapPollInterval", 1000)
        chatAllowGuests = one("svcpkgChatAllowGuests") == "TRUE"
        chatPollInterval = int("svcpkgChatPollInterval", 100)
        chatFloodBurst = int("svcpkgChatFloodBurst", 20)
        chatFloodRate = int("svcpkgChatFloodRate", 4)
        webSessionKey = one("svcpkgWebSessionKey").flatMap { Data(base64Encoded: $0) }.map { Array($0) }
        webSessionLifetime = int("svcpkgWebSessionLifetime", 43200)
    }
}
