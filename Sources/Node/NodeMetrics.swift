import Directory
import Foundation
import Metrics
import Prometheus

/// The node's metrics in Prometheus text format at `GET /metrics`. Counters come through
/// swift-metrics (so modules count without knowing Prometheus); gauges describing the node
/// are refreshed from the runtime at scrape time.
public final class NodeMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let ldapReachable: Prometheus.Gauge
    private let configAge: Prometheus.Gauge
    private let configProblems: Prometheus.Gauge
    private let sharedTreeWritable: Prometheus.Gauge
    private let connections: Prometheus.Gauge
    private let uptime: Prometheus.Gauge
    private let state: [NodeState: Prometheus.Gauge]

    public init() {
        let registry = self.registry
        func gauge(_ name: String, _ unit: String, _ help: String, labels: [(String, String)] = []) -> Prometheus.Gauge {
            registry.makeGauge(
                descriptor: MetricNameDescriptor(namespace: "svcpkg", metricName: name, unitName: unit, helpText: help), labels: labels)
        }
        ldapReachable = gauge("ldap", "reachable", "1 when the last LDAP config poll succeeded")
        configAge = gauge("config_age", "seconds", "seconds since the config in force was confirmed from LDAP")
        configProblems = gauge("config", "problems", "invalid LDAP values being ignored")
        sharedTreeWritable = gauge("shared_tree", "writable", "1 when the last heartbeat write succeeded")
        connections = gauge("open", "connections", "open protocol connections")
        uptime = gauge("uptime", "seconds", "seconds since the node started")
        var state: [NodeState: Prometheus.Gauge] = [:]
        for value in NodeState.allCases {
            state[value] = gauge("node", "state", "1 for the state in force", labels: [("state", value.rawValue)])
        }
        self.state = state
    }

    /// Routes swift-metrics counters of the whole process into this registry. Once per process.
    public func bootstrapMetricsSystem() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    public func render(runtime: NodeRuntime, now: Date = Date()) -> String {
        let snapshot = runtime.snapshot
        ldapReachable.set(to: snapshot.ldapReachable ? 1.0 : 0.0)
        configAge.set(to: now.timeIntervalSince(snapshot.configConfirmedAt))
        configProblems.set(to: Double(snapshot.config.problems.count))
        sharedTreeWritable.set(to: snapshot.sharedTreeWritable == true ? 1.0 : 0.0)
        connections.set(to: Double(snapshot.activeConnections))
        uptime.set(to: now.timeIntervalSince(runtime.startedAt))
        let current = runtime.effectiveState
        for (value, gauge) in state { gauge.set(to: value == current ? 1.0 : 0.0) }
        return registry.emitToString()
    }
}
