import Foundation
import Logging
import NIOCore
import NIOPosix
@testable import SMTPClient

enum TestSupport {
    static let logger: Logger = {
        var logger = Logger(label: "SMTPClientTests")
        logger.logLevel = .critical
        return logger
    }()

    /// A port nothing listens on right now (bound to 0, then released).
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    static func isListening(port: Int) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(200))
                .connect(host: "127.0.0.1", port: port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("smtpclient-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Runs a program to its end; true when it exited with 0.
    @discardableResult
    static func run(_ path: String, _ arguments: [String]) throws -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    static func message(_ text: String) -> [UInt8] {
        Array(text.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n").utf8)
    }
}

/// Postfix's `smtp-sink` on a free loopback port, started for one test and stopped after it.
final class SmtpSink {
    static let path = "/usr/sbin/smtp-sink"
    static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: path) }

    let port: Int
    let dumpDirectory: URL?
    private let process: Process

    private init(port: Int, dumpDirectory: URL?, process: Process) {
        self.port = port
        self.dumpDirectory = dumpDirectory
        self.process = process
    }

    /// `options` are smtp-sink's (`-f rcpt`, `-Q data`, …); with `dump`, each transaction is
    /// written to a file in a fresh directory.
    static func start(_ options: [String] = [], dump: Bool = false) async throws -> SmtpSink {
        var directory: URL?
        if dump {
            let url = try TestSupport.temporaryDirectory()
            // smtp-sink drops to `nobody` when started as root; it must still write here.
            try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: url.path)
            directory = url
        }
        for _ in 0..<5 {
            let port = try await TestSupport.freePort()
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            var arguments = options
            if getuid() == 0 { arguments += ["-u", "nobody"] }
            if let directory { arguments += ["-d", directory.path + "/msg."] }
            process.arguments = arguments + ["127.0.0.1:\(port)", "10"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            for _ in 0..<100 where process.isRunning {
                if await TestSupport.isListening(port: port) { return SmtpSink(port: port, dumpDirectory: directory, process: process) }
                try await Task.sleep(for: .milliseconds(50))
            }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        throw SmtpSinkError.didNotStart
    }

    func stop() {
        // SIGKILL: the child inherits the test runner's blocked signals, SIGTERM among them.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        if let dumpDirectory { try? FileManager.default.removeItem(at: dumpDirectory) }
    }

    /// The dumped transactions, once each is complete (smtp-sink ends a dump with an empty line).
    func dumps(count: Int) async throws -> [String] {
        guard let dumpDirectory else { return [] }
        for _ in 0..<100 {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dumpDirectory.path)) ?? []
            let texts = names.sorted().compactMap { try? String(contentsOf: dumpDirectory.appendingPathComponent($0), encoding: .utf8) }
            if texts.count >= count, texts.allSatisfy({ $0.hasSuffix("\n\n") }) { return texts }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw SmtpSinkError.noDump
    }

    enum SmtpSinkError: Error {
        case didNotStart
        case noDump
    }
}
