import Directory
import Foundation

/// The JSON served at `GET /healthz`.
public struct HealthReport: Codable, Sendable {
    public struct ConfigStatus: Codable, Sendable {
        public var source: String
        public var ageSeconds: Double
        public var problems: [String]
    }

    public struct LDAPStatus: Codable, Sendable {
        public var reachable: Bool
        public var error: String?
    }

    public struct SharedTreeStatus: Codable, Sendable {
        public var root: String
        public var writable: Bool?
        public var error: String?
        public var lastHeartbeatAgeSeconds: Double?
    }

    public var node: String
    public var version: String
    public var status: String
    public var state: String
    public var uptimeSeconds: Double
    public var config: ConfigStatus
    public var ldap: LDAPStatus
    public var sharedTree: SharedTreeStatus
    public var modules: [String: String]
    public var connections: Int

    /// 200 while the node can serve; 503 when the shared tree is not writable or the node is stopping,
    /// so HAProxy's HTTP check takes it out. LDAP being away alone keeps 200: the node serves from cache.
    public var httpStatus: Int { status == "unavailable" ? 503 : 200 }

    public init(runtime: NodeRuntime, now: Date = Date()) {
        let snapshot = runtime.snapshot
        node = snapshot.config.nodeName
        version = runtime.version
        state = runtime.effectiveState.rawValue
        uptimeSeconds = (now.timeIntervalSince(runtime.startedAt) * 10).rounded() / 10
        config = ConfigStatus(
            source: snapshot.configOrigin.rawValue,
            ageSeconds: (now.timeIntervalSince(snapshot.configConfirmedAt) * 10).rounded() / 10,
            problems: snapshot.config.problems.map(\.description))
        ldap = LDAPStatus(reachable: snapshot.ldapReachable, error: snapshot.ldapError)
        sharedTree = SharedTreeStatus(
            root: snapshot.nodeConfig.sharedRoot, writable: snapshot.sharedTreeWritable, error: snapshot.sharedTreeError,
            lastHeartbeatAgeSeconds: snapshot.lastHeartbeatAt.map { (now.timeIntervalSince($0) * 10).rounded() / 10 })
        modules = snapshot.listeners.mapValues(\.text)
        connections = snapshot.activeConnections
        if snapshot.shuttingDown || snapshot.sharedTreeWritable == false {
            status = "unavailable"
        } else if !snapshot.ldapReachable || !snapshot.config.problems.isEmpty {
            status = "degraded"
        } else {
            status = "ok"
        }
    }

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
