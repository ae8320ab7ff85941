import Foundation
import Testing

@testable import MailAuth

@Suite("DKIM keys")
struct DKIMKeyTests {
    @Test func loadsRSAInBothEncodings() throws {
        let key = try #require(TestKeys.rsa2048)
        let pkcs8 = try DKIMSigningKey(pem: key.pkcs8)
        let pkcs1 = try DKIMSigningKey(pem: key.traditional)
        #expect(key.traditional.contains("BEGIN RSA PRIVATE KEY"))
        #expect(pkcs8.algorithm == .rsaSHA256)
        #expect(pkcs1.algorithm == .rsaSHA256)
        #expect(pkcs8.publicKeyRecord() == pkcs1.publicKeyRecord())
        #expect(pkcs8.publicKeyRecord().hasPrefix("v=DKIM1; k=rsa; p=MIIBIjAN"))
    }

    @Test func loadsEd25519() throws {
        let key = try #require(TestKeys.ed25519)
        let loaded = try DKIMSigningKey(pem: key.pkcs8)
        #expect(loaded.algorithm == .ed25519SHA256)
        let record = loaded.publicKeyRecord()
        #expect(record.hasPrefix("v=DKIM1; k=ed25519; p="))
        // RFC 8463 §4: p= is the bare 32-byte key.
        #expect(Data(base64Encoded: String(record.dropFirst("v=DKIM1; k=ed25519; p=".count)))?.count == 32)
    }

    @Test func acceptsRSA1024() throws {
        let key = try #require(TestKeys.rsa1024)
        #expect(try DKIMSigningKey(pem: key.traditional).algorithm == .rsaSHA256)
    }

    @Test func refusesBadKeys() throws {
        let small = try #require(TestKeys.rsa512)
        #expect(throws: DKIMKeyError.self) { try DKIMSigningKey(pem: small.traditional) }
        #expect(throws: DKIMKeyError.noPEMBlock) { try DKIMSigningKey(pem: "not a key") }
        #expect(throws: DKIMKeyError.unsupportedPEMType("EC PRIVATE KEY")) {
            try DKIMSigningKey(pem: "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")
        }
        #expect(throws: DKIMKeyError.self) { try DKIMSigningKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n") }
        #expect(throws: DKIMKeyError.self) { try DKIMSigningKey(pem: "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n") }
    }
}

/// Signing here, verifying with dkimpy (and with our own verifier).
@Suite("DKIM signing, checked by dkimpy")
struct DKIMSigningInteropTests {
    enum KeyKind: String, CaseIterable, Sendable { case rsa2048, ed25519 }

    static func signingKey(_ kind: KeyKind) throws -> DKIMSigningKey {
        let key = try #require(kind == .rsa2048 ? TestKeys.rsa2048 : TestKeys.ed25519)
        return try DKIMSigningKey(pem: key.pkcs8)
    }

    @Test(arguments: KeyKind.allCases, [DKIMCanonicalization.relaxed, .simple])
    func dkimpyVerifiesOurSignature(_ kind: KeyKind, _ canonicalization: DKIMCanonicalization) async throws {
        try #require(DKIMPy.available, "\(DKIMPy.installHint)")
        let key = try Self.signingKey(kind)
        let signer = DKIMSigner(
            domain: "example.com", selector: "sel2025", key: key, headerCanonicalization: canonicalization,
            bodyCanonicalization: canonicalization)
        let message = sampleMessage()
        let header = try signer.signatureHeader(for: message, now: Date())
        let signed = header.bytes + message
        #expect(try DKIMPy.verify(signed, record: key.publicKeyRecord()))

        let zone = FakeResolver()
        zone.txt["sel2025._domainkey.example.com"] = [key.publicKeyRecord()]
        let results = await DKIMVerifier(resolver: zone).verify(signed)
        #expect(results.map(\.result) == [.pass], "\(results)")
        #expect(results.first?.domain == "example.com")
        #expect(results.first?.selector == "sel2025")

        // A body change breaks it for dkimpy too.
        let tampered = header.bytes + sampleMessage(body: "Hello Bob,\r\n\r\nHere is the changed report.\r\n")
        #expect(try !DKIMPy.verify(tampered, record: key.publicKeyRecord()))
    }

