import Directory
import Foundation
import NIOConcurrencyHelpers

/// What a node knows about itself right now; read by /healthz, the agent-check responder and
/// the listener supervisor, written by the config watcher, the heartbeat and the modules.
public final class NodeRuntime: Sendable {
    public enum ConfigOrigin: String, Sendable, Codable {
        case ldap
        case cache
    }

    public struct Snapshot: Sendable {
        public var config: EffectiveConfig
        public var nodeConfig: NodeConfig
        public var configOrigin: ConfigOrigin
        /// When the config in force was last confirmed from LDAP (or written to the cache, for `.cache`).
        public var configConfirmedAt: Date
        public var ldapReachable: Bool
        public var ldapError: String?
        public var sharedTreeWritable: Bool?
        public var sharedTreeError: String?
        public var lastHeartbeatAt: Date?
        public var listeners: [String: ListenerStatus]
        public var shuttingDown: Bool
        public var activeConnections: Int
    }

    public enum ListenerStatus: Sendable, Equatable {
        case up(address: String, port: Int)
        case failed(String)
        case disabled
        case notInThisBuild

        public var text: String {
            switch self {
            case .up(let address, let port): return "up on \(address):\(port)"
            case .failed(let why): return "failed: \(why)"
            case .disabled: return "disabled"
            case .notInThisBuild: return "enabled, not implemented in this build"
            }
        }

        public var isUp: Bool { if case .up = self { return true } else { return false } }
    }

    public let version: String
    public let startedAt = Date()
    private let box: NIOLockedValueBox<Snapshot>

    public init(config: EffectiveConfig, origin: ConfigOrigin, confirmedAt: Date, ldapReachable: Bool, version: String) {
        self.version = version
        box = NIOLockedValueBox(Snapshot(
            config: config, nodeConfig: NodeConfig(config), configOrigin: origin, configConfirmedAt: confirmedAt,
            ldapReachable: ldapReachable, ldapError: nil, sharedTreeWritable: nil, sharedTreeError: nil,
            lastHeartbeatAt: nil, listeners: [:], shuttingDown: false, activeConnections: 0))
    }

    public var snapshot: Snapshot { box.withLockedValue { $0 } }

    public func update(_ change: (inout Snapshot) -> Void) {
        box.withLockedValue { change(&$0) }
    }

    public func connectionOpened() { box.withLockedValue { $0.activeConnections += 1 } }
    public func connectionClosed() { box.withLockedValue { $0.activeConnections -= 1 } }

    /// The node's state as HAProxy should see it: LDAP's `svcpkgNodeState`, or drain while shutting down.
    public var effectiveState: NodeState {
        let snapshot = self.snapshot
        return snapshot.shuttingDown ? .drain : snapshot.nodeConfig.state
    }

    /// HAProxy agent-check reply (HAProxy configuration manual, "agent-check"): `ready` clears
    /// a previous drain/maint, `up` marks the server operational, the percentage sets its weight.
    public func agentReply(loadAverage: Double? = AgentLoad.loadAverage(), cpuCount: Int = ProcessInfo.processInfo.activeProcessorCount) -> String {
        let snapshot = self.snapshot
        switch effectiveState {
        case .drain: return "drain\n"
        case .maint: return "maint\n"
        case .active:
            let weight = AgentLoad.weight(
                connections: snapshot.activeConnections, maxConnections: snapshot.nodeConfig.maxConnections,
                loadAverage: loadAverage, cpuCount: cpuCount)
            return "ready up \(weight)%\n"
        }
    }
}

public enum AgentLoad {
    /// 100% when idle, down to 1% when connections reach the configured maximum or the
    /// run queue is twice the core count; the busier of the two measures decides.
    public static func weight(connections: Int, maxConnections: Int, loadAverage: Double?, cpuCount: Int) -> Int {
        let connectionLoad = Double(max(0, connections)) / Double(max(1, maxConnections))
        let cpuLoad = (loadAverage ?? 0) / Double(max(1, cpuCount) * 2)
        let busy = min(1, max(connectionLoad, cpuLoad))
        return max(1, Int((1 - busy) * 100 + 0.5))
    }

    public static func loadAverage() -> Double? {
        var loads = [Double](repeating: 0, count: 3)
        return getloadavg(&loads, 1) == 1 ? loads[0] : nil
    }
}
