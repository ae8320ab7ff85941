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
                    keyModified: keyModified ?? .distantPast, context: context)
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

    var lastError: String? { state.withLockedValue { $0.lastError } }

    private static func modified(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate]) as? Date
    }
}

struct TLSSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
