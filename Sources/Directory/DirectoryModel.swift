import Foundation

/// Where things live in the DIT, relative to the base DN (see ldap-schema/SETTINGS.md).
public struct DirectoryLayout: Sendable {
    public var baseDN: String
    public init(baseDN: String) { self.baseDN = baseDN }

    public var svcpkgDN: String { "ou=svcpkg,\(baseDN)" }
    public var clusterDN: String { "cn=cluster,\(svcpkgDN)" }
    public var nodesDN: String { "ou=nodes,\(svcpkgDN)" }
    public var domainsDN: String { "ou=domains,\(svcpkgDN)" }
    public func nodeDN(_ node: String) -> String { "cn=\(ldapDNEscape(node)),\(nodesDN)" }
}

public struct NodeEntry: Sendable, Equatable {
    public var name: String
    public var dn: String
    public var state: NodeState?
    public var listenAddress: String?
}

public struct MailDomain: Sendable, Equatable {
    public var name: String
    public var dn: String
    public var active: Bool
    public var catchAll: String?
    /// DKIM signing of outgoing mail: both set, or the domain's mail is not signed.
    public var dkimSelector: String?
    public var dkimKeyFile: String?
    /// What a DMARC failure of inbound mail to this domain leads to.
    public var inboundAuthPolicy: InboundAuthPolicy

    public init(
        name: String, dn: String, active: Bool, catchAll: String? = nil, dkimSelector: String? = nil,
        dkimKeyFile: String? = nil, inboundAuthPolicy: InboundAuthPolicy = .reject
    ) {
        self.name = name
        self.dn = dn
        self.active = active
        self.catchAll = catchAll
        self.dkimSelector = dkimSelector
        self.dkimKeyFile = dkimKeyFile
        self.inboundAuthPolicy = inboundAuthPolicy
    }
}

/// svcpkgInboundAuthPolicy: the strongest action a DMARC failure may cause.
public enum InboundAuthPolicy: String, Sendable, Equatable, CaseIterable {
    /// Honour the sender domain's policy: p=reject refuses with 550, p=quarantine files into Junk.
    case reject
    /// Never refuse; mail failing DMARC with p=reject or p=quarantine goes to Junk.
    case quarantine
    /// Only record the results in Authentication-Results.
    case none
}

public struct Account: Sendable, Equatable {
    public var dn: String
    public var address: String
    public var aliases: [String]
    public var displayName: String?
    public var quotaBytes: Int64?
    public var forwardTo: [String]
    public var keepForwardedCopy: Bool
    public var active: Bool
}

/// The configuration entries of one node, as read in one round trip.
public struct ConfigEntries: Sendable, Equatable, Codable {
    public var cluster: LDAPEntry?
    public var node: LDAPEntry?
}

public enum DirectoryError: Error, CustomStringConvertible, Sendable {
    case invalidAddress(String)
    case ambiguousAddress(String, [String])

    public var description: String {
        switch self {
        case .invalidAddress(let address): return "`\(address)` is not a valid mail address"
        case .ambiguousAddress(let address, let dns):
            return "address \(address) belongs to several entries (\(dns.joined(separator: "; "))): fix the directory"
        }
    }
}

extension DirectoryClient {
    public var layout: DirectoryLayout { DirectoryLayout(baseDN: settings.baseDN) }

    /// The cluster entry and this node's entry in one search.
    public func configEntries(node: String) async throws -> ConfigEntries {
        let layout = self.layout
        let filter = "(|(&(objectClass=svcpkgCluster)(cn=cluster))(&(objectClass=svcpkgNode)(cn=\(ldapFilterEscape(node)))))"
        let entries = try await search(
            base: layout.svcpkgDN, scope: .subtree, filter: filter,
            attributes: SettingsRegistry.attributeNames + ["cn", "objectClass"])
        let clusterDN = layout.clusterDN.lowercased()
        let nodeDN = layout.nodeDN(node).lowercased()
        return ConfigEntries(
            cluster: entries.first { normalizedDN($0.dn) == normalizedDN(clusterDN) },
            node: entries.first { normalizedDN($0.dn) == normalizedDN(nodeDN) })
    }

    public func nodes() async throws -> [NodeEntry] {
        let entries = try await search(
            base: layout.nodesDN, scope: .oneLevel, filter: "(objectClass=svcpkgNode)",
            attributes: ["cn", "svcpkgNodeState", "svcpkgListenAddress"])
        return entries.compactMap { entry in
            guard let name = entry.first("cn") else { return nil }
            return NodeEntry(
                name: name, dn: entry.dn, state: entry.first("svcpkgNodeState").flatMap { NodeState(rawValue: $0.lowercased()) },
                listenAddress: entry.first("svcpkgListenAddress"))
        }.sorted { $0.name < $1.name }
    }

