import Foundation
import Testing

@testable import MailAuth

/// A DNS zone as tables. A name present in no table is NXDOMAIN; a name present in another
/// table answers empty; names in `failing` give a temporary error. Counts queries.
final class FakeResolver: MailAuthResolver, @unchecked Sendable {
    var txt: [String: [String]] = [:]
    var a: [String: [String]] = [:]
    var aaaa: [String: [String]] = [:]
    var mx: [String: [MailAuthMXRecord]] = [:]
    var ptr: [String: [String]] = [:]
    var failing: Set<String> = []
    private let lock = NSLock()
    private var _queries: [String] = []

    var queries: [String] { lock.withLock { _queries } }

    init() {}

    private func answer<T>(_ type: String, _ name: String, _ table: [String: [T]]) throws(MailAuthDNSError) -> [T] {
        let key = name.lowercased().hasSuffix(".") ? String(name.lowercased().dropLast()) : name.lowercased()
        lock.withLock { _queries.append("\(type) \(key)") }
        if failing.contains(key) { throw .temporary("SERVFAIL") }
        if let records = table[key] { return records }
        let exists = txt[key] != nil || a[key] != nil || aaaa[key] != nil || mx[key] != nil
        if exists { return [] }
        throw .noSuchDomain
    }

    func txt(_ name: String) async throws(MailAuthDNSError) -> [String] { try answer("TXT", name, txt) }
    func a(_ name: String) async throws(MailAuthDNSError) -> [String] { try answer("A", name, a) }
    func aaaa(_ name: String) async throws(MailAuthDNSError) -> [String] { try answer("AAAA", name, aaaa) }
    func mx(_ name: String) async throws(MailAuthDNSError) -> [MailAuthMXRecord] { try answer("MX", name, mx) }
    func ptr(_ ip: String) async throws(MailAuthDNSError) -> [String] { try answer("PTR", ip, ptr) }
}

enum TestError: Error, CustomStringConvertible {
    case command(String)
    var description: String {
        switch self {
        case .command(let text): text
        }
    }
}

/// Runs a program with `stdin`, returning its exit status, standard output and error.
@discardableResult
func run(_ arguments: [String], stdin: [UInt8] = []) throws -> (status: Int32, output: [UInt8], error: String) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mailauth-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let input = directory.appendingPathComponent("stdin")
    let output = directory.appendingPathComponent("stdout")
    let errors = directory.appendingPathComponent("stderr")
    try Data(stdin).write(to: input)
    try Data().write(to: output)
    try Data().write(to: errors)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.standardInput = try FileHandle(forReadingFrom: input)
    process.standardOutput = try FileHandle(forWritingTo: output)
    process.standardError = try FileHandle(forWritingTo: errors)
    try process.run()
    process.waitUntilExit()
    return (
        process.terminationStatus, Array(try Data(contentsOf: output)),
        String(decoding: try Data(contentsOf: errors), as: UTF8.self)
    )
}

/// Test keys made with openssl once per test process, in a temporary directory.
enum TestKeys {
    struct Key: Sendable {
        /// PKCS#8 PEM ("PRIVATE KEY"), as `openssl genpkey` writes it.
        var pkcs8: String
        /// PKCS#1 PEM ("RSA PRIVATE KEY") for RSA keys (what dkimpy reads); same as pkcs8 for Ed25519.
        var traditional: String
        var traditionalPath: String
        var pkcs8Path: String
    }

    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("mailauth-keys-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TestKeys.directory) }
        return url
    }()

    static func generate(_ name: String, algorithm: [String]) -> Key? {
        let pkcs8 = directory.appendingPathComponent("\(name).pem").path
        guard (try? run(["openssl", "genpkey"] + algorithm + ["-out", pkcs8]))?.status == 0 else { return nil }
        var traditional = pkcs8
        if algorithm.contains("RSA") {
            traditional = directory.appendingPathComponent("\(name)-pkcs1.pem").path
            guard (try? run(["openssl", "rsa", "-in", pkcs8, "-traditional", "-out", traditional]))?.status == 0 else { return nil }
        }
        guard let p8 = try? String(contentsOfFile: pkcs8, encoding: .utf8),
            let p1 = try? String(contentsOfFile: traditional, encoding: .utf8)
        else {
            return nil
        }
        return Key(pkcs8: p8, traditional: p1, traditionalPath: traditional, pkcs8Path: pkcs8)
    }

    static let rsa2048 = generate("rsa2048", algorithm: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    static let rsa1024 = generate("rsa1024", algorithm: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"])
    static let rsa512 = generate("rsa512", algorithm: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512"])
    static let ed25519 = generate("ed25519", algorithm: ["-algorithm", "ed25519"])
}

/// dkimpy, the independent implementation the interoperability tests check against.
enum DKIMPy {
    static let helper = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("dkimpy_helper.py").path

    /// True when python3 can import dkim and nacl (Ed25519); otherwise the interop tests fail
    /// with an install hint rather than silently passing.
    static let available: Bool = {
        (try? run(["python3", "-c", "import dkim, nacl, dns"]))?.status == 0
    }()

    static let installHint = "dkimpy missing: pip install dkimpy pynacl dnspython"

    /// dkimpy's verdict on the topmost signature, with `record` as the only DNS answer.
    static func verify(_ message: [UInt8], record: String) throws -> Bool {
        let recordFile = TestKeys.directory.appendingPathComponent("record-\(UUID().uuidString).txt")
        try Data(record.utf8).write(to: recordFile)
        defer { try? FileManager.default.removeItem(at: recordFile) }
        let result = try run(["python3", helper, "verify", recordFile.path], stdin: message)
        guard result.status == 0 else { throw TestError.command("dkimpy verify failed: \(result.error)") }
        return String(decoding: result.output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == "pass"
    }

    /// The message signed by dkimpy.
    static func sign(
        _ message: [UInt8], keyPath: String, selector: String, domain: String, canonicalization: String, algorithm: String,
        length: Bool = false
    ) throws -> [UInt8] {
        var arguments = ["python3", helper, "sign", keyPath, selector, domain, canonicalization, algorithm]
        if length { arguments.append("--length") }
        let result = try run(arguments, stdin: message)
        guard result.status == 0 else { throw TestError.command("dkimpy sign failed: \(result.error)") }
        return result.output
    }
}

extension String {
    var bytes: [UInt8] { Array(utf8) }
}

/// A plain test message, CRLF line endings.
func sampleMessage(from: String = "Alice <alice@example.com>", extraHeaders: String = "", body: String? = nil) -> [UInt8] {
    let text =
        "From: \(from)\r\n" + "To: Bob <bob@example.net>\r\n" + "Subject: Quarterly  report\r\n \tfolded line\r\n"
        + "Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n" + "Message-ID: <1234@example.com>\r\n" + extraHeaders + "\r\n"
        + (body ?? "Hello Bob,\r\n\r\n  Here is  the report.\t \r\n\r\n\r\n")
    return text.bytes
}