    @Test func headerIsFoldedAndOversignsFrom() throws {
        let key = try Self.signingKey(.rsa2048)
        let signer = DKIMSigner(domain: "Example.COM", selector: "sel", key: key)
        let header = try signer.signatureHeader(
            for: sampleMessage(extraHeaders: "Cc: c@example.org\r\nReceived: by x\r\n"), now: Date(timeIntervalSince1970: 1_700_000_000))
        #expect(header.hasPrefix("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel;"))
        #expect(header.hasSuffix("\r\n"))
        let lines = header.dropLast(2).components(separatedBy: "\r\n")
        #expect(lines.count > 3)
        for line in lines { #expect(line.count < 78, "\(line)") }
        let unfolded = header.replacingOccurrences(of: "\r\n\t", with: "")
        #expect(unfolded.contains("t=1700000000;"))
        #expect(unfolded.contains("h=from:from:to:cc:subject:date:message-id;"))
        #expect(!unfolded.contains("received"))
    }

    @Test func addingASecondFromBreaksTheSignature() async throws {
        let key = try Self.signingKey(.ed25519)
        let message = sampleMessage()
        let header = try DKIMSigner(domain: "example.com", selector: "s", key: key).signatureHeader(for: message, now: Date())
        let zone = FakeResolver()
        zone.txt["s._domainkey.example.com"] = [key.publicKeyRecord()]
        let verifier = DKIMVerifier(resolver: zone)
        #expect(await verifier.verify(header.bytes + message).map(\.result) == [.pass])
        let extraFrom = header.bytes + "From: Mallory <ceo@example.com>\r\n".bytes + message
        #expect(await verifier.verify(extraFrom).map(\.result) == [.fail])
        // A field that was not signed may be added.
        let extraReceived = "Received: from relay\r\n".bytes + header.bytes + "X-Spam: no\r\n".bytes + message
        #expect(await verifier.verify(extraReceived).map(\.result) == [.pass])
    }

    @Test func expiredSignature() async throws {
        try #require(DKIMPy.available, "\(DKIMPy.installHint)")
        let key = try Self.signingKey(.rsa2048)
        let message = sampleMessage()
        let signer = DKIMSigner(domain: "example.com", selector: "s", key: key, signatureLifetime: 3600)
        let old = try signer.signatureHeader(for: message, now: Date().addingTimeInterval(-2 * 86400)).bytes + message
        let fresh = try signer.signatureHeader(for: message, now: Date()).bytes + message
        // dkimpy allows 10 hours of clock skew, hence a signature that expired a day ago.
        #expect(try !DKIMPy.verify(old, record: key.publicKeyRecord()))
        #expect(try DKIMPy.verify(fresh, record: key.publicKeyRecord()))
        let zone = FakeResolver()
        zone.txt["s._domainkey.example.com"] = [key.publicKeyRecord()]
        let verifier = DKIMVerifier(resolver: zone)
        let expired = await verifier.verify(old)
        #expect(expired.map(\.result) == [.fail])
        #expect(expired.first?.reason == "signature expired")
        #expect(await verifier.verify(fresh).map(\.result) == [.pass])
    }

    @Test func signerRefusesBadInput() throws {
        let key = try Self.signingKey(.ed25519)
        #expect(throws: DKIMSigningError.noFromHeader) {
            try DKIMSigner(domain: "example.com", selector: "s", key: key).signatureHeader(for: "Subject: x\r\n\r\nbody".bytes, now: Date())
        }
        #expect(throws: DKIMSigningError.invalidDomain("bad domain")) {
            try DKIMSigner(domain: "bad domain", selector: "s", key: key).signatureHeader(for: sampleMessage(), now: Date())
        }
    }
}

/// dkimpy signing, our verifier checking.
@Suite("DKIM verification of dkimpy signatures")
struct DKIMVerificationInteropTests {
    static func signedByDKIMPy(
        key: TestKeys.Key, algorithm: String, canonicalization: String, length: Bool = false, message: [UInt8] = sampleMessage()
    ) throws -> [UInt8] {
        try DKIMPy.sign(
            message, keyPath: key.traditionalPath, selector: "py", domain: "example.org", canonicalization: canonicalization,
            algorithm: algorithm,
            length: length)
    }

    static func verifier(record: String) -> DKIMVerifier {
        let zone = FakeResolver()
        zone.txt["py._domainkey.example.org"] = [record]
        return DKIMVerifier(resolver: zone)
    }

    static func replacing(_ old: String, with new: String, in message: [UInt8]) -> [UInt8] {
        String(decoding: message, as: UTF8.self).replacingOccurrences(of: old, with: new).bytes
    }

