import Foundation
import Testing

@testable import MailMessage

/// The messages under Fixtures/: real-world shapes (nested multiparts, forwarded messages,
/// attachments, encoded words, odd charsets, missing headers, malformed boundaries). Each
/// `.expected` file holds ENVELOPE and BODYSTRUCTURE written out from RFC 9051 §7.5.2 and the
/// MIME RFCs (and checked against Dovecot 2.3, whose differences are noted in the file).
@Suite struct FixtureTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static let names: [String] = {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasSuffix(".eml") }.map { String($0.dropLast(4)) }.sorted()
    }()

    static func message(_ name: String) -> [UInt8] {
        (FileManager.default.contents(atPath: directory.appendingPathComponent(name + ".eml").path)).map { [UInt8]($0) } ?? []
    }

    static func expected(_ name: String) -> (envelope: String, body: String, dovecotDiffers: Bool) {
        let text = (try? String(contentsOf: directory.appendingPathComponent(name + ".expected"), encoding: .utf8)) ?? ""
        var envelope = ""
        var body = ""
        var differs = false
        for line in text.split(separator: "\n") {
            if line.hasPrefix("ENVELOPE ") { envelope = String(line.dropFirst(9)) }
            if line.hasPrefix("BODYSTRUCTURE ") { body = String(line.dropFirst(14)) }
            if line.hasPrefix("DOVECOT differs") { differs = true }
        }
        return (envelope, body, differs)
    }

    @Test func fixturesArePresent() {
        #expect(Self.names.count >= 15)
    }

    @Test(arguments: names) func envelopeAndBodyStructure(_ name: String) {
        let message = Self.message(name)
        let structure = MessageStructure.parse(message)
        let expected = Self.expected(name)
        #expect(IMAPRendering.envelope(structure.envelope) == expected.envelope, "\(name)")
        #expect(IMAPRendering.body(structure.bodyStructure) == expected.body, "\(name)")
        #expect(!structure.truncated)
    }

    /// Every part's ranges lie inside the message and nest inside the parent's body.
    @Test(arguments: names) func rangesNest(_ name: String) {
        let message = Self.message(name)
        let structure = MessageStructure.parse(message)
        func check(_ part: MessagePart, within outer: Range<Int>) {
            #expect(part.headerRange.lowerBound >= outer.lowerBound && part.bodyRange.upperBound <= outer.upperBound, "\(name)")
            #expect(part.headerRange.upperBound == part.bodyRange.lowerBound, "\(name)")
            for child in part.children { check(child, within: part.bodyRange) }
        }
        check(structure.root, within: 0..<message.count)
        #expect(structure.root.headerRange.lowerBound == 0 && structure.root.bodyRange.upperBound == message.count)
    }
}

/// The same fixtures read by Python's `email` package (an independent MIME parser): part
/// tree, content types, decoded parameters and payloads, decoded Subject and addresses.
@Suite(.enabled(if: ReferenceTools.python, "needs python3"))
struct PythonEmailComparisonTests {
    /// Where Python and RFC 2046/Dovecot part ways, with the reason.
    static let treeDifferences: [String: String] = [
        // RFC 2046 §5.2.1 forbids encoding message/rfc822; Python parses the base64 text as a
        // message, Dovecot and this parser leave it unparsed.
        "encoded-rfc822": "encoded message/rfc822",
    ]

    static let helper = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("email_helper.py").path

