import Logging
import NIOCore
import NIOPosix
import Testing

@testable import DNSClient

/// The resolver against scripted servers on loopback: transport, retries, failover, TC → TCP.
@Suite struct DNSResolverTests {
    let group = MultiThreadedEventLoopGroup.singleton

    func resolver(
        _ servers: [DNSServer], timeout: Duration = .milliseconds(300), attempts: Int = 2, cache: Bool = false
    )
        -> DNSResolver
    {
        DNSResolver(
            servers: servers, eventLoopGroup: group, timeout: timeout, attempts: attempts,
            logger: Logger(label: "dns-test"), cache: DNSCache(maxEntries: cache ? 100 : 0))
    }

    func withServer<T>(
        _ respond: @escaping FakeDNSServer.Responder, _ body: (FakeDNSServer) async throws -> T
    ) async throws -> T {
        let server = try await FakeDNSServer.start(group: group, respond: respond)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    static func qname(_ query: DNSMessage) -> String { query.questions.first?.name.description ?? "" }

    @Test func mxSortedAndLowercased() async throws {
        try await withServer({ query, _ in
            [
                reply(
                    to: query,
                    answers: [
                        TestRecord(name: "example.test", type: .mx, rdata: RData.mx(20, "MX2.Example.test")),
                        TestRecord(name: "example.test", type: .mx, rdata: RData.mx(10, "mx1.example.test.")),
                        TestRecord(name: "example.test", type: .mx, rdata: RData.mx(10, "mx0.example.test")),
                    ])
            ]
        }) { server throws in
            let records = try await resolver([server.server]).mx("Example.Test.")
            #expect(
                records == [
                    MXRecord(preference: 10, exchange: "mx0.example.test"),
                    MXRecord(preference: 10, exchange: "mx1.example.test"),
                    MXRecord(preference: 20, exchange: "mx2.example.test"),
                ])
            #expect(server.queries.first?.query.questions.first?.type == DNSRecordType.mx.rawValue)
            #expect(server.queries.first?.query.additionals.first?.recordClass == 1232)
        }
    }

    @Test func nullMX() async throws {
        try await withServer({ query, _ in
            [reply(to: query, answers: [TestRecord(name: "nomail.test", type: .mx, rdata: RData.mx(0, ""))])]
        }) { server throws in
            #expect(try await resolver([server.server]).mx("nomail.test") == [MXRecord(preference: 0, exchange: ".")])
        }
    }

