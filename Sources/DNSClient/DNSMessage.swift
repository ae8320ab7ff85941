/// The DNS message layer (RFC 1035 §4): a pure value, an encoder for queries and a bounded
/// decoder for responses. No I/O here; `DNSTransport` moves the bytes and `DNSAnswer` reads
/// the answer to one question out of a decoded response.
struct DNSHeader: Equatable, Sendable {
    static let length = 12

    var id: UInt16
    var flags: UInt16
    var questionCount: UInt16
    var answerCount: UInt16
    var authorityCount: UInt16
    var additionalCount: UInt16

    var isResponse: Bool { flags & 0x8000 != 0 }
    var opcode: UInt8 { UInt8((flags >> 11) & 0x0F) }
    var isTruncated: Bool { flags & 0x0200 != 0 }
    var recursionDesired: Bool { flags & 0x0100 != 0 }
    /// The 4-bit RCODE of the header; `DNSMessage.rcode` adds the EDNS extension bits.
    var rcode: UInt8 { UInt8(flags & 0x000F) }

    static let recursionDesiredFlag: UInt16 = 0x0100
}

/// RCODEs this client acts on (RFC 1035 §4.1.1, RFC 6891 §9).
enum DNSResponseCode {
    static let noError = 0
    static let formatError = 1
    static let serverFailure = 2
    static let nameError = 3
}

struct DNSQuestion: Hashable, Sendable {
    static let classIN: UInt16 = 1

    var name: DNSName
    var type: UInt16
    var recordClass: UInt16 = DNSQuestion.classIN

    init(name: DNSName, type: UInt16, recordClass: UInt16 = DNSQuestion.classIN) {
        self.name = name
        self.type = type
        self.recordClass = recordClass
    }

    init(name: DNSName, type: DNSRecordType) {
        self.init(name: name, type: type.rawValue)
    }
}

struct DNSStartOfAuthority: Equatable, Sendable {
    var primary: DNSName
    var mailbox: DNSName
    var serial: UInt32
    var refresh: UInt32
    var retry: UInt32
    var expire: UInt32
    /// RFC 2308 §4: the TTL for negative answers (together with the SOA record's own TTL).
    var minimum: UInt32
}

enum DNSRecordData: Equatable, Sendable {
    case a([UInt8])
    case aaaa([UInt8])
    case ns(DNSName)
    case cname(DNSName)
    case ptr(DNSName)
    case mx(preference: UInt16, exchange: DNSName)
    /// The character-strings of one TXT record, each 0...255 octets (RFC 1035 §3.3.14).
    case txt([[UInt8]])
    case soa(DNSStartOfAuthority)
    /// The EDNS0 OPT pseudo-record (RFC 6891 §6.1.2); its fields live in class and TTL.
    case opt
    /// A type this client does not read; only its length was checked.
    case other(type: UInt16, length: Int)
}

struct DNSResourceRecord: Equatable, Sendable {
    static let typeOPT: UInt16 = 41

    var name: DNSName
    var type: UInt16
    var recordClass: UInt16
    var ttl: UInt32
    var data: DNSRecordData
}

struct DNSMessage: Equatable, Sendable {
    /// RFC 6891 §6.2.5 and the 2020 DNS flag day: a size that avoids IP fragmentation.
    static let advertisedUDPPayloadSize: UInt16 = 1232
    /// The largest message on any transport (the TCP length prefix is 16 bits).
    static let maxMessageLength = 65_535

    var header: DNSHeader
    var questions: [DNSQuestion]
    var answers: [DNSResourceRecord]
    var authorities: [DNSResourceRecord]
    var additionals: [DNSResourceRecord]

    /// The full RCODE: the header's 4 bits plus, with EDNS, 8 more from the OPT record's TTL
    /// (RFC 6891 §6.1.3).
    var rcode: Int {
        var value = Int(header.rcode)
        if let opt = additionals.first(where: { $0.type == DNSResourceRecord.typeOPT }) {
            value |= Int(opt.ttl >> 24) << 4
        }
        return value
    }

    // MARK: - Encoding

