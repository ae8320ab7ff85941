import DNSClient
import Directory
import Foundation
import Logging
import MailAuth
import NIOConcurrencyHelpers
import NIOCore
import SMTPClient

/// What one delivery attempt did for one remote recipient.
enum RemoteDeliveryResult: Sendable, Equatable {
    case delivered(String)
    case temporary(String)
    case permanent(status: String, diagnostic: String, remoteMTA: String?)
}

/// Delivery of queued mail to other domains: MX lookup through the cluster's DNS server
/// (RFC 5321 §5.1), or the smarthost when one is configured, then one SMTP transaction
/// per host through `SMTPClient`.
struct OutboundDelivery: Sendable {
    /// RFC 5321 §5.1 leaves the number of hosts open; a few is what real MTAs try per attempt.
    static let maxHostsPerAttempt = 5
    static let maxAddressesPerAttempt = 10

    let eventLoopGroup: any EventLoopGroup
    let resolvers: DNSResolverCache
    let logger: Logger

    /// Delivers `message` to `recipients` (all in other domains) and says what happened to each.
    func deliver(
        sender: String, recipients: [String], message: [UInt8], requiresSMTPUTF8: Bool, eightBit: Bool, config: NodeConfig
    ) async -> [String: RemoteDeliveryResult] {
        var results: [String: RemoteDeliveryResult] = [:]
        if let smarthost = config.smarthost {
            let route = Route(hosts: [(smarthost.host, [smarthost.host])], port: smarthost.port, isSmarthost: true)
            return await attempt(route, sender: sender, recipients: recipients, message: message,
                                 requiresSMTPUTF8: requiresSMTPUTF8, eightBit: eightBit, config: config)
        }
        var byDomain: [String: [String]] = [:]
        for recipient in recipients {
            guard let at = recipient.lastIndex(of: "@") else {
                results[recipient] = .permanent(status: "5.1.3", diagnostic: "x-svcpkg; invalid address", remoteMTA: nil)
                continue
            }
            byDomain[recipient[recipient.index(after: at)...].lowercased(), default: []].append(recipient)
        }
        let resolver = resolvers.resolver(for: config, eventLoopGroup: eventLoopGroup, logger: logger)
        for (domain, group) in byDomain.sorted(by: { $0.key < $1.key }) {
            switch await route(for: domain, resolver: resolver, port: config.remoteSMTPPort) {
            case .failed(let failure):
                for recipient in group { results[recipient] = failure }
            case .route(let route):
                let outcome = await attempt(route, sender: sender, recipients: group, message: message,
                                            requiresSMTPUTF8: requiresSMTPUTF8, eightBit: eightBit, config: config)
                results.merge(outcome) { $1 }
            }
        }
        return results
    }

    struct Route: Sendable {
        /// Host names in the order to try, each with its addresses.
        var hosts: [(name: String, addresses: [String])]
        var port: Int
        var isSmarthost: Bool
    }

    enum RouteLookup {
        case route(Route)
        case failed(RemoteDeliveryResult)
    }

    /// MX hosts by preference (equal preferences shuffled), or the domain itself when it has
    /// no MX (RFC 5321 §5.1 implicit MX); a null MX (RFC 7505) refuses mail.
    func route(for domain: String, resolver: DNSResolver, port: Int) async -> RouteLookup {
        let records: [MXRecord]
        do {
            records = try await resolver.mx(domain)
        } catch {
            return .failed(Self.lookupFailure(error, name: domain))
        }
        if records.count == 1, records[0].exchange.isEmpty || records[0].exchange == "." {
            return .failed(.permanent(status: "5.1.10", diagnostic: "x-svcpkg; \(domain) accepts no mail (null MX, RFC 7505)", remoteMTA: nil))
        }
        var names: [String]
        if records.isEmpty {
            names = [domain]
        } else {
            names = Dictionary(grouping: records, by: \.preference).sorted { $0.key < $1.key }
                .flatMap { $0.value.map(\.exchange).shuffled() }
        }
        names = Array(names.prefix(Self.maxHostsPerAttempt))
        var hosts: [(String, [String])] = []
        var lastFailure: RemoteDeliveryResult?
        for name in names {
            do {
                let addresses = try await resolver.addresses(name)
                if addresses.isEmpty {
                    lastFailure = .permanent(status: "5.1.2", diagnostic: "x-svcpkg; \(name) has no address", remoteMTA: nil)
                } else {
                    hosts.append((name, addresses))
                }
            } catch {
                lastFailure = Self.lookupFailure(error, name: name)
            }
        }
        guard !hosts.isEmpty else {
            return .failed(lastFailure ?? .temporary("x-svcpkg; no usable host for \(domain)"))
        }
        return .route(Route(hosts: hosts, port: port, isSmarthost: false))
    }

    static func lookupFailure(_ error: DNSLookupError, name: String) -> RemoteDeliveryResult {
        switch error {
        case .noSuchDomain:
            return .permanent(status: "5.1.2", diagnostic: "x-svcpkg; host or domain name not found: \(name)", remoteMTA: nil)
        case .invalidName:
            return .permanent(status: "5.1.2", diagnostic: "x-svcpkg; invalid domain name: \(name)", remoteMTA: nil)
        default:
            return .temporary("x-svcpkg; DNS lookup for \(name) failed: \(error)")
        }
    }

