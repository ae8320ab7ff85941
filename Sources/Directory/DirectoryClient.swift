import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix

/// Async LDAP client. libldap calls block, so they run on a small dedicated `NIOThreadPool`
/// (never on an event loop). Connections bound as the service account are pooled and reused;
/// a connection that fails at the network level is dropped and the call retried once on a
/// fresh one, which lets libldap fail over across the configured URIs.
public final class DirectoryClient: Sendable {
    public struct Settings: Sendable {
        public var uris: [String]
        public var bindDN: String
        public var bindPassword: String
        public var baseDN: String
        public var timeout: TimeInterval
        public var maxIdleConnections: Int
        public var authCacheTTL: TimeInterval

        public init(
            uris: [String], bindDN: String, bindPassword: String, baseDN: String,
            timeout: TimeInterval = 3, maxIdleConnections: Int = 4, authCacheTTL: TimeInterval = 60
        ) {
            self.uris = uris
            self.bindDN = bindDN
            self.bindPassword = bindPassword
            self.baseDN = baseDN
            self.timeout = timeout
            self.maxIdleConnections = maxIdleConnections
            self.authCacheTTL = authCacheTTL
        }
    }

    public let settings: Settings
    private let threadPool: NIOThreadPool
    private let idle = NIOLockedValueBox<[UnsafeTransfer<LDAPConnection>]>([])
    private let authCache: AuthenticationCache
    private let logger: Logger

    public init(settings: Settings, threads: Int = 2, logger: Logger) {
        self.settings = settings
        self.threadPool = NIOThreadPool(numberOfThreads: threads)
        self.threadPool.start()
        self.authCache = AuthenticationCache(ttl: settings.authCacheTTL)
        self.logger = logger
    }

    public convenience init(bootstrap: Bootstrap, logger: Logger) throws(BootstrapError) {
        self.init(
            settings: Settings(
                uris: bootstrap.ldapURIs, bindDN: bootstrap.bindDN,
                bindPassword: try bootstrap.bindPassword(), baseDN: bootstrap.baseDN),
            logger: logger)
    }

    public func shutdown() async {
        idle.withLockedValue { $0.removeAll() }
        try? await threadPool.shutdownGracefully()
    }

    /// Searches as the service account.
    public func search(
        base: String, scope: LDAPScope = .subtree, filter: String = "(objectClass=*)", attributes: [String]? = nil,
        sizeLimit: Int32 = 0
    ) async throws -> [LDAPEntry] {
        try await withServiceConnection { connection in
            try connection.search(base: base, scope: scope, filter: filter, attributes: attributes, sizeLimit: sizeLimit)
        }
    }

    /// Opens, binds and drops a connection: what `svcpkg check` uses to tell
    /// "unreachable" from "bind rejected".
    public func probe() async throws {
        let settings = self.settings
        try await threadPool.runIfActive {
            let connection = try LDAPConnection(uris: settings.uris, timeout: settings.timeout)
            try connection.bind(dn: settings.bindDN, password: settings.bindPassword)
        }
    }

    /// Checks a user's password by binding as the user's DN on a connection of its own.
    /// Successful binds are cached for `authCacheTTL` seconds (keyed by a salted hash, never
    /// the password itself); failures are never cached.
    public func authenticate(dn: String, password: String) async throws -> Bool {
        if authCache.contains(dn: dn, password: password) { return true }
        let settings = self.settings
        let ok: Bool = try await threadPool.runIfActive {
            let connection = try LDAPConnection(uris: settings.uris, timeout: settings.timeout)
            do {
                try connection.bind(dn: dn, password: password)
                return true
            } catch let error as LDAPError where error.isInvalidCredentials {
                return false
            }
        }
        if ok { authCache.insert(dn: dn, password: password) }
        return ok
    }

    private func withServiceConnection<T: Sendable>(_ body: @escaping @Sendable (LDAPConnection) throws -> T) async throws -> T {
        let settings = self.settings
        let idle = self.idle
        return try await threadPool.runIfActive {
            var attempt = 0
            while true {
                attempt += 1
                let pooled = idle.withLockedValue { $0.popLast() }
                let connection: LDAPConnection
                if let pooled {
                    connection = pooled.wrappedValue
                } else {
                    connection = try LDAPConnection(uris: settings.uris, timeout: settings.timeout)
                    try connection.bind(dn: settings.bindDN, password: settings.bindPassword)
                }
                do {
                    let result = try body(connection)
                    idle.withLockedValue { list in
                        if list.count < settings.maxIdleConnections { list.append(UnsafeTransfer(connection)) }
                    }
                    return result
                } catch let error as LDAPError where error.isConnectionFailure && attempt == 1 && pooled != nil {
                    // A pooled connection went stale (server restarted, idle timeout): retry on a new one.
                    continue
                }
            }
        }
    }
}

/// Moves a non-Sendable value between threads where the code guarantees exclusive use
/// (a pooled connection is only ever held by one thread-pool job).
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let wrappedValue: Value
    init(_ value: Value) { wrappedValue = value }
}

/// Short positive cache of successful binds: DN → (salted digest of the password, expiry).
final class AuthenticationCache: Sendable {
    private let ttl: TimeInterval
    private let salt: [UInt8] = (0..<16).map { _ in UInt8.random(in: 0...255) }
    private let entries = NIOLockedValueBox<[String: (digest: [UInt8], expires: Date)]>([:])

    init(ttl: TimeInterval) { self.ttl = ttl }

    func contains(dn: String, password: String) -> Bool {
        guard ttl > 0 else { return false }
        let digest = PasswordDigest.sha256(salt + Array(password.utf8))
        return entries.withLockedValue { table in
            guard let entry = table[dn.lowercased()], entry.expires > Date() else { return false }
            return entry.digest == digest
        }
    }

    func insert(dn: String, password: String) {
        guard ttl > 0 else { return }
        let digest = PasswordDigest.sha256(salt + Array(password.utf8))
        let expires = Date().addingTimeInterval(ttl)
        entries.withLockedValue { table in
            if table.count > 10_000 { table.removeAll() }
            table[dn.lowercased()] = (digest, expires)
        }
    }
}