    /// A recursive query (RD set) for one question, with an EDNS0 OPT record advertising
    /// `advertisedUDPPayloadSize` unless `edns` is false (for servers that answer FORMERR to it).
    static func query(id: UInt16, question: DNSQuestion, edns: Bool = true) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(DNSHeader.length + question.name.wireLength + 4 + 11)
        append(id, to: &out)
        append(DNSHeader.recursionDesiredFlag, to: &out)
        append(1, to: &out)  // QDCOUNT
        append(0, to: &out)  // ANCOUNT
        append(0, to: &out)  // NSCOUNT
        append(edns ? 1 : 0, to: &out)  // ARCOUNT
        for label in question.name.labels {
            out.append(UInt8(label.count))
            out.append(contentsOf: label)
        }
        out.append(0)
        append(question.type, to: &out)
        append(question.recordClass, to: &out)
        if edns {
            out.append(0)  // root owner name
            append(DNSResourceRecord.typeOPT, to: &out)
            append(advertisedUDPPayloadSize, to: &out)  // CLASS = requestor's UDP payload size
            append(0, to: &out)  // TTL high: extended RCODE 0, version 0
            append(0, to: &out)  // TTL low: DO clear (no DNSSEC records wanted)
            append(0, to: &out)  // RDLENGTH
        }
        return out
    }

    private static func append(_ value: UInt16, to out: inout [UInt8]) {
        out.append(UInt8(value >> 8))
        out.append(UInt8(value & 0xFF))
    }

    // MARK: - Decoding

    /// Decodes a whole message. When the TC bit is set only the header and the question are
    /// decoded: the rest may be cut anywhere, and the caller repeats the query over TCP.
    init(decoding bytes: [UInt8]) throws(DNSWireError) {
        guard bytes.count <= DNSMessage.maxMessageLength else { throw .messageTooLong }
        var reader = DNSWireReader(bytes: bytes)
        header = try reader.readHeader()
        // Counts that lie: every question takes at least 5 octets and every record 11, so a
        // count the message cannot hold is refused before any work is done for it.
        let minimum =
            Int(header.questionCount) * 5
            + (Int(header.answerCount) + Int(header.authorityCount) + Int(header.additionalCount)) * 11
        guard header.isTruncated || minimum <= bytes.count - DNSHeader.length else {
            throw .countsExceedMessage
        }
        var questions: [DNSQuestion] = []
        for _ in 0..<header.questionCount {
            questions.append(try reader.readQuestion())
        }
        self.questions = questions
        answers = []
        authorities = []
        additionals = []
        guard !header.isTruncated else { return }
        for _ in 0..<header.answerCount { answers.append(try reader.readRecord()) }
        for _ in 0..<header.authorityCount { authorities.append(try reader.readRecord()) }
        for _ in 0..<header.additionalCount { additionals.append(try reader.readRecord()) }
        guard reader.isAtEnd else { throw .trailingBytes }
    }

    /// Cheap check used to drop stray datagrams before decoding: same ID, QR set, standard
    /// query, and the question echoed back (or no question at all on an error RCODE).
    static func isResponse(_ bytes: [UInt8], to id: UInt16, question: DNSQuestion) -> Bool {
        var reader = DNSWireReader(bytes: bytes)
        guard let header = try? reader.readHeader(), header.id == id, header.isResponse, header.opcode == 0 else {
            return false
        }
        if header.questionCount == 0 { return header.rcode != 0 }
        guard header.questionCount == 1, let echoed = try? reader.readQuestion() else { return false }
        return echoed == question
    }
}

/// What is wrong with a message, for the operator (it ends up in `malformedResponse`).
enum DNSWireError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(at: Int)
    case messageTooLong
    case countsExceedMessage
    case badLabelType(at: Int)
    case pointerNotBackward(at: Int)
    case pointerIntoHeader(at: Int)
    case tooManyPointers(at: Int)
    case nameTooLong(at: Int)
    case rdataPastEnd(at: Int)
    case rdataLengthMismatch(type: UInt16, at: Int)
    case trailingBytes
    case cnameChainTooLong
    case truncatedOverTCP

    var description: String {
        switch self {
        case .truncated(let at): "message ends early at octet \(at)"
        case .messageTooLong: "message longer than 65535 octets"
        case .countsExceedMessage: "section counts larger than the message can hold"
        case .badLabelType(let at): "unknown label type at octet \(at)"
        case .pointerNotBackward(let at): "compression pointer at octet \(at) does not point backwards (loop?)"
        case .pointerIntoHeader(let at): "compression pointer at octet \(at) points into the header"
        case .tooManyPointers(let at):
            "name at octet \(at) follows more than \(DNSWireReader.maxPointersPerName) compression pointers"
        case .nameTooLong(let at): "name at octet \(at) longer than 255 octets"
        case .rdataPastEnd(let at): "record data at octet \(at) runs past the end of the message"
        case .rdataLengthMismatch(let type, let at):
            "type \(type) record data at octet \(at) does not fill its RDLENGTH"
        case .trailingBytes: "octets after the last record"
        case .truncatedOverTCP: "TC bit set on an answer over TCP"
        case .cnameChainTooLong: "CNAME chain longer than \(DNSAnswer.maxCNAMEChain) (or a loop)"
        }
    }
}

/// A cursor over a received message. Every read is bounds-checked; names follow compression
/// pointers only backwards (RFC 1035 §4.1.4 "prior occurrence"), which rules out loops.
struct DNSWireReader {
    /// A name has at most 127 labels, so honest compression never needs more jumps; without
    /// this bound a chain of pointers each two octets back would cost O(message) per name.
    static let maxPointersPerName = 127

    let bytes: [UInt8]
    private(set) var index = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { index == bytes.count }

