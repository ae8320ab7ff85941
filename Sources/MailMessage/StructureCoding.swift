/// What a node-local cache keeps of a parsed message so that ENVELOPE and BODYSTRUCTURE need
/// neither the file nor the parser again: either part may be missing (an ENVELOPE-only fetch
/// reads the header alone and has no body structure to give).
public struct ParsedSummary: Sendable, Hashable {
    public var envelope: Envelope?
    public var bodyStructure: BodyStructure?

    public init(envelope: Envelope? = nil, bodyStructure: BodyStructure? = nil) {
        self.envelope = envelope
        self.bodyStructure = bodyStructure
    }

    /// Fills what this lacks from `other`.
    public func merged(with other: ParsedSummary) -> ParsedSummary {
        ParsedSummary(envelope: envelope ?? other.envelope, bodyStructure: bodyStructure ?? other.bodyStructure)
    }
}

/// A compact binary form of `Envelope` and `BodyStructure` for the node-local cache: varint
/// lengths and tags, strings as raw bytes. Decoding never trusts its input (the cache file is
/// on a local disk, but may be cut short by a crash or written by another version): any
/// inconsistency, a version it does not know or nesting over `maxDepth` gives nil, and the
/// caller parses the message again.
public enum StructureCoding {
    /// Bumped whenever the layout changes; rows of another version read as misses.
    public static let version: UInt8 = 1
    /// Deeper than the MIME parser ever builds.
    static let maxDepth = 64

    public static func encode(_ envelope: Envelope) -> [UInt8] {
        var writer = Writer()
        writer.byte(version)
        writer.envelope(envelope)
        return writer.bytes
    }

    public static func encode(_ body: BodyStructure) -> [UInt8] {
        var writer = Writer()
        writer.byte(version)
        writer.body(body, depth: 0)
        return writer.bytes
    }

    public static func decodeEnvelope(_ bytes: [UInt8]) -> Envelope? {
        var reader = Reader(bytes)
        guard reader.byte() == version, let envelope = reader.envelope(), reader.atEnd else { return nil }
        return envelope
    }

    public static func decodeBodyStructure(_ bytes: [UInt8]) -> BodyStructure? {
        var reader = Reader(bytes)
        guard reader.byte() == version, let body = reader.body(depth: 0), reader.atEnd else { return nil }
        return body
    }

    // MARK: - Writing

    struct Writer {
        var bytes: [UInt8] = []

        mutating func byte(_ value: UInt8) { bytes.append(value) }

        mutating func varint(_ value: Int) {
            var rest = UInt64(max(0, value))
            while rest >= 0x80 {
                bytes.append(UInt8(rest & 0x7F) | 0x80)
                rest >>= 7
            }
            bytes.append(UInt8(rest))
        }

        mutating func data(_ value: [UInt8]) {
            varint(value.count)
            bytes += value
        }

        mutating func optionalData(_ value: [UInt8]?) {
            if let value {
                byte(1)
                data(value)
            } else {
                byte(0)
            }
        }

        mutating func string(_ value: String) { data(Array(value.utf8)) }

        mutating func addresses(_ list: [EnvelopeAddress]) {
            varint(list.count)
            for address in list {
                optionalData(address.name)
                optionalData(address.adl)
                optionalData(address.mailbox)
                optionalData(address.host)
            }
        }

        mutating func envelope(_ envelope: Envelope) {
            optionalData(envelope.date)
            optionalData(envelope.subject)
            for list in [envelope.from, envelope.sender, envelope.replyTo, envelope.to, envelope.cc, envelope.bcc] {
                addresses(list)
            }
            optionalData(envelope.inReplyTo)
            optionalData(envelope.messageID)
        }

        mutating func parameters(_ parameters: [MIMEParameter]) {
            varint(parameters.count)
            for parameter in parameters {
                string(parameter.name)
                data(parameter.value)
            }
        }

        mutating func extensionData(_ data: BodyExtension) {
            if let disposition = data.disposition {
                byte(1)
                string(disposition.kind)
                parameters(disposition.parameters)
            } else {
                byte(0)
            }
            varint(data.language.count)
            for language in data.language { string(language) }
            optionalData(data.location)
        }

        mutating func body(_ body: BodyStructure, depth: Int) {
            switch body {
            case .multipart(let multipart):
                byte(0)
                varint(multipart.parts.count)
                for part in multipart.parts { self.body(part, depth: depth + 1) }
                string(multipart.subtype)
                parameters(multipart.parameters)
                extensionData(multipart.extensionData)
            case .singlePart(let part):
                byte(1)
                string(part.type)
                string(part.subtype)
                parameters(part.fields.parameters)
                optionalData(part.fields.id)
                optionalData(part.fields.description)
                string(part.fields.encoding)
                varint(part.fields.octets)
                switch part.kind {
                case .basic:
                    byte(0)
                case .text(let lines):
                    byte(1)
                    varint(lines)
                case .message(let envelope, let inner, let lines):
                    byte(2)
                    self.envelope(envelope)
                    self.body(inner, depth: depth + 1)
                    varint(lines)
                }
                optionalData(part.md5)
                extensionData(part.extensionData)
            }
        }
    }