    public func domains() async throws -> [MailDomain] {
        let entries = try await search(
            base: layout.domainsDN, scope: .oneLevel, filter: "(objectClass=svcpkgMailDomain)",
            attributes: ["cn", "svcpkgDomainStatus", "svcpkgCatchAll", "svcpkgDkimSelector", "svcpkgDkimKeyFile", "svcpkgInboundAuthPolicy"])
        return entries.compactMap { entry in
            guard let name = entry.first("cn") else { return nil }
            // An unknown policy value falls back to the default rather than disabling checks.
            let policy = entry.first("svcpkgInboundAuthPolicy").flatMap { InboundAuthPolicy(rawValue: $0.lowercased()) } ?? .reject
            return MailDomain(
                name: name.lowercased(), dn: entry.dn,
                active: (entry.first("svcpkgDomainStatus") ?? "active").lowercased() == "active",
                catchAll: entry.first("svcpkgCatchAll"),
                dkimSelector: entry.first("svcpkgDkimSelector"),
                dkimKeyFile: entry.first("svcpkgDkimKeyFile").flatMap { $0.hasPrefix("/") ? $0 : nil },
                inboundAuthPolicy: policy)
        }.sorted { $0.name < $1.name }
    }

    /// The account whose primary address or alias is `address` (case-insensitive), or nil.
    public func account(address: String) async throws -> Account? {
        guard let normalized = MailAddressText.normalize(address) else { throw DirectoryError.invalidAddress(address) }
        let escaped = ldapFilterEscape(normalized)
        let entries = try await search(
            base: settings.baseDN, scope: .subtree,
            filter: "(&(objectClass=svcpkgMailUser)(|(mail=\(escaped))(svcpkgMailAlias=\(escaped))))",
            attributes: ["mail", "svcpkgMailAlias", "cn", "displayName", "svcpkgQuotaBytes", "svcpkgForwardTo",
                         "svcpkgKeepForwardedCopy", "svcpkgAccountStatus"],
            sizeLimit: 2)
        if entries.count > 1 { throw DirectoryError.ambiguousAddress(normalized, entries.map(\.dn)) }
        guard let entry = entries.first, let mail = entry.first("mail") else { return nil }
        return Account(
            dn: entry.dn, address: mail.lowercased(), aliases: entry.values("svcpkgMailAlias").map { $0.lowercased() },
            displayName: entry.first("displayName") ?? entry.first("cn"),
            quotaBytes: entry.first("svcpkgQuotaBytes").flatMap { Int64($0) }.flatMap { $0 > 0 ? $0 : nil },
            forwardTo: entry.values("svcpkgForwardTo"),
            keepForwardedCopy: entry.first("svcpkgKeepForwardedCopy")?.uppercased() == "TRUE",
            active: (entry.first("svcpkgAccountStatus") ?? "active").lowercased() == "active")
    }

    /// Expands a group address (or group alias) into its member addresses; nil when it is no group.
    public func groupMembers(address: String) async throws -> [String]? {
        guard let normalized = MailAddressText.normalize(address) else { throw DirectoryError.invalidAddress(address) }
        let escaped = ldapFilterEscape(normalized)
        let entries = try await search(
            base: settings.baseDN, scope: .subtree,
            filter: "(&(objectClass=svcpkgMailGroup)(|(mail=\(escaped))(svcpkgMailAlias=\(escaped))))",
            attributes: ["svcpkgMailMember"], sizeLimit: 2)
        guard let entry = entries.first else { return nil }
        return entry.values("svcpkgMailMember").map { $0.lowercased() }
    }

    /// Logs a user in by address and password: finds the entry, refuses disabled accounts, binds as it.
    public func authenticate(address: String, password: String) async throws -> Account? {
        guard let account = try await account(address: address), account.active else { return nil }
        return try await authenticate(dn: account.dn, password: password) ? account : nil
    }
}

func normalizedDN(_ dn: String) -> String {
    dn.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ",")
}

public enum MailAddressText {
    /// Lower-cased `local@domain` with basic sanity checks, or nil.
    public static func normalize(_ address: String) -> String? {
        let trimmed = address.trimmingCharacters(in: .whitespaces)
        guard trimmed.utf8.count <= 254, !trimmed.utf8.contains(where: { $0 < 0x21 || $0 == 0x7f }) else { return nil }
        let parts = trimmed.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64, HostNameText.isValid(String(parts[1])) else {
            return nil
        }
        return trimmed.lowercased()
    }
}
