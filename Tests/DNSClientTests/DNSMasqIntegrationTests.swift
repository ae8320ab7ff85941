import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import DNSClient

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// End to end against a real dnsmasq (Debian's dnsmasq-base) on 127.0.0.1 at a random port,
/// serving only records given on its command line.
@Suite(
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: DNSMasq.path),
        "dnsmasq is not installed (apt-get install -y dnsmasq-base); skipping the end-to-end DNS test"),
    .serialized
)
struct DNSMasqIntegrationTests {
    static let longSPF = "v=spf1 " + (1...30).map { "ip4:192.0.2.\($0)" }.joined(separator: " ") + " -all"
    static let bigStrings = (0..<12).map { "big-\($0)-" + String(repeating: "z", count: 190) }

    static var records: [String] {
        [
            "--mx-host=example.test,mx2.example.test,20",
            "--mx-host=example.test,mx1.example.test,10",
            "--host-record=mx1.example.test,192.0.2.10,2001:db8::10",
            "--host-record=mx2.example.test,192.0.2.20",
            "--cname=www.example.test,mx1.example.test",
            "--txt-record=example.test,\(longSPF)",
            "--txt-record=_dmarc.example.test,v=DMARC1; p=reject",
            "--txt-record=sel1._domainkey.example.test,v=DKIM1; k=rsa; p=MIGf",
            // Mail-auth names answered NXDOMAIN unless listed; the rest of example.test is local.
            "--local=/example.test/",
        ] + bigStrings.map { "--txt-record=big.example.test,\($0)" }
    }

    @Test func resolvesAgainstDNSMasq() async throws {
        let dnsmasq = try await DNSMasq.start(arguments: Self.records)
        defer { dnsmasq.stop() }
        let dns = DNSResolver(
            servers: [dnsmasq.server], eventLoopGroup: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(2),
            attempts: 2, logger: Logger(label: "dns-test"), cache: DNSCache(maxEntries: 0))

        #expect(
            try await dns.mx("example.test") == [
                MXRecord(preference: 10, exchange: "mx1.example.test"),
                MXRecord(preference: 20, exchange: "mx2.example.test"),
            ])
        #expect(try await dns.addresses("MX1.example.test.") == ["192.0.2.10", "2001:db8::10"])
        #expect(try await dns.a("mx2.example.test") == ["192.0.2.20"])
        #expect(try await dns.aaaa("mx2.example.test") == [])
        #expect(try await dns.a("www.example.test") == ["192.0.2.10"])  // through the CNAME
        #expect(try await dns.mx("mx1.example.test") == [])  // NODATA
        #expect(try await dns.ptr("192.0.2.10") == ["mx1.example.test"])
        #expect(try await dns.ptr("2001:db8::10") == ["mx1.example.test"])
        #expect(try await dns.txt("_dmarc.example.test") == ["v=DMARC1; p=reject"])
        #expect(try await dns.txt("sel1._domainkey.example.test") == ["v=DKIM1; k=rsa; p=MIGf"])
        await #expect(throws: DNSLookupError.noSuchDomain("nope.example.test")) { try await dns.a("nope.example.test") }
        // No upstream server: dnsmasq refuses names it has no data for.
        await #expect(throws: DNSLookupError.serverFailure("other.invalid", rcode: 5)) {
            try await dns.a("other.invalid")
        }
    }

    @Test func longTXTIsSplitIntoStringsAndJoinedAgain() async throws {
        let dnsmasq = try await DNSMasq.start(arguments: Self.records)
        defer { dnsmasq.stop() }
        // dnsmasq splits text longer than 255 octets into 255-octet character-strings.
        let message = try await DNSMasq.rawUDP(question: "example.test", type: .txt, server: dnsmasq.server)
        guard case .txt(let strings) = message.answers.first?.data else {
            Issue.record("no TXT answer: \(message)")
            return
        }
        #expect(Self.longSPF.utf8.count > 255)
        #expect(strings.count == 2)
        #expect(strings.first?.count == 255)

        let dns = DNSResolver(
            servers: [dnsmasq.server], eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "dns-test"))
        #expect(try await dns.txt("example.test") == [Self.longSPF])
    }

    @Test func truncatedUDPAnswerFallsBackToTCP() async throws {
        let dnsmasq = try await DNSMasq.start(arguments: Self.records)
        defer { dnsmasq.stop() }
        // Twelve 200-octet strings do not fit the 1232 octets advertised: dnsmasq sets TC.
        let udp = try await DNSMasq.rawUDP(question: "big.example.test", type: .txt, server: dnsmasq.server)
        #expect(udp.header.isTruncated)

        let dns = DNSResolver(
            servers: [dnsmasq.server], eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "dns-test"))
        #expect(try await dns.txt("big.example.test").sorted() == Self.bigStrings.sorted())
    }
}

/// A dnsmasq child process for one test.
final class DNSMasq: Sendable {
    static let path = "/usr/sbin/dnsmasq"

    let server: DNSServer
    private let process: Process

    private init(server: DNSServer, process: Process) {
        self.server = server
        self.process = process
    }

    /// Starts dnsmasq at a random high port (another try if that port is taken) and waits
    /// until it answers.
    static func start(arguments: [String]) async throws -> DNSMasq {
        for _ in 0..<5 {
            let port = Int.random(in: 20_000..<60_000)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments =
                [
                    "--no-daemon", "--no-resolv", "--no-hosts", "--port=\(port)", "--listen-address=127.0.0.1",
                    "--bind-interfaces", "--conf-file=/dev/null", "--pid-file=", "--cache-size=0",
                ] + arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            let dnsmasq = DNSMasq(server: DNSServer(host: "127.0.0.1", port: port), process: process)
            if try await dnsmasq.waitUntilReady() { return dnsmasq }
            dnsmasq.stop()
        }
        throw DNSMasqFailure(description: "dnsmasq did not start on any of 5 random ports")
    }

    private func waitUntilReady() async throws -> Bool {
        let probe = DNSResolver(
            servers: [server], eventLoopGroup: MultiThreadedEventLoopGroup.singleton, timeout: .milliseconds(100),
            attempts: 1, logger: Logger(label: "dns-test-probe"), cache: DNSCache(maxEntries: 0))
        for _ in 0..<50 {
            guard process.isRunning else { return false }
            if (try? await probe.mx("example.test")) != nil { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// SIGKILL, not `terminate()`: the child inherits the test runner's signal mask, in which
    /// SIGTERM is blocked, so a SIGTERM would never arrive and `waitUntilExit` would spin.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// One UDP query through the transport, decoded, to look at what dnsmasq sent itself.
    static func rawUDP(question text: String, type: DNSRecordType, server: DNSServer) async throws -> DNSMessage {
        let question = DNSQuestion(name: try DNSName.validated(text), type: type)
        let id = UInt16.random(in: .min ... .max)
        let transport = DNSTransport(eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        let bytes = try await transport.exchangeUDP(
            DNSMessage.query(id: id, question: question),
            with: try SocketAddress(ipAddress: server.host, port: server.port),
            timeout: .seconds(2), accepts: { DNSMessage.isResponse($0, to: id, question: question) })
        return try DNSMessage(decoding: bytes)
    }
}

struct DNSMasqFailure: Error, CustomStringConvertible {
    var description: String
}
