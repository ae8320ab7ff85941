// DNSClient: a stub resolver that speaks DNS itself (no getaddrinfo, no libresolv), so the
// server it asks comes from LDAP configuration and tests can point it at a local dnsmasq.
//
// Supported:
// - Queries for A, AAAA, MX, TXT, PTR (and the message layer reads NS, CNAME, SOA) to one or
//   more recursive servers given as IP literals, in order, `attempts` rounds, `timeout` each.
// - UDP from a random port with a random 16-bit ID (RFC 5452 §9.2), EDNS0 advertising 1232
//   octets (RFC 6891), a retry without EDNS on FORMERR, and a retry over TCP when the answer
//   is truncated (TC bit, RFC 7766 §5).
// - CNAME chains inside the answer section, up to `DNSAnswer.maxCNAMEChain` links.
// - NXDOMAIN kept distinct from NODATA (empty result) and from temporary failures.
// - A bounded TTL cache (10 000 entries, positive answers ≤ 1 h, negative ≤ 5 min, only
//   with an SOA; failures are never cached).
// - /etc/resolv.conf `nameserver` lines, for when the configuration names no server.
//
// Not supported:
// - DNSSEC validation (the DO bit is not set; the AD bit is not looked at): answers are
//   trusted as far as the configured recursive server is.
// - Iterative resolution (the servers must do recursion), DNS over TLS/HTTPS, TCP connection
//   reuse or pipelining, resolv.conf `search`/`domain`/`options`, /etc/hosts.
// - Following a CNAME chain that the server did not put in the answer: the result is then
//   empty (NODATA), as a recursive server always includes the chain it followed.
// - Names outside LDH + underscore: internationalised names must arrive IDNA-encoded.
//
// Threading: every query runs on NIO channels of the given event loop group; nothing here
// blocks an event loop except `systemServers`, which reads a small file and is meant for startup.

import Foundation
import Logging
import NIOCore

public final class DNSResolver: Sendable {
    public let servers: [DNSServer]
    private let transport: DNSTransport
    private let timeout: TimeAmount
    private let attempts: Int
    private let logger: Logger
    let cache: DNSCache

    /// - Parameters:
    ///   - servers: recursive servers (IP literals), tried in order in each attempt.
    ///   - eventLoopGroup: must be able to open sockets (a `MultiThreadedEventLoopGroup`).
    ///   - timeout: how long to wait for one server's answer in one attempt (per transport).
    ///   - attempts: rounds over all servers (at least 1).
    public convenience init(
        servers: [DNSServer], eventLoopGroup: any EventLoopGroup, timeout: Duration = .seconds(3), attempts: Int = 2,
        logger: Logger
    ) {
        self.init(
            servers: servers, eventLoopGroup: eventLoopGroup, timeout: timeout, attempts: attempts, logger: logger,
            cache: DNSCache())
    }

    init(
        servers: [DNSServer], eventLoopGroup: any EventLoopGroup, timeout: Duration, attempts: Int, logger: Logger,
        cache: DNSCache
    ) {
        self.servers = servers
        self.transport = DNSTransport(eventLoopGroup: eventLoopGroup)
        self.timeout = Self.timeAmount(timeout)
        self.attempts = max(1, attempts)
        self.logger = logger
        self.cache = cache
    }

    /// Reads the `nameserver` lines of resolv.conf(5). As the C library does, a missing file
    /// or one without usable entries means the server on the local machine (127.0.0.1).
    /// Link-local IPv6 entries with a zone (`fe80::1%eth0`) are skipped. Blocking file read:
    /// call at startup or from a thread pool, not on an event loop.
    public static func systemServers(resolvConf: String = "/etc/resolv.conf") -> [DNSServer] {
        let text = (try? String(contentsOfFile: resolvConf, encoding: .utf8)) ?? ""
        let servers = parseResolvConf(text)
        return servers.isEmpty ? [DNSServer(host: "127.0.0.1")] : servers
    }

