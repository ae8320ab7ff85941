import Testing

@testable import DNSClient

@Suite struct DNSMessageEncoderTests {
    @Test func encodesQueryWithEDNS() throws {
        let question = DNSQuestion(name: try DNSName.validated("Example.COM."), type: .mx)
        let bytes = DNSMessage.query(id: 0xBEEF, question: question)
        let expected: [UInt8] =
            [0xBE, 0xEF, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01]
            + [7] + Array("example".utf8) + [3] + Array("com".utf8) + [0]
            + [0x00, 0x0F, 0x00, 0x01]
            + [0x00, 0x00, 0x29, 0x04, 0xD0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]
        #expect(bytes == expected)
    }

    @Test func encodesQueryWithoutEDNS() throws {
        let question = DNSQuestion(name: try DNSName.validated("_dmarc.example.org"), type: .txt)
        let bytes = DNSMessage.query(id: 1, question: question, edns: false)
        #expect(bytes[10...11] == [0, 0])
        #expect(bytes.count == 12 + question.name.wireLength + 4)
    }

    @Test func queryRoundTripsThroughTheDecoder() throws {
        let question = DNSQuestion(name: try DNSName.validated("sel._domainkey.example.net"), type: .txt)
        let message = try DNSMessage(decoding: DNSMessage.query(id: 42, question: question))
        #expect(message.header.id == 42)
        #expect(message.header.recursionDesired)
        #expect(!message.header.isResponse)
        #expect(message.questions == [question])
        #expect(message.additionals.count == 1)
        #expect(message.additionals.first?.data == .opt)
        #expect(message.additionals.first?.recordClass == 1232)
    }
}

@Suite struct DNSMessageDecoderTests {
    static func name(_ text: String) -> DNSName { DNSName(labels: text.split(separator: ".").map { Array($0.utf8) }) }

    /// A response to "example.test MX" whose answer names point back at the question (offset 12).
    static var compressedMX: [UInt8] {
        var wire = WireBuilder(counts: (1, 2, 0, 0))
        wire.question("example.test", type: 15)
        for (preference, host) in [(10, "mx1"), (20, "mx2")] {
            wire.pointer(to: 12)
            var rdata = RData.mx(UInt16(preference), "")
            rdata.removeLast()  // drop the root; the exchange continues with a pointer
            rdata += [UInt8(host.utf8.count)] + Array(host.utf8) + [0xC0, 12]
            wire.recordHeader(type: 15, rdata: rdata)
        }
        return wire.bytes
    }

