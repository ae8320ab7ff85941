import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
@testable import POP3

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum TestSupport {
    static let logger: Logger = {
        var logger = Logger(label: "POP3Tests")
        logger.logLevel = .critical
        return logger
    }()

    struct ProcessResult: Sendable {
        var status: Int32
        var output: String
    }

    enum SpawnError: Error {
        case spawn(String, Int32)
        case timedOut(String)
    }

    /// Runs a program to its end with posix_spawn and waitpid (Foundation's `Process` hangs
    /// now and then when many run at once in one test process), stdout and stderr going to a
    /// file that is read back. The wait runs on a thread of its own, off the cooperative pool;
    /// a program still running after `timeout` seconds is killed.
    static func run(_ arguments: [String], timeout: Double = 60) async throws -> ProcessResult {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try runBlocking(arguments, timeout: timeout) })
            }
        }
    }

    private static func runBlocking(_ arguments: [String], timeout: Double) throws -> ProcessResult {
        let outputPath = NSTemporaryDirectory() + "pop3tests-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, nil, argv, envp)
        guard result == 0 else { throw SpawnError.spawn(arguments[0], result) }
        var status: Int32 = 0
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while true {
            let waited = waitpid(pid, &status, WNOHANG)
            if waited == pid { break }
            if waited < 0 && errno != EINTR { break }
            if !timedOut && Date() > deadline {
                timedOut = true
                kill(pid, SIGKILL)
            }
            usleep(5000)
        }
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        if timedOut { throw SpawnError.timedOut(arguments.joined(separator: " ") + "\n" + output) }
        // WIFEXITED / WEXITSTATUS
        return ProcessResult(status: (status & 0x7F) == 0 ? (status >> 8) & 0xFF : -1, output: output)
    }

    static func installed(_ tool: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
    }

    static var pythonAvailable: Bool { installed("python3") }
    static var opensslAvailable: Bool { installed("openssl") }

    /// What every Python client script starts with: the port in `port`, helpers that print
    /// responses one per line (`>` before each line of a multi-line response) and `raw`
    /// conversations that print what the server sent as `S:` lines.
    static let pythonPrelude = #"""
        import base64, poplib, socket, ssl, sys, time
        port = int(sys.argv[1])
        def text(b):
            return b.decode('latin-1')
        def show(x, octets=False):
            if isinstance(x, tuple) and len(x) == 3 and isinstance(x[1], list):
                print(text(x[0]))
                for line in x[1]:
                    print('>' + text(line))
                if octets:
                    print('octets', x[2])
            elif isinstance(x, bytes):
                print(text(x))
            else:
                print(x)
        def attempt(f, *args):
            try:
                show(f(*args))
            except poplib.error_proto as e:
                print('error', text(e.args[0]))
        def capa(p):
            for name, args in p.capa().items():
                print(' '.join([name] + args))
        def dump(data):
            for line in text(data).split('\r\n')[:-1]:
                print('S: ' + line)
        def recv_all(s):
            chunks = []
            while True:
                try:
                    d = s.recv(65536)
                except (ssl.SSLError, ConnectionResetError):
                    d = b''
                if not d:
                    return b''.join(chunks)
                chunks.append(d)
        def recv_lines(s, count):
            data = b''
            while data.count(b'\r\n') < count:
                d = s.recv(1)
                if not d:
                    break
                data += d
            return data
        """#

    /// Runs a Python client against `port`; extra arguments follow the port.
    static func python(_ script: String, port: Int, _ arguments: [String] = []) async throws -> ProcessResult {
        try await run(["python3", "-c", pythonPrelude + "\n" + script, "\(port)"] + arguments)
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("pop3tests-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A throwaway self-signed certificate for 127.0.0.1 made by `openssl req`, with the
    /// PEM path of the certificate for the client to trust. Remove `directory` after use.
    struct Certificate {
        var context: NIOSSLContext
        var certificatePath: String
        var directory: URL

        static func make() async throws -> Certificate {
            let directory = try temporaryDirectory()
            let keyPath = directory.appendingPathComponent("key.pem").path
            let certificatePath = directory.appendingPathComponent("cert.pem").path
            let result = try await run([
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", keyPath, "-out", certificatePath, "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ])
            guard result.status == 0 else { throw SpawnError.spawn("openssl: \(result.output)", result.status) }
            let configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificatePath).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem)))
            return Certificate(context: try NIOSSLContext(configuration: configuration), certificatePath: certificatePath, directory: directory)
        }
    }

    /// Waits until `condition` holds, for at most `seconds`.
    static func eventually(_ seconds: Double = 10, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    /// The three messages the session transcripts use (57, 33 and 21 octets with CRLF).
    static let threeMessages: [MemoryMaildrop.Content] = Transcript.defaultStore.map { .bytes(Array($0.utf8)) }
}

/// A maildrop in memory: what the Node's shared-tree maildrop does, minus the files. It
/// records reads, commits and releases.
final class MemoryMaildrop: POP3Maildrop {
    enum Content: Sendable {
        case bytes([UInt8])
        /// `octets` of 64-octet CRLF lines, made as they are read.
        case generated(octets: Int)
        /// Reading fails at once.
        case unreadable
    }

    struct Record: Sendable {
        var commits: [[String]] = []
        var releases = 0
        var chunksRead = 0
    }

    let messages: [POP3MessageInfo]
    let contents: [Content]
    let chunkSize: Int
    let record = NIOLockedValueBox(Record())
    private let onRelease: @Sendable () -> Void

    init(_ contents: [Content], chunkSize: Int = 64 * 1024, onRelease: @escaping @Sendable () -> Void = {}) {
        self.contents = contents
        self.chunkSize = chunkSize
        self.onRelease = onRelease
        messages = contents.enumerated().map { index, content in
            switch content {
            case .bytes(let bytes):
                let bareLF = zip([0] + bytes, bytes).filter { $1 == 0x0a && $0 != 0x0d }.count
                return POP3MessageInfo(uidl: "uid-\(index + 1)", size: bytes.count + bareLF)
            case .generated(let octets):
                return POP3MessageInfo(uidl: "uid-\(index + 1)", size: octets)
            case .unreadable:
                return POP3MessageInfo(uidl: "uid-\(index + 1)", size: 100)
            }
        }
    }

    struct Unreadable: Error {}

    func read(_ index: Int, chunk: ([UInt8]) async throws -> Void) async throws {
        switch contents[index] {
        case .unreadable:
            throw Unreadable()
        case .bytes(let bytes):
            var start = 0
            while start < bytes.count {
                let end = min(start + chunkSize, bytes.count)
                record.withLockedValue { $0.chunksRead += 1 }
                try await chunk(Array(bytes[start..<end]))
                start = end
            }
        case .generated(let octets):
            let line = [UInt8](repeating: 0x78, count: 62) + [0x0d, 0x0a]
            let full = Array((0..<(chunkSize / 64)).map { _ in line }.joined())
            var sent = 0
            while sent < octets {
                let count = min(full.count, octets - sent)
                record.withLockedValue { $0.chunksRead += 1 }
                try await chunk(Array(full[..<count]))
                sent += count
            }
        }
    }

    func commit(deleting uidls: [String]) async throws {
        record.withLockedValue { $0.commits.append(uidls) }
    }

    func release() async {
        record.withLockedValue { $0.releases += 1 }
        onRelease()
    }
}

/// The services a Node provides, in memory: users with passwords and mail, one lock per
/// maildrop (a second session gets `.inUse` until the first releases), connection counts.
final class MemoryServices: POP3Services {
    struct State: Sendable {
        var held: Set<String> = []
        var opened = 0
        var closed = 0
        var maildrops: [MemoryMaildrop] = []
        var authentications: [String] = []
    }

    let passwords: [String: String]
    let mail: [String: [MemoryMaildrop.Content]]
    let refusal: POP3Response?
    let state = NIOLockedValueBox(State())

    init(passwords: [String: String] = ["alice@example.test": "secret"], mail: [String: [MemoryMaildrop.Content]] = [:], refusal: POP3Response? = nil) {
        self.passwords = passwords
        self.mail = mail
        self.refusal = refusal
    }

    var maildrops: [MemoryMaildrop] { state.withLockedValue { $0.maildrops } }

    func connectionOpened(_ context: POP3ConnectionContext) -> POP3Response? {
        state.withLockedValue { $0.opened += 1 }
        return refusal
    }

    func connectionClosed(_ context: POP3ConnectionContext) {
        state.withLockedValue { $0.closed += 1 }
    }

    func authenticate(user: String, password: String, context: POP3ConnectionContext) async -> POP3AuthResult {
        state.withLockedValue { $0.authentications.append(user) }
        return passwords[user] == password ? .ok(user: user) : .invalid
    }

    func openMaildrop(user: String, context: POP3ConnectionContext) async -> POP3MaildropOpenResult {
        let state = self.state
        return state.withLockedValue { current in
            guard current.held.insert(user).inserted else { return .inUse }
            let maildrop = MemoryMaildrop(mail[user] ?? [], onRelease: { _ = state.withLockedValue { $0.held.remove(user) } })
            current.maildrops.append(maildrop)
            return .opened(maildrop)
        }
    }
}