    @Test(arguments: ["rsa-sha256", "ed25519-sha256"], ["relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"])
    func verifiesAndDetectsTampering(_ algorithm: String, _ canonicalization: String) async throws {
        try #require(DKIMPy.available, "\(DKIMPy.installHint)")
        let key = try #require(algorithm == "rsa-sha256" ? TestKeys.rsa2048 : TestKeys.ed25519)
        let record = try DKIMSigningKey(pem: key.pkcs8).publicKeyRecord()
        let signed = try Self.signedByDKIMPy(key: key, algorithm: algorithm, canonicalization: canonicalization)
        let verifier = Self.verifier(record: record)

        let good = await verifier.verify(signed)
        #expect(good.map(\.result) == [.pass], "\(good)")
        #expect(good.first?.domain == "example.org")
        #expect(good.first?.headerB.count == 8)

        let body = await verifier.verify(Self.replacing("Here is", with: "Here was", in: signed))
        #expect(body.map(\.result) == [.fail])
        #expect(body.first?.reason == "body hash did not verify")

        let header = await verifier.verify(Self.replacing("Subject: Quarterly", with: "Subject: Quarterl", in: signed))
        #expect(header.map(\.result) == [.fail])
        #expect(header.first?.reason == "signature did not verify")

        // Whitespace changes survive relaxed canonicalization only.
        let spaced = Self.replacing("Subject: Quarterly  report", with: "Subject:   Quarterly report", in: signed)
        let expected: DKIMVerificationResult.Result = canonicalization.hasPrefix("relaxed") ? .pass : .fail
        #expect(await verifier.verify(spaced).map(\.result) == [expected])
    }

    @Test func bodyLengthIsHonouredAndFlagged() async throws {
        try #require(DKIMPy.available, "\(DKIMPy.installHint)")
        let key = try #require(TestKeys.rsa2048)
        let record = try DKIMSigningKey(pem: key.pkcs8).publicKeyRecord()
        let signed = try Self.signedByDKIMPy(key: key, algorithm: "rsa-sha256", canonicalization: "relaxed/relaxed", length: true)
        let verifier = Self.verifier(record: record)

        let exact = await verifier.verify(signed)
        #expect(exact.map(\.result) == [.pass])
        #expect(exact.first?.bodyLengthLimited == false)

        // Text appended after the l= octets is not covered: still pass, but flagged.
        let appended = await verifier.verify(signed + "Click here: http://evil.example/\r\n".bytes)
        #expect(appended.map(\.result) == [.pass])
        #expect(appended.first?.bodyLengthLimited == true)
        #expect(try DKIMPy.verify(signed + "appended\r\n".bytes, record: record))

        // Changes inside the covered part still fail.
        #expect(await verifier.verify(Self.replacing("Hello Bob", with: "Hello Eve", in: signed)).map(\.result) == [.fail])

        // A body cut shorter than l= fails.
        let cut = Self.replacing("Here is  the report.", with: "", in: signed)
        let short = await verifier.verify(cut)
        #expect(short.map(\.result) == [.fail])
    }

    @Test func rsaSHA1IsRefused() async throws {
        try #require(DKIMPy.available, "\(DKIMPy.installHint)")
        let key = try #require(TestKeys.rsa2048)
        let record = try DKIMSigningKey(pem: key.pkcs8).publicKeyRecord()
        let signed = try Self.signedByDKIMPy(key: key, algorithm: "rsa-sha1", canonicalization: "relaxed/relaxed")
        let results = await Self.verifier(record: record).verify(signed)
        #expect(results.map(\.result) == [.permerror])
        #expect(results.first?.reason?.contains("RFC 8301") == true)
    }

    @Test func rsaKeySizes() async throws {
        try #require(DKIMPy.available, "\(DKIMPy.installHint)")
        // 1024 bits: RFC 8301 says verifiers must accept it.
        let medium = try #require(TestKeys.rsa1024)
        let mediumRecord = try DKIMSigningKey(pem: medium.traditional).publicKeyRecord()
        let mediumSigned = try Self.signedByDKIMPy(key: medium, algorithm: "rsa-sha256", canonicalization: "relaxed/relaxed")
        #expect(await Self.verifier(record: mediumRecord).verify(mediumSigned).map(\.result) == [.pass])

        // 512 bits: refused.
        let small = try #require(TestKeys.rsa512)
        let publicKey = try run(["openssl", "pkey", "-in", small.pkcs8Path, "-pubout", "-outform", "DER"])
        let smallRecord = "v=DKIM1; k=rsa; p=" + Data(publicKey.output).base64EncodedString()
        let smallSigned = try Self.signedByDKIMPy(key: small, algorithm: "rsa-sha256", canonicalization: "relaxed/relaxed")
        let results = await Self.verifier(record: smallRecord).verify(smallSigned)
        #expect(results.map(\.result) == [.permerror])
    }
}