    /// Tries the route's hosts in order until one gives recipient-level answers.
    func attempt(
        _ route: Route, sender: String, recipients: [String], message: [UInt8], requiresSMTPUTF8: Bool, eightBit: Bool,
        config: NodeConfig
    ) async -> [String: RemoteDeliveryResult] {
        let client = SMTPClient(eventLoopGroup: eventLoopGroup, configuration: clientConfiguration(config, route: route), logger: logger)
        var lastTemporary = "x-svcpkg; no host tried"
        var triedAddresses = 0
        for host in route.hosts {
            for address in host.addresses where triedAddresses < Self.maxAddressesPerAttempt {
                triedAddresses += 1
                let outcome = await client.deliver(
                    host: host.name, address: address, port: route.port, sender: sender, recipients: recipients,
                    message: message, requireSMTPUTF8: requiresSMTPUTF8, eightBit: eightBit)
                logger.info("outbound attempt", metadata: [
                    "host": "\(host.name)", "address": "\(address)", "tls": "\(outcome.usedTLS)", "summary": "\(outcome.transcriptSummary)",
                ])
                if let failure = outcome.sessionFailure {
                    let text = "smtp; " + (failure.reply.map(Self.describe) ?? failure.reason)
                    if failure.isPermanent {
                        let status = failure.reply.map { DeliveryStatusNotification.status(fromReply: Self.describe($0), permanent: true) } ?? "5.0.0"
                        return Dictionary(uniqueKeysWithValues: recipients.map {
                            ($0, RemoteDeliveryResult.permanent(status: status, diagnostic: text, remoteMTA: host.name))
                        })
                    }
                    lastTemporary = "\(text) (\(host.name))"
                    continue  // RFC 5321 §5.1: try the next address / MX host
                }
                var results: [String: RemoteDeliveryResult] = [:]
                for (recipient, result) in zip(recipients, outcome.recipients) {
                    switch result {
                    case .delivered(let reply):
                        results[recipient] = .delivered("\(host.name): \(Self.describe(reply))")
                    case .temporaryFailure(let reason):
                        results[recipient] = .temporary("smtp; \(reason) (\(host.name))")
                    case .permanentFailure(let reply):
                        let text = Self.describe(reply)
                        results[recipient] = .permanent(
                            status: DeliveryStatusNotification.status(fromReply: text, permanent: true),
                            diagnostic: "smtp; \(text)", remoteMTA: host.name)
                    }
                }
                return results
            }
        }
        return Dictionary(uniqueKeysWithValues: recipients.map { ($0, RemoteDeliveryResult.temporary(lastTemporary)) })
    }

    func clientConfiguration(_ config: NodeConfig, route: Route) -> SMTPClientConfiguration {
        let policy: SMTPClientTLSPolicy
        switch config.outboundTLS {
        case "none": policy = .none
        case "required": policy = .required
        default: policy = .opportunistic
        }
        var configuration = SMTPClientConfiguration(heloName: config.hostname, tls: policy)
        // RFC 7435: opportunistic TLS does not authenticate the peer; required TLS does.
        configuration.verifyCertificates = policy == .required
        if route.isSmarthost, let user = config.smarthostUser, let password = config.smarthostPassword {
            configuration.credentials = SMTPClientCredentials(username: user, password: password)
        }
        return configuration
    }

    static func describe(_ reply: SMTPClientReply) -> String {
        DeliveryStatusNotification.clean("\(reply.code) \(reply.lines.joined(separator: " "))")
    }
}

/// One resolver per configured DNS server (svcpkgDnsServer may change at run time).
final class DNSResolverCache: Sendable {
    private let current = NIOLockedValueBox<(key: String, resolver: DNSResolver)?>(nil)

    func resolver(for config: NodeConfig, eventLoopGroup: any EventLoopGroup, logger: Logger) -> DNSResolver {
        let key = config.dnsServer ?? "system"
        return current.withLockedValue { entry in
            if let entry, entry.key == key { return entry.resolver }
            let servers: [DNSServer]
            if let configured = config.dnsServer, let parsed = HostPort.parse(configured, defaultPort: 53) {
                servers = [DNSServer(host: parsed.host, port: parsed.port)]
            } else {
                servers = DNSResolver.systemServers()
            }
            let resolver = DNSResolver(servers: servers, eventLoopGroup: eventLoopGroup, timeout: .seconds(3), attempts: 2, logger: logger)
            entry = (key, resolver)
            return resolver
        }
    }
}

/// MailAuth's DNS view on the cluster resolver.
struct MailAuthDNS: MailAuthResolver {
    let resolver: DNSResolver

    func txt(_ name: String) async throws(MailAuthDNSError) -> [String] {
        do { return try await resolver.txt(name) } catch { throw Self.map(error) }
    }

    func a(_ name: String) async throws(MailAuthDNSError) -> [String] {
        do { return try await resolver.a(name) } catch { throw Self.map(error) }
    }

    func aaaa(_ name: String) async throws(MailAuthDNSError) -> [String] {
        do { return try await resolver.aaaa(name) } catch { throw Self.map(error) }
    }

    func mx(_ name: String) async throws(MailAuthDNSError) -> [MailAuthMXRecord] {
        do { return try await resolver.mx(name).map { MailAuthMXRecord(preference: $0.preference, exchange: $0.exchange) } } catch {
            throw Self.map(error)
        }
    }

    func ptr(_ ip: String) async throws(MailAuthDNSError) -> [String] {
        do { return try await resolver.ptr(ip) } catch { throw Self.map(error) }
    }

    static func map(_ error: DNSLookupError) -> MailAuthDNSError {
        if case .noSuchDomain = error { return .noSuchDomain }
        return .temporary("\(error)")
    }
}
