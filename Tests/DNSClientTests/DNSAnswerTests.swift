import NIOCore
import Testing

@testable import DNSClient

@Suite struct DNSAnswerTests {
    static func name(_ text: String) -> DNSName { DNSName(labels: text.split(separator: ".").map { Array($0.utf8) }) }

    static func response(
        _ question: String, _ type: DNSRecordType, rcode: UInt16 = 0, answers: [TestRecord] = [],
        authorities: [TestRecord] = [], extendedRCODE: UInt8 = 0
    ) throws -> DNSMessage {
        var wire = WireBuilder(flags: 0x8180 | rcode, counts: (1, UInt16(answers.count), UInt16(authorities.count), 1))
        wire.question(question, type: type.rawValue)
        for record in answers + authorities {
            wire.record(record.name, type: record.type.rawValue, ttl: record.ttl, rdata: record.rdata)
        }
        wire.u8(0)
        wire.recordHeader(type: 41, recordClass: 1232, ttl: UInt32(extendedRCODE) << 24, rdata: [])
        return try DNSMessage(decoding: wire.bytes)
    }

    static func question(_ text: String, _ type: DNSRecordType) -> DNSQuestion {
        DNSQuestion(name: name(text), type: type)
    }

    @Test func directAnswer() throws {
        let message = try Self.response(
            "host.test", .a,
            answers: [
                TestRecord(name: "host.test", type: .a, ttl: 120, rdata: [192, 0, 2, 1]),
                TestRecord(name: "host.test", type: .a, ttl: 60, rdata: [192, 0, 2, 2]),
                TestRecord(name: "other.test", type: .a, rdata: [192, 0, 2, 3]),
                TestRecord(name: "host.test", type: .aaaa, rdata: RData.aaaa("2001:db8::1")),
            ])
        #expect(
            try DNSAnswer.interpret(message, question: Self.question("host.test", .a))
                == .records([.a([192, 0, 2, 1]), .a([192, 0, 2, 2])], ttl: 60))
    }

    @Test func followsCNAMEChainInAnyOrder() throws {
        let message = try Self.response(
            "www.test", .a,
            answers: [
                TestRecord(name: "edge.cdn.test", type: .a, ttl: 300, rdata: [198, 51, 100, 7]),
                TestRecord(name: "web.test", type: .cname, ttl: 30, rdata: RData.name("Edge.CDN.test")),
                TestRecord(name: "www.test", type: .cname, ttl: 600, rdata: RData.name("web.test")),
            ])
        #expect(
            try DNSAnswer.interpret(message, question: Self.question("WWW.test", .a))
                == .records([.a([198, 51, 100, 7])], ttl: 30))
    }

    @Test func chainWithoutFinalRecordsIsNoData() throws {
        let message = try Self.response(
            "www.test", .mx,
            answers: [
                TestRecord(name: "www.test", type: .cname, rdata: RData.name("web.test"))
            ])
        #expect(try DNSAnswer.interpret(message, question: Self.question("www.test", .mx)) == .noData(negativeTTL: nil))
    }

    @Test func chainEndingInNXDOMAIN() throws {
        let message = try Self.response(
            "www.test", .a, rcode: 3,
            answers: [
                TestRecord(name: "www.test", type: .cname, rdata: RData.name("gone.test"))
            ])
        #expect(
            try DNSAnswer.interpret(message, question: Self.question("www.test", .a)) == .nameError(negativeTTL: nil))
    }

    @Test func cnameLoopIsRefused() throws {
        let message = try Self.response(
            "a.test", .a,
            answers: [
                TestRecord(name: "a.test", type: .cname, rdata: RData.name("b.test")),
                TestRecord(name: "b.test", type: .cname, rdata: RData.name("a.test")),
            ])
        #expect(throws: DNSWireError.cnameChainTooLong) {
            try DNSAnswer.interpret(message, question: Self.question("a.test", .a))
        }
    }

    @Test(arguments: [(DNSAnswer.maxCNAMEChain, true), (DNSAnswer.maxCNAMEChain + 1, false)])
    func chainLengthLimit(links: Int, accepted: Bool) throws {
        var answers = (0..<links).map {
            TestRecord(name: "n\($0).test", type: .cname, rdata: RData.name("n\($0 + 1).test"))
        }
        answers.append(TestRecord(name: "n\(links).test", type: .a, rdata: [192, 0, 2, 9]))
        let message = try Self.response("n0.test", .a, answers: answers)
        let result = Result { () throws(DNSWireError) -> DNSAnswer in
            try DNSAnswer.interpret(message, question: Self.question("n0.test", .a))
        }
        #expect((try? result.get()) == (accepted ? .records([.a([192, 0, 2, 9])], ttl: 300) : nil))
    }

    @Test func negativeAnswersTakeTTLFromSOA() throws {
        let soa = TestRecord(name: "test", type: .soa, ttl: 120, rdata: RData.soa(minimum: 900))
        let nx = try Self.response("gone.test", .a, rcode: 3, authorities: [soa])
        #expect(try DNSAnswer.interpret(nx, question: Self.question("gone.test", .a)) == .nameError(negativeTTL: 120))
        let soaShort = TestRecord(name: "test", type: .soa, ttl: 3600, rdata: RData.soa(minimum: 60))
        let nodata = try Self.response("host.test", .mx, authorities: [soaShort])
        #expect(try DNSAnswer.interpret(nodata, question: Self.question("host.test", .mx)) == .noData(negativeTTL: 60))
    }

    @Test(arguments: [(UInt16(2), UInt8(0), 2), (5, 0, 5), (4, 0, 4), (1, 0, 1), (0, 1, 16)])
    func errorRCODEsAreFailures(rcode: UInt16, extended: UInt8, expected: Int) throws {
        let message = try Self.response("host.test", .a, rcode: rcode, extendedRCODE: extended)
        #expect(try DNSAnswer.interpret(message, question: Self.question("host.test", .a)) == .failure(rcode: expected))
    }

    @Test func wrongClassIsIgnored() throws {
        var wire = WireBuilder(counts: (1, 1, 0, 0))
        wire.question("host.test", type: 16)
        wire.record("host.test", type: 16, recordClass: 3, rdata: RData.txt(["chaos"]))
        let message = try DNSMessage(decoding: wire.bytes)
        #expect(
            try DNSAnswer.interpret(message, question: Self.question("host.test", .txt)) == .noData(negativeTTL: nil))
    }
}

