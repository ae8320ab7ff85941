import Directory
import Foundation
import Testing
@testable import Node

@Suite struct AgentAndHealthTests {
    func runtime(_ attributes: [String: [String]] = [:]) -> NodeRuntime {
        let config = EffectiveConfig.resolve(
            nodeName: "n1", cluster: LDAPEntry(dn: "cn=cluster,ou=svcpkg,dc=x", attributes: attributes), node: nil, previous: nil)
        return NodeRuntime(config: config, origin: .ldap, confirmedAt: Date(), ldapReachable: true, version: "test")
    }

    @Test func agentRepliesFollowTheNodeState() {
        #expect(runtime().agentReply(loadAverage: 0, cpuCount: 2) == "ready up 100%\n")
        #expect(runtime(["svcpkgNodeState": ["drain"]]).agentReply(loadAverage: 0, cpuCount: 2) == "drain\n")
        #expect(runtime(["svcpkgNodeState": ["maint"]]).agentReply(loadAverage: 0, cpuCount: 2) == "maint\n")
    }

    @Test func shuttingDownDrains() {
        let node = runtime()
        node.update { $0.shuttingDown = true }
        #expect(node.agentReply(loadAverage: 0, cpuCount: 2) == "drain\n")
        #expect(HealthReport(runtime: node).httpStatus == 503)
    }

    @Test func weightFallsWithLoad() {
        #expect(AgentLoad.weight(connections: 0, maxConnections: 100, loadAverage: 0, cpuCount: 2) == 100)
        #expect(AgentLoad.weight(connections: 50, maxConnections: 100, loadAverage: 0, cpuCount: 2) == 50)
        #expect(AgentLoad.weight(connections: 500, maxConnections: 100, loadAverage: 0, cpuCount: 2) == 1)
        #expect(AgentLoad.weight(connections: 0, maxConnections: 100, loadAverage: 3, cpuCount: 2) == 25)
    }

    @Test func healthReportsLDAPDownAsDegradedButServing() throws {
        let node = runtime()
        node.update {
            $0.ldapReachable = false
            $0.ldapError = "Can't contact LDAP server"
            $0.sharedTreeWritable = true
        }
        let report = HealthReport(runtime: node)
        #expect(report.httpStatus == 200)
        #expect(report.status == "degraded")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        #expect(json["node"] as? String == "n1")
        #expect((json["ldap"] as? [String: Any])?["reachable"] as? Bool == false)
        #expect((json["config"] as? [String: Any])?["source"] as? String == "ldap")
    }
}