    @Test func decodesCompressedMX() throws {
        let message = try DNSMessage(decoding: Self.compressedMX)
        #expect(
            message.answers.map(\.data) == [
                .mx(preference: 10, exchange: Self.name("mx1.example.test")),
                .mx(preference: 20, exchange: Self.name("mx2.example.test")),
            ])
        #expect(message.answers.allSatisfy { $0.name == Self.name("example.test") })
    }

    struct ValidCase: CustomTestStringConvertible, Sendable {
        var label: String
        var bytes: [UInt8]
        var expected: [DNSRecordData]
        var testDescription: String { label }
    }

    static let validCases: [ValidCase] = {
        var cases: [ValidCase] = []
        func one(_ label: String, type: UInt16, ttl: UInt32 = 60, rdata: [UInt8], _ expected: DNSRecordData) {
            var wire = WireBuilder(counts: (1, 1, 0, 0))
            wire.question("host.test", type: type)
            wire.record("HOST.test", type: type, ttl: ttl, rdata: rdata)
            cases.append(ValidCase(label: label, bytes: wire.bytes, expected: [expected]))
        }
        one("A", type: 1, rdata: [192, 0, 2, 1], .a([192, 0, 2, 1]))
        one("AAAA", type: 28, rdata: RData.aaaa("2001:db8::1"), .aaaa(RData.aaaa("2001:db8::1")))
        one("CNAME lowercased", type: 5, rdata: RData.name("Target.Example"), .cname(name("target.example")))
        one("PTR", type: 12, rdata: RData.name("mail.example"), .ptr(name("mail.example")))
        one("NS", type: 2, rdata: RData.name("ns1.example"), .ns(name("ns1.example")))
        one("MX null", type: 15, rdata: RData.mx(0, ""), .mx(preference: 0, exchange: .root))
        one(
            "TXT several strings", type: 16, rdata: RData.txt(["v=spf1 ", "", "-all"]),
            .txt([Array("v=spf1 ".utf8), [], Array("-all".utf8)]))
        one("TXT empty rdata", type: 16, rdata: [], .txt([]))
        one(
            "SOA", type: 6, rdata: RData.soa(minimum: 900),
            .soa(
                DNSStartOfAuthority(
                    primary: name("ns.example.test"), mailbox: name("hostmaster.example.test"),
                    serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum: 900)))
        one("unknown type", type: 99, rdata: [1, 2, 3], .other(type: 99, length: 3))
        one(
            "label with odd octets", type: 12, rdata: [3, 0x61, 0x2E, 0xFF, 0],
            .ptr(DNSName(labels: [[0x61, 0x2E, 0xFF]])))
        return cases
    }()

    @Test(arguments: validCases)
    func decodesRecords(_ testCase: ValidCase) throws {
        let message = try DNSMessage(decoding: testCase.bytes)
        #expect(message.answers.map(\.data) == testCase.expected)
        #expect(message.answers.first?.name == Self.name("host.test"))
    }

    @Test func readsTTLWithTopBitAsZero() throws {
        var wire = WireBuilder(counts: (1, 1, 0, 0))
        wire.question("host.test", type: 1)
        wire.record("host.test", type: 1, ttl: 0x8000_0001, rdata: [1, 2, 3, 4])
        #expect(try DNSMessage(decoding: wire.bytes).answers.first?.ttl == 0)
    }

    @Test func readsExtendedRCODEFromOPT() throws {
        var wire = WireBuilder(flags: 0x8180, counts: (1, 0, 0, 1))
        wire.question("host.test", type: 1)
        wire.u8(0)
        wire.recordHeader(type: 41, recordClass: 1232, ttl: 0x0100_0000, rdata: [])
        #expect(try DNSMessage(decoding: wire.bytes).rcode == 16)
    }

    @Test func truncatedResponseDecodesOnlyHeaderAndQuestion() throws {
        var wire = WireBuilder(flags: 0x8380, counts: (1, 40, 0, 0))
        wire.question("host.test", type: 16)
        wire.raw([0x04, 0x68, 0x6F])  // a record cut off mid-name
        let message = try DNSMessage(decoding: wire.bytes)
        #expect(message.header.isTruncated)
        #expect(message.questions.count == 1)
        #expect(message.answers.isEmpty)
    }

    @Test func acceptsNameOf255OctetsAndRefuses256() throws {
        let label63 = String(repeating: "a", count: 63)
        let longest = [label63, label63, label63, String(repeating: "b", count: 61)].joined(separator: ".")
        var wire = WireBuilder(counts: (1, 0, 0, 0))
        wire.question(longest, type: 1)
        #expect(try DNSMessage(decoding: wire.bytes).questions.first?.name.wireLength == 255)

        var tooLong = WireBuilder(counts: (1, 0, 0, 0))
        tooLong.question(longest + "b", type: 1)
        #expect(throws: DNSWireError.nameTooLong(at: 12)) { try DNSMessage(decoding: tooLong.bytes) }
    }

    struct HostileCase: CustomTestStringConvertible, Sendable {
        var label: String
        var bytes: [UInt8]
        var error: DNSWireError
        var testDescription: String { label }
    }

    static let hostileCases: [HostileCase] = {
        var cases: [HostileCase] = []
        func add(_ label: String, _ error: DNSWireError, _ build: (inout WireBuilder) -> Void) {
            var wire = WireBuilder()
            build(&wire)
            cases.append(HostileCase(label: label, bytes: wire.bytes, error: error))
        }
        add("empty", .truncated(at: 0)) { _ in }
        add("short header", .truncated(at: 10)) {
            $0 = WireBuilder(counts: (0, 0, 0, 0))
            $0.bytes.removeLast(2)
        }
        add("pointer to itself", .pointerNotBackward(at: 12)) { wire in
            wire = WireBuilder(counts: (1, 0, 0, 0))
            wire.pointer(to: 12)
            wire.u16(1)
            wire.u16(1)
        }
        add("label then pointer back to its own start", .pointerNotBackward(at: 14)) { wire in
            wire = WireBuilder(counts: (1, 0, 0, 0))
            wire.raw([1, 0x61])
            wire.pointer(to: 12)
            wire.u16(1)
            wire.u16(1)
        }
        add("two names pointing at each other", .pointerNotBackward(at: 41)) { wire in
            // An opaque record's data at 39 holds "b" + pointer to 43; the next record's owner
            // name at 43 is "a" + pointer to 39: a cycle that only a backwards rule catches.
            wire = WireBuilder(counts: (1, 2, 0, 0))
            wire.question("host.test", type: 1)
            wire.pointer(to: 12)
            wire.recordHeader(type: 99, rdata: [1, 0x62, 0xC0, 43])
            wire.raw([1, 0x61, 0xC0, 39])
            wire.recordHeader(type: 1, rdata: [1, 2, 3, 4])
        }
        add("pointer forward", .pointerNotBackward(at: 12)) { wire in
            wire = WireBuilder(counts: (1, 0, 0, 0))
            wire.pointer(to: 18)
            wire.u16(1)
            wire.u16(1)
            wire.raw([1, 0x61, 0])
        }
        add("pointer out of range", .pointerNotBackward(at: 12)) { wire in
            wire = WireBuilder(counts: (1, 0, 0, 0))
            wire.pointer(to: 0x3FFF)
            wire.u16(1)
            wire.u16(1)
        }
        add("pointer into header", .pointerIntoHeader(at: 12)) { wire in
            wire = WireBuilder(counts: (1, 0, 0, 0))
            wire.pointer(to: 4)
            wire.u16(1)
            wire.u16(1)
        }
        add("pointer cut in half", .truncated(at: 41)) { wire in
            wire = WireBuilder(counts: (1, 1, 0, 0))
            wire.question("host.test", type: 15)
            wire.pointer(to: 12)
            wire.recordHeader(type: 15, rdata: [0, 10, 0xC0])
        }
        add("label length 64", .badLabelType(at: 12)) { wire in
            wire = WireBuilder(counts: (1, 0, 0, 0))
            wire.raw([64] + Array(repeating: 0x61, count: 64) + [0])
            wire.u16(1)
            wire.u16(1)
        }
        add("label type 0x80", .badLabelType(at: 12)) { wire in
            wire = WireBuilder(counts: (1, 0, 0, 0))
            wire.raw([0x80, 0x61, 0])
            wire.u16(1)
            wire.u16(1)
        }
        add("label past end", .truncated(at: 12)) { wire in
            wire = WireBuilder(counts: (1, 0, 0, 0))
            wire.raw([10, 0x61, 0x62, 0x63, 0x64])
        }
        add("name over 255 octets", .nameTooLong(at: 12)) { wire in
            wire = WireBuilder(counts: (1, 0, 0, 0))
            for _ in 0..<5 { wire.raw([63] + Array(repeating: 0x61, count: 63)) }
            wire.u8(0)
            wire.u16(1)
            wire.u16(1)
        }
        add("name over 255 octets through a pointer", .nameTooLong(at: 209)) { wire in
            wire = WireBuilder(counts: (1, 1, 0, 0))
            let label = [63] + Array(repeating: UInt8(0x61), count: 63)
            wire.raw(label + label + label + [0])  // 193 octets at 12
            wire.u16(1)
            wire.u16(1)
            wire.raw(label + [0xC0, 12])  // 64 + 193 = 257
            wire.recordHeader(type: 1, rdata: [1, 2, 3, 4])
        }
        add("chain of 200 pointers, each two octets back", .tooManyPointers(at: 439)) { wire in
            wire = WireBuilder(counts: (1, 2, 0, 0))
            wire.question("host.test", type: 16)
            wire.pointer(to: 12)
            // Opaque record data at 39: pointer k (at 39 + 2k) points at pointer k - 1, the first at 12.
            var chain = WireBuilder()
            chain.pointer(to: 12)
            for index in 1..<200 { chain.pointer(to: 39 + 2 * (index - 1)) }
            wire.recordHeader(type: 99, rdata: chain.bytes)
            wire.pointer(to: 39 + 2 * 199)  // the next owner name enters the chain at its far end
            wire.recordHeader(type: 1, rdata: [1, 2, 3, 4])
        }
        add("answer count lies", .countsExceedMessage) { wire in
            wire = WireBuilder(counts: (1, 5, 0, 0))
            wire.question("host.test", type: 1)
        }
        add("question count 65535", .countsExceedMessage) { wire in
            wire = WireBuilder(counts: (0xFFFF, 0, 0, 0))
            wire.question("host.test", type: 1)
        }
        add("record cut in the TTL", .truncated(at: 35)) { wire in
            wire = WireBuilder(counts: (1, 1, 0, 0))
            wire.question("host.test", type: 1)
            wire.pointer(to: 12)
            wire.u16(1)
            wire.u16(1)
            wire.u16(0)
        }
        add("rdlength past end", .rdataPastEnd(at: 39)) { wire in
            wire = WireBuilder(counts: (1, 1, 0, 0))
            wire.question("host.test", type: 16)
            wire.pointer(to: 12)
            wire.u16(16)
            wire.u16(1)
            wire.u32(60)
            wire.u16(200)
            wire.raw(RData.txt(["short"]))
        }
        add("A with 5 octets", .rdataLengthMismatch(type: 1, at: 39)) { wire in
            wire = WireBuilder(counts: (1, 1, 0, 0))
            wire.question("host.test", type: 1)
            wire.pointer(to: 12)
            wire.recordHeader(type: 1, rdata: [1, 2, 3, 4, 5])
        }
        add("AAAA with 4 octets", .rdataLengthMismatch(type: 28, at: 39)) { wire in
            wire = WireBuilder(counts: (1, 1, 0, 0))
            wire.question("host.test", type: 28)
            wire.pointer(to: 12)
            wire.recordHeader(type: 28, rdata: [1, 2, 3, 4])
        }
        add("MX name shorter than rdlength", .rdataLengthMismatch(type: 15, at: 39)) { wire in
            wire = WireBuilder(counts: (1, 1, 0, 0))
            wire.question("host.test", type: 15)
            wire.pointer(to: 12)
            wire.recordHeader(type: 15, rdata: RData.mx(10, "mx.test") + [0, 0])
        }
        add("MX name longer than rdlength", .rdataLengthMismatch(type: 15, at: 39)) { wire in
            wire = WireBuilder(counts: (1, 1, 0, 0))
            wire.question("host.test", type: 15)
            wire.pointer(to: 12)
            let rdata = RData.mx(10, "mx.test")
            wire.u16(15)
            wire.u16(1)
            wire.u32(60)
            wire.u16(UInt16(rdata.count - 3))
            wire.raw(rdata)
            wire.raw([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        }
        add("TXT string past rdlength", .rdataLengthMismatch(type: 16, at: 39)) { wire in
            wire = WireBuilder(counts: (1, 1, 0, 0))
            wire.question("host.test", type: 16)
            wire.pointer(to: 12)
            wire.u16(16)
            wire.u16(1)
            wire.u32(60)
            wire.u16(3)
            wire.raw([5, 0x61, 0x62, 0x63, 0x64, 0x65])
        }
        add("MX rdata cut before the name", .truncated(at: 41)) { wire in
            wire = WireBuilder(counts: (1, 1, 0, 0))
            wire.question("host.test", type: 15)
            wire.pointer(to: 12)
            wire.recordHeader(type: 15, rdata: [0, 10])
        }
        add("trailing octets", .trailingBytes) { wire in
            wire = WireBuilder(counts: (1, 0, 0, 0))
            wire.question("host.test", type: 1)
            wire.raw([0xDE, 0xAD])
        }
        return cases
    }()

    @Test(arguments: hostileCases)
    func refusesHostileInput(_ testCase: HostileCase) {
        #expect(throws: testCase.error) { try DNSMessage(decoding: testCase.bytes) }
    }

    @Test func refusesMessageOver65535Octets() {
        var wire = WireBuilder(counts: (0, 0, 0, 0))
        wire.raw(Array(repeating: 0, count: 65_530))
        #expect(throws: DNSWireError.messageTooLong) { try DNSMessage(decoding: wire.bytes) }
    }

    /// Every prefix of a valid response either decodes or throws; none traps or hangs.
    @Test func everyPrefixOfAResponseIsHandled() {
        let full = Self.compressedMX
        for length in 0..<full.count {
            #expect(throws: DNSWireError.self) { try DNSMessage(decoding: Array(full.prefix(length))) }
        }
    }

    /// Single-octet corruption of a valid response: decode must return or throw, never trap.
    @Test func corruptedResponsesNeverTrap() {
        let full = Self.compressedMX
        for index in full.indices {
            for value: UInt8 in [0x00, 0x3F, 0x40, 0xC0, 0xFF] {
                var bytes = full
                bytes[index] = value
                _ = try? DNSMessage(decoding: bytes)
            }
        }
    }
}

@Suite struct DNSResponseMatchTests {
    static let question = DNSQuestion(name: DNSName(labels: [Array("host".utf8), Array("test".utf8)]), type: 1)

    static func response(id: UInt16 = 7, flags: UInt16 = 0x8180, question name: String? = "host.test", type: UInt16 = 1)
        -> [UInt8]
    {
        var wire = WireBuilder(header: id, flags: flags, counts: (name == nil ? 0 : 1, 0, 0, 0))
        if let name { wire.question(name, type: type) }
        return wire.bytes
    }

    @Test(arguments: [
        (response(), true),
        (response(question: "HOST.Test"), true),
        (response(id: 8), false),
        (response(flags: 0x0180), false),  // QR clear: a query, not a response
        (response(flags: 0x8980), false),  // opcode 1
        (response(question: "other.test"), false),
        (response(type: 28), false),
        (response(question: nil), false),  // no question and NOERROR
        (response(flags: 0x8182, question: nil), true),  // no question on SERVFAIL
        ([UInt8]([0, 7, 0x81]), false),
    ])
    func matchesResponses(bytes: [UInt8], expected: Bool) {
        #expect(DNSMessage.isResponse(bytes, to: 7, question: Self.question) == expected)
    }
}