    static func python(_ name: String) -> [String: Any]? {
        let path = FixtureTests.directory.appendingPathComponent(name + ".eml").path
        guard let result = ProcessRunner.run(["python3", helper, "tree", path]), result.status == 0 else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(result.output))) as? [String: Any]
    }

    @Test(arguments: FixtureTests.names) func matchesPython(_ name: String) throws {
        let reference = try #require(Self.python(name), "python3 email_helper.py failed for \(name)")
        let message = FixtureTests.message(name)
        let structure = MessageStructure.parse(message)
        let envelope = structure.envelope.decoded

        #expect(envelope.subject == reference["subject"] as? String, "\(name) subject")
        for (field, entries) in [("from", envelope.from), ("to", envelope.to), ("cc", envelope.cc)] {
            guard let expected = reference[field] as? [[Any]] else { continue }
            let ours = Self.flatten(entries).map { [$0.displayName ?? "", $0.localPart ?? "", $0.domain ?? ""] }
            let theirs = expected.map { $0.map { ($0 as? String) ?? "" } }
            #expect(ours == theirs, "\(name) \(field)")
        }
        guard Self.treeDifferences[name] == nil, let root = reference["root"] as? [String: Any] else { return }
        compare(structure.root, root, message: message, structure: structure, name: name)
    }

    static func flatten(_ entries: [AddressListEntry]) -> [MailboxAddress] {
        entries.flatMap { entry -> [MailboxAddress] in
            switch entry {
            case .mailbox(let mailbox): [mailbox]
            case .group(_, let members): members
            }
        }
    }

    private func compare(_ part: MessagePart, _ node: [String: Any], message: [UInt8], structure: MessageStructure, name: String) {
        let type = node["type"] as? String ?? ""
        #expect(part.contentType.mediaType == type, "\(name): \(part.contentType.mediaType) vs \(type)")
        let theirs = (node["params"] as? [[Any]] ?? []).map { $0.map { ($0 as? String) ?? "" } }
        let ours = part.contentType.isDefault ? theirs : part.contentType.decodedParameters.map { [$0.name, $0.value] }
        #expect(ours == theirs, "\(name) \(type) parameters")
        if let parts = node["parts"] as? [[String: Any]] {
            let children = part.children
            #expect(children.count == parts.count, "\(name) \(type) children")
            for (child, reference) in zip(children, parts) { compare(child, reference, message: message, structure: structure, name: name) }
        } else {
            // Python keeps a multipart without usable boundary as one text payload; here it is
            // a multipart without parts (as in Dovecot).
            if case .multipart(let children) = part.content {
                #expect(children.isEmpty, "\(name) \(type)")
                return
            }
            if let hex = node["payload"] as? String {
                let decoded = part.transferEncoding.decode(message[part.bodyRange]) ?? []
                #expect(decoded.map { String(format: "%02x", $0) }.joined() == hex, "\(name) \(type) payload")
            }
            #expect(part.filename == node["filename"] as? String, "\(name) \(type) filename")
        }
    }
}

extension FixtureTests {
    /// IMAP FETCH ENVELOPE reads only the start of a message and parses its header alone: that
    /// must give the envelope the full MIME parse gives, for every fixture and for any prefix
    /// that holds the whole header.
    @Test(arguments: names) func headerOnlyEnvelopeMatchesTheFullParse(_ name: String) {
        let message = Self.message(name)
        let full = MessageStructure.parse(message).envelope
        #expect(Envelope(message: message) == full)
        let header = MessageStructure.parse(message).root.headerRange
        #expect(Envelope(message: Array(message.prefix(header.upperBound + 10))) == full)
    }
}

extension FixtureTests {
    @Test(arguments: DovecotComparisonTests.edgeCases) func headerOnlyEnvelopeOnEdgeCases(_ text: String) {
        let message = Array(text.utf8)
        #expect(Envelope(message: message) == MessageStructure.parse(message).envelope)
    }
}

/// The cache form of ENVELOPE and BODYSTRUCTURE: every fixture survives the round trip, and
/// damaged rows read as misses, never as wrong structures or crashes.
@Suite struct StructureCodingTests {
    @Test(arguments: FixtureTests.names) func roundTrip(_ name: String) {
        let message = FixtureTests.message(name)
        let structure = MessageStructure.parse(message)
        let envelope = Envelope(message: message)
        #expect(StructureCoding.decodeEnvelope(StructureCoding.encode(envelope)) == envelope, "\(name)")
        #expect(StructureCoding.decodeBodyStructure(StructureCoding.encode(structure.bodyStructure)) == structure.bodyStructure, "\(name)")
    }

    @Test(arguments: FixtureTests.names) func damagedRowsAreMisses(_ name: String) {
        let structure = MessageStructure.parse(FixtureTests.message(name))
        let encoded = StructureCoding.encode(structure.bodyStructure)
        // Every cut is refused: a structure read from a prefix would be a wrong answer.
        for length in 0..<encoded.count {
            #expect(StructureCoding.decodeBodyStructure(Array(encoded[0..<length])) == nil, "\(name) cut at \(length)")
        }
        #expect(StructureCoding.decodeBodyStructure(encoded + [0]) == nil)
        var otherVersion = encoded
        otherVersion[0] = StructureCoding.version &+ 1
        #expect(StructureCoding.decodeBodyStructure(otherVersion) == nil)
        // Flipped bytes may decode to something else or nothing, but never crash.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var flipped = encoded
            flipped[Int.random(in: 1..<flipped.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            _ = StructureCoding.decodeBodyStructure(flipped)
            _ = StructureCoding.decodeEnvelope(flipped)
        }
    }

    @Test func hugeCountsAreRefusedWithoutAllocating() {
        // Version, multipart tag, then a part count of 2^31-1 with nothing behind it.
        #expect(StructureCoding.decodeBodyStructure([StructureCoding.version, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x07]) == nil)
        #expect(StructureCoding.decodeEnvelope([StructureCoding.version, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) == nil)
    }
}
