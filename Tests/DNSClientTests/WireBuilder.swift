@testable import DNSClient

/// Builds DNS messages byte by byte for tests, so that hostile shapes can be written too.
struct WireBuilder {
    var bytes: [UInt8] = []

    init() {}

    init(header id: UInt16 = 0x1234, flags: UInt16 = 0x8180, counts: (UInt16, UInt16, UInt16, UInt16)) {
        u16(id)
        u16(flags)
        u16(counts.0)
        u16(counts.1)
        u16(counts.2)
        u16(counts.3)
    }

    var count: Int { bytes.count }

    mutating func u8(_ value: UInt8) { bytes.append(value) }

    mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }

    mutating func u32(_ value: UInt32) {
        u16(UInt16(value >> 16))
        u16(UInt16(value & 0xFFFF))
    }

    mutating func raw(_ values: [UInt8]) { bytes.append(contentsOf: values) }

    /// Uncompressed name; "" or "." is the root.
    mutating func name(_ text: String) { raw(WireBuilder.encodedName(text)) }

    mutating func pointer(to offset: Int) { u16(0xC000 | UInt16(offset)) }

    mutating func question(_ name: String, type: UInt16, recordClass: UInt16 = 1) {
        self.name(name)
        u16(type)
        u16(recordClass)
    }

    mutating func record(_ name: String, type: UInt16, recordClass: UInt16 = 1, ttl: UInt32 = 300, rdata: [UInt8]) {
        self.name(name)
        recordHeader(type: type, recordClass: recordClass, ttl: ttl, rdata: rdata)
    }

    mutating func recordHeader(type: UInt16, recordClass: UInt16 = 1, ttl: UInt32 = 300, rdata: [UInt8]) {
        u16(type)
        u16(recordClass)
        u32(ttl)
        u16(UInt16(rdata.count))
        raw(rdata)
    }

    static func encodedName(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for label in text.split(separator: ".") {
            out.append(UInt8(label.utf8.count))
            out.append(contentsOf: Array(label.utf8))
        }
        out.append(0)
        return out
    }
}

enum RData {
    static func a(_ text: String) -> [UInt8] { IPAddressText.parseIPv4(text) ?? [] }
    static func aaaa(_ text: String) -> [UInt8] { IPAddressText.parseIPv6(text) ?? [] }
    static func name(_ text: String) -> [UInt8] { WireBuilder.encodedName(text) }

    static func mx(_ preference: UInt16, _ exchange: String) -> [UInt8] {
        [UInt8(preference >> 8), UInt8(preference & 0xFF)] + WireBuilder.encodedName(exchange)
    }

    static func txt(_ strings: [String]) -> [UInt8] {
        strings.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
    }

    static func soa(minimum: UInt32) -> [UInt8] {
        var builder = WireBuilder()
        builder.name("ns.example.test")
        builder.name("hostmaster.example.test")
        for value in [UInt32(1), 3600, 600, 86400, minimum] { builder.u32(value) }
        return builder.bytes
    }
}

struct TestRecord {
    var name: String
    var type: DNSRecordType
    var ttl: UInt32 = 300
    var rdata: [UInt8]
}

/// A response echoing `query`'s ID and question, with the given sections.
func reply(
    to query: DNSMessage, rcode: UInt16 = 0, truncated: Bool = false, answers: [TestRecord] = [],
    authorities: [TestRecord] = [], edns: Bool = true, id: UInt16? = nil
) -> [UInt8] {
    let question = query.questions.first
    var flags: UInt16 = 0x8180 | rcode
    if truncated { flags |= 0x0200 }
    var builder = WireBuilder(
        header: id ?? query.header.id, flags: flags,
        counts: (question == nil ? 0 : 1, UInt16(answers.count), UInt16(authorities.count), edns ? 1 : 0))
    if let question {
        builder.question(question.name.description, type: question.type)
    }
    for record in answers + authorities {
        builder.record(record.name, type: record.type.rawValue, ttl: record.ttl, rdata: record.rdata)
    }
    if edns {
        builder.u8(0)
        builder.recordHeader(type: 41, recordClass: 1232, ttl: 0, rdata: [])
    }
    return builder.bytes
}
