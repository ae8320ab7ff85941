import Foundation
import Testing

@testable import MailAuth

/// SplitMix64: a small seeded generator so that every run feeds the same inputs.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Hostile input")
struct HardeningTests {
    /// Mutates real inputs byte by byte (flips, inserts of syntax characters, cuts) and runs
    /// every parser on them: nothing may trap. A stand-in until the fuzz targets exist.
    @Test func parsersSurviveMutatedInput() async throws {
        var generator = SeededGenerator(state: 0x5EED)
        let seeds = [
            "v=1; a=rsa-sha256; c=relaxed/simple; d=example.com; s=sel; h=from:to; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA; l=10; x=5",
            "v=spf1 a:%{l1r-}.example.com/24//64 mx ip4:192.0.2.0/24 ip6:2001:db8::/32 include:%{d2} exists:%{ir}.%{v}._spf.%{d} exp=x.%{d} -all",
            "v=DMARC1; p=reject; sp=none; pct=50; rua=mailto:a@example.com",
            "\"A (x) \\\" <b>\" <a@example.com>, Group: (c) b@x.example, <@r:c@y.example>;",
            "2001:db8::192.0.2.1",
        ]
        let alphabet = Array("%{}:;=/.@<>\"()\\, \t\r\n-+_0123456789abcdefDMARC".utf8)
        let resolver = FakeResolver()
        let verifier = SPFVerifier(resolver: resolver)
        for seed in seeds {
            for _ in 0..<150 {
                var bytes = Array(seed.utf8)
                for _ in 0..<Int.random(in: 1...6, using: &generator) {
                    let position = Int.random(in: 0...bytes.count, using: &generator)
                    switch Int.random(in: 0..<4, using: &generator) {
                    case 0 where position < bytes.count: bytes[position] = UInt8.random(in: 0...255, using: &generator)
                    case 1: bytes.insert(alphabet.randomElement(using: &generator) ?? 0x25, at: position)
                    case 2 where position < bytes.count: bytes.removeSubrange(position..<min(bytes.count, position + 4))
                    default: bytes.insert(contentsOf: bytes.prefix(8), at: position)
                    }
                }
                let text = String(decoding: bytes, as: UTF8.self)
                _ = try? TagList(parsing: text)
                _ = try? DMARCRecord(parsing: text)
                _ = try? AuthorAddress.domains(in: text)
                _ = IPAddress(text)
                if let record = try? SPFRecord(parsing: text) {
                    for directive in record.directives {
                        if case .include(let spec) = directive.mechanism {
                            _ = verifier.expandDomain(spec, domain: "example.com", context: SPFMacroTests.context(ip: "192.0.2.3"))
                        }
                    }
                }
                let message = ("DKIM-Signature: " + text + "\r\nFrom: " + text + "\r\n\r\nbody\r\n").bytes
                _ = await DKIMVerifier(resolver: resolver).verify(message)
            }
        }
    }

    @Test func tooManySignedHeaders() async {
        let names = Array(repeating: "from", count: 200).joined(separator: ":")
        let message = DKIMVerifierTests.withSignature(
            "v=1; a=rsa-sha256; d=example.com; s=s; h=\(names); bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA")
        let result = await DKIMVerifier(resolver: FakeResolver()).verify(message)
        #expect(result.first?.reason == "h= lists too many fields")
    }

    @Test func hugeHeaderSectionIsCut() {
        let line = "X-Filler: " + String(repeating: "x", count: 1000) + "\r\n"
        let message = (String(repeating: line, count: 2000) + "\r\nbody").bytes
        let parsed = RawMessage(message)
        #expect(parsed.truncated)
        #expect(parsed.fields.count <= MailAuthLimits.maxHeaderFields)
    }

    @Test func bareLineFeedMessagesVerify() async throws {
        let key = try #require(DKIMVerifierTests.key)
        let lf = "From: a@example.com\nTo: b@example.net\nSubject: lf\n\nline one\nline two\n".bytes
        let header = try DKIMSigner(domain: "example.com", selector: "s", key: key).signatureHeader(for: lf, now: Date())
        let verifier = DKIMVerifier(resolver: DKIMVerifierTests.zone(key.publicKeyRecord()))
        #expect(await verifier.verify(header.bytes + lf).map(\.result) == [.pass])
        let crlf = String(decoding: lf, as: UTF8.self).replacingOccurrences(of: "\n", with: "\r\n").bytes
        #expect(await verifier.verify(header.bytes + crlf).map(\.result) == [.pass])
    }

    @Test func macroExpansionIsBounded() throws {
        let spec = try SPFMacroString(parsing: Substring(String(repeating: "%{s}", count: 400) + ".example.com"))
        let context = SPFVerifier.Context(
            ip: IPAddress("192.0.2.3")!, sender: String(repeating: "l", count: 60) + "@" + String(repeating: "d", count: 60) + ".example",
            localPart: String(repeating: "l", count: 60), senderDomain: "d.example", helo: "h.example")
        let verifier = SPFVerifier(resolver: FakeResolver())
        #expect(verifier.expand(spec, domain: "example.com", context: context).utf8.count <= MailAuthLimits.maxMacroExpansion)
    }
}