    mutating func readUInt8() throws(DNSWireError) -> UInt8 {
        guard index < bytes.count else { throw .truncated(at: index) }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func readUInt16() throws(DNSWireError) -> UInt16 {
        guard index + 2 <= bytes.count else { throw .truncated(at: index) }
        defer { index += 2 }
        return UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])
    }

    mutating func readUInt32() throws(DNSWireError) -> UInt32 {
        let high = try readUInt16()
        let low = try readUInt16()
        return UInt32(high) << 16 | UInt32(low)
    }

    mutating func readBytes(_ count: Int) throws(DNSWireError) -> [UInt8] {
        guard count >= 0, index + count <= bytes.count else { throw .truncated(at: index) }
        defer { index += count }
        return Array(bytes[index..<(index + count)])
    }

    mutating func readHeader() throws(DNSWireError) -> DNSHeader {
        DNSHeader(
            id: try readUInt16(), flags: try readUInt16(), questionCount: try readUInt16(),
            answerCount: try readUInt16(), authorityCount: try readUInt16(), additionalCount: try readUInt16()
        )
    }

    mutating func readQuestion() throws(DNSWireError) -> DNSQuestion {
        let name = try readName()
        return DNSQuestion(name: name, type: try readUInt16(), recordClass: try readUInt16())
    }

    mutating func readName() throws(DNSWireError) -> DNSName {
        let start = index
        var labels: [[UInt8]] = []
        var wireLength = 1
        var position = index
        // Where the labels being read began; a pointer must go below it, so each jump lands
        // strictly earlier than the last and the walk ends after at most `bytes.count` jumps.
        var segmentStart = index
        var jumped = false
        var pointers = 0
        while true {
            guard position < bytes.count else { throw .truncated(at: position) }
            let length = bytes[position]
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    if !jumped { index = position + 1 }
                    return DNSName(labels: labels)
                }
                let labelStart = position + 1
                let labelEnd = labelStart + Int(length)
                guard labelEnd <= bytes.count else { throw .truncated(at: position) }
                wireLength += 1 + Int(length)
                guard wireLength <= DNSName.maxWireLength else { throw .nameTooLong(at: start) }
                labels.append(Array(bytes[labelStart..<labelEnd]))
                position = labelEnd
            case 0xC0:
                guard position + 1 < bytes.count else { throw .truncated(at: position) }
                let target = Int(length & 0x3F) << 8 | Int(bytes[position + 1])
                guard target >= DNSHeader.length else { throw .pointerIntoHeader(at: position) }
                guard target < segmentStart else { throw .pointerNotBackward(at: position) }
                pointers += 1
                guard pointers <= DNSWireReader.maxPointersPerName else { throw .tooManyPointers(at: start) }
                if !jumped {
                    index = position + 2
                    jumped = true
                }
                position = target
                segmentStart = target
            default:
                // 0x40 and 0x80: extended label types (RFC 6891 §5), not used; also any
                // "label" longer than 63 octets lands here.
                throw .badLabelType(at: position)
            }
        }
    }

    mutating func readRecord() throws(DNSWireError) -> DNSResourceRecord {
        let name = try readName()
        let type = try readUInt16()
        let recordClass = try readUInt16()
        var ttl = try readUInt32()
        // RFC 2181 §8: a TTL with the top bit set is read as zero (OPT keeps its flags there).
        if ttl > UInt32(Int32.max) && type != DNSResourceRecord.typeOPT { ttl = 0 }
        let length = Int(try readUInt16())
        let dataStart = index
        let dataEnd = dataStart + length
        guard dataEnd <= bytes.count else { throw .rdataPastEnd(at: dataStart) }
        let data: DNSRecordData
        switch type {
        case DNSRecordType.a.rawValue:
            guard length == 4 else { throw .rdataLengthMismatch(type: type, at: dataStart) }
            data = .a(try readBytes(4))
        case DNSRecordType.aaaa.rawValue:
            guard length == 16 else { throw .rdataLengthMismatch(type: type, at: dataStart) }
            data = .aaaa(try readBytes(16))
        case DNSRecordType.ns.rawValue:
            data = .ns(try readName())
        case DNSRecordType.cname.rawValue:
            data = .cname(try readName())
        case DNSRecordType.ptr.rawValue:
            data = .ptr(try readName())
        case DNSRecordType.mx.rawValue:
            data = .mx(preference: try readUInt16(), exchange: try readName())
        case DNSRecordType.txt.rawValue:
            var strings: [[UInt8]] = []
            while index < dataEnd {
                let count = Int(try readUInt8())
                guard index + count <= dataEnd else { throw .rdataLengthMismatch(type: type, at: dataStart) }
                strings.append(try readBytes(count))
            }
            data = .txt(strings)
        case DNSRecordType.soa.rawValue:
            data = .soa(
                DNSStartOfAuthority(
                    primary: try readName(), mailbox: try readName(), serial: try readUInt32(),
                    refresh: try readUInt32(), retry: try readUInt32(), expire: try readUInt32(),
                    minimum: try readUInt32()
                ))
        case DNSResourceRecord.typeOPT:
            index = dataEnd
            data = .opt
        default:
            index = dataEnd
            data = .other(type: type, length: length)
        }
        guard index == dataEnd else { throw .rdataLengthMismatch(type: type, at: dataStart) }
        return DNSResourceRecord(name: name, type: type, recordClass: recordClass, ttl: ttl, data: data)
    }
}