    // MARK: - Reading

    struct Reader {
        let bytes: [UInt8]
        var offset = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { offset == bytes.count }

        mutating func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func varint() -> Int? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while let next = byte() {
                value |= UInt64(next & 0x7F) << shift
                if next & 0x80 == 0 { return value <= UInt64(Int32.max) ? Int(value) : nil }
                shift += 7
                if shift > 35 { return nil }
            }
            return nil
        }

        /// A count of items that each take at least one byte: never more than what is left.
        mutating func count() -> Int? {
            guard let count = varint(), count <= bytes.count - offset else { return nil }
            return count
        }

        mutating func data() -> [UInt8]? {
            guard let length = count() else { return nil }
            defer { offset += length }
            return Array(bytes[offset..<offset + length])
        }

        /// `.some(nil)` for a stored nil, nil for bad input.
        mutating func optionalData() -> [UInt8]?? {
            switch byte() {
            case 0: return .some(nil)
            case 1: return data().map { .some($0) }
            default: return nil
            }
        }

        mutating func string() -> String? {
            data().map { String(decoding: $0, as: UTF8.self) }
        }

        mutating func addresses() -> [EnvelopeAddress]? {
            guard let count = count() else { return nil }
            var list: [EnvelopeAddress] = []
            list.reserveCapacity(count)
            for _ in 0..<count {
                guard let name = optionalData(), let adl = optionalData(), let mailbox = optionalData(), let host = optionalData() else {
                    return nil
                }
                list.append(EnvelopeAddress(name: name, adl: adl, mailbox: mailbox, host: host))
            }
            return list
        }

        mutating func envelope() -> Envelope? {
            guard let date = optionalData(), let subject = optionalData() else { return nil }
            var lists: [[EnvelopeAddress]] = []
            for _ in 0..<6 {
                guard let list = addresses() else { return nil }
                lists.append(list)
            }
            guard let inReplyTo = optionalData(), let messageID = optionalData() else { return nil }
            return Envelope(
                date: date, subject: subject, from: lists[0], sender: lists[1], replyTo: lists[2], to: lists[3], cc: lists[4],
                bcc: lists[5], inReplyTo: inReplyTo, messageID: messageID)
        }

        mutating func parameters() -> [MIMEParameter]? {
            guard let count = count() else { return nil }
            var parameters: [MIMEParameter] = []
            for _ in 0..<count {
                guard let name = string(), let value = data() else { return nil }
                parameters.append(MIMEParameter(name, value))
            }
            return parameters
        }

        mutating func extensionData() -> BodyExtension? {
            var disposition: BodyDisposition?
            switch byte() {
            case 0: break
            case 1:
                guard let kind = string(), let parameters = parameters() else { return nil }
                disposition = BodyDisposition(kind, parameters: parameters)
            default: return nil
            }
            guard let count = count() else { return nil }
            var languages: [String] = []
            for _ in 0..<count {
                guard let language = string() else { return nil }
                languages.append(language)
            }
            guard let location = optionalData() else { return nil }
            return BodyExtension(disposition: disposition, language: languages, location: location)
        }

        mutating func body(depth: Int) -> BodyStructure? {
            guard depth <= StructureCoding.maxDepth else { return nil }
            switch byte() {
            case 0:
                guard let count = count() else { return nil }
                var parts: [BodyStructure] = []
                for _ in 0..<count {
                    guard let part = body(depth: depth + 1) else { return nil }
                    parts.append(part)
                }
                guard let subtype = string(), let parameters = parameters(), let extensionData = extensionData() else { return nil }
                return .multipart(MultipartBody(parts: parts, subtype: subtype, parameters: parameters, extensionData: extensionData))
            case 1:
                guard let type = string(), let subtype = string(), let parameters = parameters(), let id = optionalData(),
                    let description = optionalData(), let encoding = string(), let octets = varint()
                else { return nil }
                let kind: SinglePartBody.Kind
                switch byte() {
                case 0:
                    kind = .basic
                case 1:
                    guard let lines = varint() else { return nil }
                    kind = .text(lines: lines)
                case 2:
                    guard let envelope = envelope(), let inner = body(depth: depth + 1), let lines = varint() else { return nil }
                    kind = .message(envelope: envelope, body: inner, lines: lines)
                default:
                    return nil
                }
                guard let md5 = optionalData(), let extensionData = extensionData() else { return nil }
                let fields = BodyFields(parameters: parameters, id: id, description: description, encoding: encoding, octets: octets)
                return .singlePart(SinglePartBody(type: type, subtype: subtype, fields: fields, kind: kind, md5: md5, extensionData: extensionData))
            default:
                return nil
            }
        }
    }
}