    static func parseResolvConf(_ text: String) -> [DNSServer] {
        var servers: [DNSServer] = []
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0] == "nameserver" else { continue }
            let host = words[1]
            guard IPAddressText.parseIPv4(host) != nil || IPAddressText.parseIPv6(host) != nil else { continue }
            let server = DNSServer(host: String(host))
            if !servers.contains(server) { servers.append(server) }
        }
        return servers
    }

    // MARK: - Lookups

    /// Mail exchangers sorted by preference (then name). Empty: the domain exists without MX,
    /// and RFC 5321 §5.1 says to use its address records. A null MX (RFC 7505) comes back as
    /// `[MXRecord(preference: 0, exchange: ".")]`.
    public func mx(_ domain: String) async throws(DNSLookupError) -> [MXRecord] {
        let records = try await lookup(domain, type: .mx)
        return records.compactMap { data -> MXRecord? in
            guard case .mx(let preference, let exchange) = data else { return nil }
            return MXRecord(preference: preference, exchange: exchange.description)
        }.sorted { ($0.preference, $0.exchange) < ($1.preference, $1.exchange) }
    }

    /// A then AAAA records, asked for at the same time. A temporary failure of one family is
    /// ignored when the other has addresses (the caller can deliver); NXDOMAIN for either is thrown.
    public func addresses(_ host: String) async throws(DNSLookupError) -> [String] {
        async let v4 = Self.result { () async throws(DNSLookupError) -> [String] in try await self.a(host) }
        async let v6 = Self.result { () async throws(DNSLookupError) -> [String] in try await self.aaaa(host) }
        switch (await v4, await v6) {
        case (.success(let four), .success(let six)):
            return four + six
        case (.failure(.noSuchDomain(let name)), _), (_, .failure(.noSuchDomain(let name))):
            throw .noSuchDomain(name)
        case (.success(let four), .failure(let error)) where !four.isEmpty:
            logger.debug(
                "DNS: AAAA lookup failed, using A records only", metadata: ["dns.name": "\(host)", "error": "\(error)"])
            return four
        case (.failure(let error), .success(let six)) where !six.isEmpty:
            logger.debug(
                "DNS: A lookup failed, using AAAA records only", metadata: ["dns.name": "\(host)", "error": "\(error)"])
            return six
        case (.failure(let error), _), (_, .failure(let error)):
            throw error
        }
    }

    public func a(_ host: String) async throws(DNSLookupError) -> [String] {
        try await lookup(host, type: .a).compactMap { data in
            guard case .a(let bytes) = data else { return nil }
            return IPAddressText.formatIPv4(bytes)
        }
    }

    public func aaaa(_ host: String) async throws(DNSLookupError) -> [String] {
        try await lookup(host, type: .aaaa).compactMap { data in
            guard case .aaaa(let bytes) = data else { return nil }
            return IPAddressText.formatIPv6(bytes)
        }
    }

    /// One string per TXT record, its character-strings concatenated without separator
    /// (RFC 7208 §3.3, RFC 6376 §3.6.2.2). Octets that are not UTF-8 become U+FFFD.
    public func txt(_ name: String) async throws(DNSLookupError) -> [String] {
        try await lookup(name, type: .txt).compactMap { data in
            guard case .txt(let strings) = data else { return nil }
            return String(decoding: strings.joined(), as: UTF8.self)
        }
    }

    /// Names for an IPv4 or IPv6 address (in-addr.arpa / ip6.arpa), lowercased, no trailing dot.
    public func ptr(_ ip: String) async throws(DNSLookupError) -> [String] {
        let name = try DNSName.reverse(ipAddress: ip)
        return try await lookup(name, type: .ptr).compactMap { data in
            guard case .ptr(let target) = data else { return nil }
            return target.description
        }
    }

    // MARK: - Query machinery

    private static func result(
        _ body: () async throws(DNSLookupError) -> [String]
    ) async -> Result<[String], DNSLookupError> {
        do {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }

    private func lookup(_ text: String, type: DNSRecordType) async throws(DNSLookupError) -> [DNSRecordData] {
        try await lookup(try DNSName.validated(text), type: type)
    }

    func lookup(_ name: DNSName, type: DNSRecordType) async throws(DNSLookupError) -> [DNSRecordData] {
        let key = DNSCache.Key(name: name, type: type.rawValue)
        if let cached = cache.value(for: key) {
            switch cached {
            case .records(let records): return records
            case .noData: return []
            case .nameError: throw .noSuchDomain(name.description)
            }
        }
        let question = DNSQuestion(name: name, type: type)
        let answer = try await resolve(question)
        cache.store(answer, for: key)
        switch answer {
        case .records(let records, _): return records
        case .noData: return []
        case .nameError: throw .noSuchDomain(name.description)
        case .failure(let rcode): throw .serverFailure(name.description, rcode: rcode)
        }
    }

    /// Asks each server in turn, `attempts` rounds, until one gives a definite answer
    /// (records, NODATA or NXDOMAIN). The error thrown is the last one seen.
    private func resolve(_ question: DNSQuestion) async throws(DNSLookupError) -> DNSAnswer {
        let name = question.name.description
        var lastError = DNSLookupError.timeout(name)
        if servers.isEmpty {
            logger.error("DNS: no DNS server configured", metadata: ["dns.name": "\(name)"])
        }
        for _ in 0..<attempts {
            for server in servers {
                guard !Task.isCancelled else { throw .timeout(name) }
                let metadata: Logger.Metadata = [
                    "dns.name": "\(name)", "dns.type": "\(question.type)", "dns.server": "\(server)",
                ]
                let address: SocketAddress
                do {
                    address = try SocketAddress(ipAddress: server.host, port: server.port)
                } catch {
                    logger.error("DNS: configured server is not an IP address; skipped", metadata: metadata)
                    continue
                }
                do {
                    let message = try await exchange(question, with: address)
                    let answer = try DNSAnswer.interpret(message, question: question)
                    if case .failure(let rcode) = answer {
                        logger.debug(
                            "DNS: server answered \(DNSLookupError.rcodeName(rcode)); trying the next",
                            metadata: metadata)
                        lastError = .serverFailure(name, rcode: rcode)
                        continue
                    }
                    return answer
                } catch let error as DNSWireError {
                    logger.notice("DNS: malformed response: \(error)", metadata: metadata)
                    lastError = .malformedResponse("\(name) from \(server): \(error)")
                } catch {
                    logger.debug("DNS: no answer: \(error)", metadata: metadata)
                    lastError = .timeout(name)
                }
            }
        }
        throw lastError
    }

    /// One server: UDP with EDNS; without EDNS after FORMERR; over TCP after TC.
    private func exchange(_ question: DNSQuestion, with server: SocketAddress) async throws -> DNSMessage {
        var edns = true
        while true {
            let id = UInt16.random(in: .min ... .max)
            let query = DNSMessage.query(id: id, question: question, edns: edns)
            let accepts: @Sendable ([UInt8]) -> Bool = { DNSMessage.isResponse($0, to: id, question: question) }
            var message = try DNSMessage(
                decoding: try await transport.exchangeUDP(query, with: server, timeout: timeout, accepts: accepts))
            if message.header.isTruncated {
                logger.debug(
                    "DNS: truncated UDP answer; asking over TCP",
                    metadata: ["dns.name": "\(question.name)", "dns.server": "\(server)"])
                message = try DNSMessage(
                    decoding: try await transport.exchangeTCP(query, with: server, timeout: timeout, accepts: accepts))
                guard !message.header.isTruncated else { throw DNSWireError.truncatedOverTCP }
            }
            // RFC 6891 §7: a server that does not know EDNS may answer FORMERR without an OPT.
            if edns && message.rcode == DNSResponseCode.formatError
                && !message.additionals.contains(where: { $0.type == DNSResourceRecord.typeOPT })
            {
                edns = false
                continue
            }
            return message
        }
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        // Clamped to 1 ms ... 1 h: zero would never wait, a huge value would overflow.
        let (seconds, attoseconds) = duration.components
        guard seconds < 3_600 else { return .hours(1) }
        return .nanoseconds(max(seconds * 1_000_000_000 + attoseconds / 1_000_000_000, 1_000_000))
    }
}