    @Test func txtStringsAreConcatenatedPerRecord() async throws {
        try await withServer({ query, _ in
            [
                reply(
                    to: query,
                    answers: [
                        TestRecord(
                            name: "example.test", type: .txt, rdata: RData.txt(["v=spf1 ip4:192.0.2.0/24", " -all"])),
                        TestRecord(name: "example.test", type: .txt, rdata: RData.txt(["other"])),
                    ])
            ]
        }) { server throws in
            #expect(
                try await resolver([server.server]).txt("example.test") == ["v=spf1 ip4:192.0.2.0/24 -all", "other"])
        }
    }

    @Test func addressesAreAThenAAAA() async throws {
        try await withServer({ query, _ in
            switch query.questions.first?.type {
            case DNSRecordType.a.rawValue:
                [reply(to: query, answers: [TestRecord(name: "h.test", type: .a, rdata: [192, 0, 2, 7])])]
            default:
                [reply(to: query, answers: [TestRecord(name: "h.test", type: .aaaa, rdata: RData.aaaa("2001:db8::7"))])]
            }
        }) { server throws in
            #expect(try await resolver([server.server]).addresses("h.test") == ["192.0.2.7", "2001:db8::7"])
        }
    }

    @Test func addressesSurviveAFailingFamily() async throws {
        try await withServer({ query, _ in
            switch query.questions.first?.type {
            case DNSRecordType.a.rawValue:
                [reply(to: query, answers: [TestRecord(name: "h.test", type: .a, rdata: [192, 0, 2, 7])])]
            default:
                [reply(to: query, rcode: 2)]
            }
        }) { server throws in
            #expect(try await resolver([server.server], attempts: 1).addresses("h.test") == ["192.0.2.7"])
        }
    }

    @Test func ptrLooksUpTheReverseName() async throws {
        try await withServer({ query, _ in
            guard Self.qname(query) == "7.2.0.192.in-addr.arpa" else { return [reply(to: query, rcode: 3)] }
            return [
                reply(
                    to: query,
                    answers: [
                        TestRecord(name: "7.2.0.192.in-addr.arpa", type: .ptr, rdata: RData.name("Host.Example.test"))
                    ])
            ]
        }) { server throws in
            #expect(try await resolver([server.server]).ptr("192.0.2.7") == ["host.example.test"])
        }
    }

    @Test func nxdomainAndNodataAreDistinct() async throws {
        try await withServer({ query, _ in
            Self.qname(query) == "gone.test" ? [reply(to: query, rcode: 3)] : [reply(to: query)]
        }) { server throws in
            let dns = resolver([server.server])
            await #expect(throws: DNSLookupError.noSuchDomain("gone.test")) { try await dns.mx("gone.test") }
            #expect(try await dns.mx("empty.test") == [])
            #expect(server.udpCount == 2)  // definite answers: no retry
        }
    }

    @Test func truncatedAnswerIsRepeatedOverTCP() async throws {
        let strings = (0..<30).map { "record \($0) " + String(repeating: "x", count: 100) }
        try await withServer({ query, overTCP in
            guard overTCP else { return [reply(to: query, truncated: true)] }
            return [
                reply(
                    to: query, answers: strings.map { TestRecord(name: "big.test", type: .txt, rdata: RData.txt([$0])) }
                )
            ]
        }) { server throws in
            #expect(try await resolver([server.server]).txt("big.test") == strings)
            #expect(server.udpCount == 1)
            #expect(server.tcpCount == 1)
        }
    }

    @Test func formerrWithoutOPTIsRetriedWithoutEDNS() async throws {
        try await withServer({ query, _ in
            if !query.additionals.isEmpty { return [reply(to: query, rcode: 1, edns: false)] }
            return [
                reply(to: query, answers: [TestRecord(name: "old.test", type: .a, rdata: [192, 0, 2, 1])], edns: false)
            ]
        }) { server throws in
            #expect(try await resolver([server.server]).a("old.test") == ["192.0.2.1"])
            #expect(server.queries.map { $0.query.additionals.count } == [1, 0])
        }
    }

    @Test func strayDatagramsAreIgnored() async throws {
        try await withServer({ query, _ in
            var wrongQuestion = WireBuilder(header: query.header.id, flags: 0x8180, counts: (1, 0, 0, 0))
            wrongQuestion.question("evil.test", type: 1)
            return [
                reply(
                    to: query, answers: [TestRecord(name: "h.test", type: .a, rdata: [6, 6, 6, 6])],
                    id: query.header.id &+ 1),
                wrongQuestion.bytes,
                [0xFF, 0x00],
                reply(to: query, answers: [TestRecord(name: "h.test", type: .a, rdata: [192, 0, 2, 1])]),
            ]
        }) { server throws in
            #expect(try await resolver([server.server]).a("h.test") == ["192.0.2.1"])
        }
    }

    @Test func silentServerTimesOutAndTheNextOneAnswers() async throws {
        try await withServer({ _, _ in [] }) { silent throws in
            try await withServer({ query, _ in
                [reply(to: query, answers: [TestRecord(name: "h.test", type: .a, rdata: [192, 0, 2, 1])])]
            }) { good throws in
                let clock = ContinuousClock()
                let start = clock.now
                #expect(
                    try await resolver([silent.server, good.server], timeout: .milliseconds(200)).a("h.test") == [
                        "192.0.2.1"
                    ])
                #expect(clock.now - start >= .milliseconds(190))
                #expect(silent.udpCount == 1)
            }
        }
    }

    @Test func allSilentIsATimeoutAfterEveryAttempt() async throws {
        try await withServer({ _, _ in [] }) { silent throws in
            await #expect(throws: DNSLookupError.timeout("h.test")) {
                try await resolver([silent.server], timeout: .milliseconds(100), attempts: 3).a("h.test")
            }
            #expect(silent.udpCount == 3)
        }
    }

    @Test func serverFailureIsRetriedThenReported() async throws {
        try await withServer({ query, _ in [reply(to: query, rcode: 2)] }) { first throws in
            try await withServer({ query, _ in [reply(to: query, rcode: 5)] }) { second throws in
                await #expect(throws: DNSLookupError.serverFailure("h.test", rcode: 5)) {
                    try await resolver([first.server, second.server], attempts: 2).a("h.test")
                }
                #expect(first.udpCount == 2)
                #expect(second.udpCount == 2)
            }
        }
    }

    @Test func malformedAnswerIsReported() async throws {
        try await withServer({ query, _ in
            var bytes = reply(to: query, answers: [TestRecord(name: "h.test", type: .a, rdata: [1, 2, 3, 4])])
            bytes[7] = 9  // ANCOUNT 9 with one record
            return [bytes]
        }) { server throws in
            do throws(DNSLookupError) {
                _ = try await resolver([server.server], attempts: 1).a("h.test")
                Issue.record("expected an error")
            } catch {
                guard case .malformedResponse(let detail) = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                #expect(detail.contains("h.test from 127.0.0.1:\(server.server.port)"))
            }
        }
    }

    @Test func unreachableServerFailsFast() async throws {
        let probe = try await DatagramBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(probe.localAddress?.port)
        try await probe.close().get()
        let clock = ContinuousClock()
        let start = clock.now
        await #expect(throws: DNSLookupError.timeout("h.test")) {
            try await resolver([DNSServer(host: "127.0.0.1", port: port)], timeout: .seconds(5)).a("h.test")
        }
        #expect(clock.now - start < .seconds(4))  // ICMP port unreachable, not the timeout
    }

    @Test func invalidNamesAndServersSendNothing() async throws {
        try await withServer({ query, _ in [reply(to: query)] }) { server throws in
            let dns = resolver([DNSServer(host: "dns.example.test"), server.server])
            await #expect(throws: DNSLookupError.invalidName("exa mple.test")) { try await dns.mx("exa mple.test") }
            await #expect(throws: DNSLookupError.invalidName("not-an-ip")) { try await dns.ptr("not-an-ip") }
            #expect(server.udpCount == 0)
            #expect(try await dns.mx("example.test") == [])  // the host-name server is skipped
            #expect(server.udpCount == 1)
        }
    }

    @Test func noServersIsATimeout() async {
        await #expect(throws: DNSLookupError.timeout("h.test")) { try await resolver([]).a("h.test") }
    }

    @Test func answersAreCached() async throws {
        try await withServer({ query, _ in
            if Self.qname(query) == "gone.test" {
                return [
                    reply(
                        to: query, rcode: 3,
                        authorities: [TestRecord(name: "test", type: .soa, rdata: RData.soa(minimum: 60))])
                ]
            }
            return [reply(to: query, answers: [TestRecord(name: "h.test", type: .a, ttl: 60, rdata: [192, 0, 2, 1])])]
        }) { server throws in
            let dns = resolver([server.server], cache: true)
            #expect(try await dns.a("h.test") == ["192.0.2.1"])
            #expect(try await dns.a("H.TEST.") == ["192.0.2.1"])
            await #expect(throws: DNSLookupError.noSuchDomain("gone.test")) { try await dns.a("gone.test") }
            await #expect(throws: DNSLookupError.noSuchDomain("gone.test")) { try await dns.a("gone.test") }
            #expect(server.udpCount == 2)
        }
    }

    @Test func cancellationStopsTheLookup() async throws {
        try await withServer({ _, _ in [] }) { silent throws in
            let dns = resolver([silent.server], timeout: .seconds(10), attempts: 3)
            let task = Task { try await dns.a("h.test") }
            try await Task.sleep(for: .milliseconds(100))
            task.cancel()
            let clock = ContinuousClock()
            let start = clock.now
            await #expect(throws: DNSLookupError.timeout("h.test")) { try await task.value }
            #expect(clock.now - start < .seconds(2))
        }
    }
}