@Suite struct DNSCacheTests {
    static let key = DNSCache.Key(name: DNSName(labels: [Array("host".utf8)]), type: 1)

    @Test func keepsAnswersForTheirTTL() {
        let cache = DNSCache()
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        cache.store(.records([.a([1, 2, 3, 4])], ttl: 60), for: Self.key, now: now)
        #expect(cache.value(for: Self.key, now: now + .seconds(59)) == .records([.a([1, 2, 3, 4])]))
        #expect(cache.value(for: Self.key, now: now + .seconds(60)) == nil)
        #expect(cache.count == 0)
    }

    @Test func capsTTLs() {
        let cache = DNSCache(maxTTL: 10, maxNegativeTTL: 5)
        let now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
        cache.store(.records([], ttl: 86_400), for: Self.key, now: now)
        #expect(cache.value(for: Self.key, now: now + .seconds(11)) == nil)
        cache.store(.nameError(negativeTTL: 86_400), for: Self.key, now: now)
        #expect(cache.value(for: Self.key, now: now + .seconds(4)) == .nameError)
        #expect(cache.value(for: Self.key, now: now + .seconds(6)) == nil)
    }

    @Test(arguments: [
        DNSAnswer.failure(rcode: 2), .noData(negativeTTL: nil), .nameError(negativeTTL: nil),
        .records([.a([1, 2, 3, 4])], ttl: 0),
    ])
    func doesNotCache(answer: DNSAnswer) {
        let cache = DNSCache()
        cache.store(answer, for: Self.key)
        #expect(cache.value(for: Self.key) == nil)
    }

    @Test func staysBounded() {
        let cache = DNSCache(maxEntries: 100)
        for index in 0..<1_000 {
            let key = DNSCache.Key(name: DNSName(labels: [Array("h\(index)".utf8)]), type: 1)
            cache.store(.records([.a([1, 2, 3, 4])], ttl: 300), for: key)
            #expect(cache.count <= 100)
        }
        let last = DNSCache.Key(name: DNSName(labels: [Array("h999".utf8)]), type: 1)
        #expect(cache.value(for: last) != nil)
    }
}

@Suite struct ResolvConfTests {
    @Test func readsNameserverLines() {
        let text = """
            # generated
            search example.test
            nameserver 192.0.2.53
            nameserver\t2001:db8::53   # trailing comment
            ; nameserver 192.0.2.99
            nameserver fe80::1%eth0
            nameserver not-an-address
            nameserver 192.0.2.53
            options edns0
            nameserver
            """
        #expect(DNSResolver.parseResolvConf(text) == [DNSServer(host: "192.0.2.53"), DNSServer(host: "2001:db8::53")])
    }

    @Test func fallsBackToLocalServer() {
        #expect(DNSResolver.systemServers(resolvConf: "/nonexistent/resolv.conf") == [DNSServer(host: "127.0.0.1")])
    }
}
