import Directory
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOSSL

/// The node's TLS server context, built from the PEM files named in LDAP
/// (`svcpkgTlsCertificateFile`, `svcpkgTlsKeyFile`). Each new connection asks for the current
/// context, so a renewed certificate (new files, or new paths in LDAP) applies to the next
/// connection without a restart. A bad certificate is reported and the last good one stays.
final class TLSContextProvider: Sendable {
    private struct Loaded {
        var certificatePath: String
        var keyPath: String
        var certificateModified: Date
        var keyModified: Date
        var context: NIOSSLContext
        var credentials: Credentials
    }

    /// The certificate chain and key a context was built from (what a handshake override takes).
    struct Credentials: Sendable {
        var chain: [NIOSSLCertificateSource]
        var key: NIOSSLPrivateKey
    }

    private struct State {
        var loaded: Loaded?
        var lastError: String?
        var lastCheck: Date = .distantPast
    }

    /// How often the files' mtimes are looked at (a stat each) when the paths did not change.
    static let recheckInterval: TimeInterval = 2

    private let state = NIOLockedValueBox(State())
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// The context for `config`, or nil when no certificate is configured or none ever loaded.
    func context(for config: NodeConfig, now: Date = Date()) -> NIOSSLContext? {
        guard let certificatePath = config.tlsCertificateFile, let keyPath = config.tlsKeyFile else { return nil }
        let current = state.withLockedValue { $0 }
        if let loaded = current.loaded, loaded.certificatePath == certificatePath, loaded.keyPath == keyPath,
           now.timeIntervalSince(current.lastCheck) < Self.recheckInterval {
            return loaded.context
        }
        let certificateModified = Self.modified(certificatePath)
        let keyModified = Self.modified(keyPath)
        if let loaded = current.loaded, loaded.certificatePath == certificatePath, loaded.keyPath == keyPath,
           loaded.certificateModified == certificateModified, loaded.keyModified == keyModified {
            state.withLockedValue { $0.lastCheck = now }
            return loaded.context
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
            guard !chain.isEmpty else { throw TLSSetupError("\(certificatePath) holds no certificate") }
            let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            let context = try NIOSSLContext(configuration: configuration)
            state.withLockedValue {
                $0.loaded = Loaded(
                    certificatePath: certificatePath, keyPath: keyPath, certificateModified: certificateModified ?? .distantPast,
                    keyModified: keyModified ?? .distantPast, context: context, credentials: Credentials(chain: chain, key: key))
                $0.lastError = nil
                $0.lastCheck = now
            }
            logger.notice("TLS certificate loaded", metadata: ["certificate": "\(certificatePath)", "key": "\(keyPath)"])
            return context
        } catch {
            let text = "cannot load TLS certificate \(certificatePath) / key \(keyPath): \(error)"
            let previous = state.withLockedValue { state -> NIOSSLContext? in
                if state.lastError != text { logger.error("\(text); keeping the previous certificate", metadata: [:]) }
                state.lastError = text
                state.lastCheck = now
                return state.loaded?.context
            }
            return previous
        }
    }

    /// The chain and key of the current context for `config` (checked as `context(for:)` does),
    /// for servers that take a `TLSConfiguration` rather than a context (Hummingbird's HTTPS).
    func credentials(for config: NodeConfig, now: Date = Date()) -> Credentials? {
        guard context(for: config, now: now) != nil else { return nil }
        return state.withLockedValue { $0.loaded?.credentials }
    }

    /// A server configuration whose every handshake asks for the current certificate, so a
    /// renewed one applies to the next connection, as on the other TLS ports.
    func liveServerConfiguration(config: @escaping @Sendable () -> NodeConfig) -> TLSConfiguration? {
        guard let initial = credentials(for: config()) else { return nil }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: initial.chain, privateKey: .privateKey(initial.key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        configuration.sslContextCallback = { [self] _, promise in
            guard let current = credentials(for: config()) else {
                promise.succeed(.noChanges)
                return
            }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = current.chain
            override.privateKey = .privateKey(current.key)
            promise.succeed(override)
        }
        return configuration
    }

    var lastError: String? { state.withLockedValue { $0.lastError } }

    private static func modified(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate]) as? Date
    }
}

struct TLSSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