@Suite("DKIM verifier details")
struct DKIMVerifierTests {
    static let key = try? DKIMSigningKey(pem: TestKeys.ed25519?.pkcs8 ?? "")

    static func signed(_ message: [UInt8] = sampleMessage(), selector: String = "s", domain: String = "example.com") throws -> [UInt8] {
        let key = try #require(Self.key)
        return try DKIMSigner(domain: domain, selector: selector, key: key).signatureHeader(for: message, now: Date()).bytes + message
    }

    static func zone(_ record: String?) -> FakeResolver {
        let zone = FakeResolver()
        if let record { zone.txt["s._domainkey.example.com"] = [record] }
        return zone
    }

    @Test func unsignedMessage() async {
        #expect(await DKIMVerifier(resolver: FakeResolver()).verify(sampleMessage()).isEmpty)
    }

    @Test func keyRecordProblems() async throws {
        let key = try #require(Self.key)
        let signed = try Self.signed()
        let good = key.publicKeyRecord()
        let base64Key = String(good.dropFirst("v=DKIM1; k=ed25519; p=".count))
        let rsaRecord = try DKIMSigningKey(pem: try #require(TestKeys.rsa2048).pkcs8).publicKeyRecord()
        let cases: [(String?, DKIMVerificationResult.Result, String)] = [
            (good, .pass, ""),
            ("k=ed25519; p=\(base64Key)", .pass, ""),
            ("v=DKIM1; k=ed25519; t=y; p=\(base64Key)", .pass, ""),
            ("v=DKIM1; k=ed25519; h=sha256:sha1; s=email; p=\(base64Key)", .pass, ""),
            ("v=DKIM1; k=ed25519; p=", .permerror, "key revoked"),
            (nil, .permerror, "no key for signature"),
            ("v=DKIM2; k=ed25519; p=\(base64Key)", .permerror, "key record v= is not DKIM1"),
            ("v=DKIM1; k=ed25519; h=sha1; p=\(base64Key)", .permerror, "key record h= excludes sha256"),
            ("v=DKIM1; k=ed25519; s=tlsrpt; p=\(base64Key)", .permerror, "key not for email (s=)"),
            ("v=DKIM1; k=dsa; p=\(base64Key)", .permerror, "unknown key type k=dsa"),
            ("v=DKIM1; k=ed25519; p=AAAA", .permerror, "Ed25519 key is not 32 bytes"),
            (rsaRecord, .permerror, "key type does not match a="),
            ("garbage", .permerror, "key record syntax: malformedTag(\"garbage\")"),
        ]
        for (record, expected, reason) in cases {
            let result = await DKIMVerifier(resolver: Self.zone(record)).verify(signed)
            #expect(result.map(\.result) == [expected], "\(record ?? "no record")")
            if !reason.isEmpty { #expect(result.first?.reason == reason) }
        }
        let testing = await DKIMVerifier(resolver: Self.zone("v=DKIM1; k=ed25519; t=y; p=\(base64Key)")).verify(signed)
        #expect(testing.first?.testing == true)
    }

    @Test func dnsErrors() async throws {
        let zone = Self.zone(nil)
        zone.failing = ["s._domainkey.example.com"]
        let result = await DKIMVerifier(resolver: zone).verify(try Self.signed())
        #expect(result.map(\.result) == [.temperror])
    }

    @Test func firstUsableRecordWins() async throws {
        let key = try #require(Self.key)
        let zone = FakeResolver()
        zone.txt["s._domainkey.example.com"] = ["unrelated text", key.publicKeyRecord()]
        #expect(await DKIMVerifier(resolver: zone).verify(try Self.signed()).map(\.result) == [.pass])
    }

    static func withSignature(_ value: String) -> [UInt8] {
        ("DKIM-Signature: " + value + "\r\n").bytes + sampleMessage()
    }

    @Test(arguments: [
        ("v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA", "signature has no b= tag"),
        ("v=2; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA", "unsupported signature version v=2"),
        ("v=1; a=rsa-md5; d=example.com; s=s; h=from; bh=AAAA; b=AAAA", "unknown algorithm a=rsa-md5"),
        ("v=1; a=rsa-sha256; c=fancy; d=example.com; s=s; h=from; bh=AAAA; b=AAAA", "unknown canonicalization c=fancy"),
        ("v=1; a=rsa-sha256; d=example.com; s=s; h=to:subject; bh=AAAA; b=AAAA", "From is not in h="),
        ("v=1; a=rsa-sha256; d=exa mple.com; s=s; h=from; bh=AAAA; b=AAAA", "d= is not a domain name"),
        ("v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA", "bh= is not a SHA-256 hash"),
        (
            "v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA; i=user@example.net",
            "i= is not in the d= domain"
        ),
        (
            "v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA; l=-1",
            "l= is not a number"
        ),
        (
            "v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA; t=200; x=100",
            "x= is before t="
        ),
        ("v=1; v=1", "signature syntax: duplicateTag(\"v\")"),
        ("v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=!!!!; b=AAAA", "bh= is not valid base64"),
    ])
    func malformedSignatures(_ value: String, _ reason: String) async {
        let result = await DKIMVerifier(resolver: FakeResolver()).verify(Self.withSignature(value))
        #expect(result.map(\.result) == [.permerror])
        #expect(result.first?.reason == reason)
    }

    @Test func reportsIdentifiersOfUnusableSignatures() async {
        let result = await DKIMVerifier(resolver: FakeResolver()).verify(
            Self.withSignature("v=1; a=rsa-sha1; d=Example.com; s=sel; h=from; bh=AAAA; b=abcdefghijkl"))
        #expect(result.first?.domain == "example.com")
        #expect(result.first?.selector == "sel")
        #expect(result.first?.headerB == "abcdefgh")
    }

    @Test func signatureCountIsBounded() async throws {
        let key = try #require(Self.key)
        var message = sampleMessage()
        for _ in 0..<7 {
            message =
                try DKIMSigner(domain: "example.com", selector: "s", key: key).signatureHeader(for: message, now: Date()).bytes + message
        }
        let results = await DKIMVerifier(resolver: Self.zone(key.publicKeyRecord())).verify(message)
        #expect(results.count == MailAuthLimits.maxDKIMSignatures)
        #expect(results.allSatisfy { $0.result == .pass })
    }

    @Test func strictKeyFlag() async throws {
        let key = try #require(Self.key)
        // A signature with i= in a subdomain, against a t=s key: refused.
        let record = key.publicKeyRecord() + "; t=s"
        let forged = Self.withSignature(
            "v=1; a=ed25519-sha256; d=example.com; i=@sub.example.com; s=s; h=from; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA"
        )
        let result = await DKIMVerifier(resolver: Self.zone(record)).verify(forged)
        #expect(result.map(\.result) == [.permerror])
        #expect(result.first?.reason == "key requires i= domain to equal d= (t=s)")
    }

    @Test func headerSelectionIsBottomUp() {
        let message = RawMessage("X-A: 1\r\nX-B: b\r\nx-a: 2\r\nX-A: 3\r\n\r\n".bytes)
        let selected = DKIMHeaderSelection.select(["x-a", "X-B", "x-a", "x-a", "x-a"], from: message.fields)
        #expect(selected.map { String(decoding: $0.bytes, as: UTF8.self) } == ["X-A: 3", "X-B: b", "x-a: 2", "X-A: 1"])
    }

    @Test(arguments: [
        ("DKIM-Signature: v=1; b=abc\r\n def; bh=xyz", "DKIM-Signature: v=1; b=; bh=xyz"),
        ("DKIM-Signature: v=1; bh=xyz; b = abc def ", "DKIM-Signature: v=1; bh=xyz; b ="),
        ("DKIM-Signature: b=abc", "DKIM-Signature: b="),
        ("DKIM-Signature: v=1", "DKIM-Signature: v=1"),
    ])
    func signatureValueRemoval(_ field: String, _ expected: String) throws {
        let parsed = try #require(RawMessage((field + "\r\n\r\n").bytes).fields.first)
        #expect(String(decoding: DKIMVerifier.removingSignatureValue(parsed).bytes, as: UTF8.self) == expected)
    }
}
