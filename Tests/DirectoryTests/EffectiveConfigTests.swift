import Foundation
import Testing
@testable import Directory

@Suite struct EffectiveConfigTests {
    let clusterDN = "cn=cluster,ou=svcpkg,dc=example,dc=test"
    let nodeDN = "cn=n2,ou=nodes,ou=svcpkg,dc=example,dc=test"

    func cluster(_ attributes: [String: [String]]) -> LDAPEntry { LDAPEntry(dn: clusterDN, attributes: attributes) }
    func node(_ attributes: [String: [String]]) -> LDAPEntry { LDAPEntry(dn: nodeDN, attributes: attributes) }

    @Test func defaultsWhenNothingIsSet() {
        let config = EffectiveConfig.resolve(nodeName: "n2", cluster: nil, node: nil, previous: nil)
        #expect(config.setting("svcpkgHttpPort") == ResolvedSetting(values: ["80"], source: .builtInDefault))
        #expect(config.problems.isEmpty)
        let typed = NodeConfig(config)
        #expect(typed.modules == Set(ModuleName.allCases))
        #expect(typed.state == .active)
        #expect(typed.hostname == "n2")
    }

    @Test func nodeOverridesClusterAttributeByAttribute() {
        let config = EffectiveConfig.resolve(
            nodeName: "n2",
            cluster: cluster(["svcpkgHttpPort": ["8080"], "svcpkgLogLevel": ["debug"]]),
            node: node(["svcpkgHttpPort": ["8081"]]), previous: nil)
        #expect(config.setting("svcpkgHttpPort") == ResolvedSetting(values: ["8081"], source: .node(dn: nodeDN)))
        #expect(config.setting("svcpkgLogLevel") == ResolvedSetting(values: ["debug"], source: .cluster(dn: clusterDN)))
        #expect(config.setting("svcpkgAgentPort").source == .builtInDefault)
    }

    @Test func attributeNamesAreCaseInsensitive() {
        let config = EffectiveConfig.resolve(
            nodeName: "n2", cluster: cluster(["SVCPKGHTTPPORT": ["8080"]]), node: nil, previous: nil)
        #expect(NodeConfig(config).httpPort == 8080)
    }

    @Test func invalidValueKeepsPreviousValueAndIsReported() {
        let good = EffectiveConfig.resolve(
            nodeName: "n2", cluster: cluster(["svcpkgHttpPort": ["8080"]]), node: node(["svcpkgHttpPort": ["8081"]]), previous: nil)
        let bad = EffectiveConfig.resolve(
            nodeName: "n2", cluster: cluster(["svcpkgHttpPort": ["8080"]]), node: node(["svcpkgHttpPort": ["abc"]]), previous: good)
        #expect(NodeConfig(bad).httpPort == 8081)
        #expect(bad.problems.count == 1)
        let problem = bad.problems[0]
        #expect(problem.dn == nodeDN)
        #expect(problem.attribute == "svcpkgHttpPort")
        #expect(problem.value == "abc")
        #expect(problem.description.contains(nodeDN) && problem.description.contains("svcpkgHttpPort"))
    }

    @Test func invalidValueWithoutPreviousFallsThroughToLowerLayer() {
        let config = EffectiveConfig.resolve(
            nodeName: "n2", cluster: cluster(["svcpkgHttpPort": ["8080"]]), node: node(["svcpkgHttpPort": ["70000"]]), previous: nil)
        #expect(NodeConfig(config).httpPort == 8080)
        #expect(config.problems.map(\.attribute) == ["svcpkgHttpPort"])
    }

    @Test(arguments: [
        ("svcpkgHttpPort", "0"), ("svcpkgHttpPort", "-1"), ("svcpkgHttpPort", "8o"),
        ("svcpkgNodeState", "sleeping"), ("svcpkgListenAddress", "999.1.1.1"), ("svcpkgListenAddress", "localhost"),
        ("svcpkgSharedRoot", "relative/path"), ("svcpkgSharedRoot", "/srv/../etc"), ("svcpkgLogLevel", "loud"),
        ("svcpkgAllowPlaintextAuthLoopback", "yes"), ("svcpkgHostname", "bad_host"), ("svcpkgDnsServer", "1.2.3.4:99999"),
        ("svcpkgModule", "gopher"), ("svcpkgConfigPollInterval", "10"),
    ])
    func rejectsBadValues(attribute: String, value: String) {
        let config = EffectiveConfig.resolve(nodeName: "n2", cluster: cluster([attribute: [value]]), node: nil, previous: nil)
        #expect(config.problems.map(\.attribute) == [attribute])
        #expect(config.setting(attribute).source == .builtInDefault)
    }

    @Test func singleValuedSettingWithTwoValuesIsAProblem() {
        let config = EffectiveConfig.resolve(nodeName: "n2", cluster: cluster(["svcpkgHttpPort": ["1", "2"]]), node: nil, previous: nil)
        #expect(config.problems.first?.reason.contains("single-valued") == true)
    }

    @Test func canonicalisesValues() {
        let config = EffectiveConfig.resolve(
            nodeName: "n2",
            cluster: cluster(["svcpkgNodeState": ["DRAIN"], "svcpkgAllowPlaintextAuthLoopback": ["true"], "svcpkgModule": ["IMAP", "pop3", "imap"]]),
            node: nil, previous: nil)
        let typed = NodeConfig(config)
        #expect(typed.state == .drain)
        #expect(typed.allowPlaintextAuthLoopback)
        #expect(typed.modules == [.imap, .pop3])
    }

    @Test func registryMatchesTheSchemaDocument() throws {
        // Every setting the code reads must be documented in ldap-schema/SETTINGS.md and defined in the schema.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let settings = try String(contentsOf: root.appendingPathComponent("ldap-schema/SETTINGS.md"), encoding: .utf8)
        let schema = try String(contentsOf: root.appendingPathComponent("ldap-schema/svcpkg.schema"), encoding: .utf8)
        let ldif = try String(contentsOf: root.appendingPathComponent("ldap-schema/svcpkg.ldif"), encoding: .utf8)
        for attribute in SettingsRegistry.attributeNames {
            #expect(settings.contains("| \(attribute) |"), "SETTINGS.md lacks \(attribute)")
            #expect(schema.contains("'\(attribute)'"), "svcpkg.schema lacks \(attribute)")
            #expect(ldif.contains("'\(attribute)'"), "svcpkg.ldif lacks \(attribute)")
        }
    }

    @Test func webSessionKeyMustBeThirtyTwoBytesOfBase64() {
        let key = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        let good = NodeConfig(EffectiveConfig.resolve(nodeName: "n2", cluster: cluster(["svcpkgWebSessionKey": [key]]), node: nil, previous: nil))
        #expect(good.webSessionKey == (0..<32).map { UInt8($0) })
        #expect(good.webSessionLifetime == 43200)
        let badValues: [String] = ["not base64!", Data([1, 2, 3]).base64EncodedString(), Data(count: 64).base64EncodedString()]
        for bad in badValues {
            let config = EffectiveConfig.resolve(nodeName: "n2", cluster: cluster(["svcpkgWebSessionKey": [bad]]), node: nil, previous: nil)
            #expect(config.problems.map(\.attribute) == ["svcpkgWebSessionKey"])
            #expect(NodeConfig(config).webSessionKey == nil)
        }
        #expect(NodeConfig(EffectiveConfig.resolve(nodeName: "n2", cluster: nil, node: nil, previous: nil)).webSessionKey == nil)
        // A bad value on the node keeps the cluster's key, and the problem (logged, in /healthz) never shows either.
        let mixed = EffectiveConfig.resolve(
            nodeName: "n2", cluster: cluster(["svcpkgWebSessionKey": [key]]), node: node(["svcpkgWebSessionKey": ["c2VjcmV0"]]), previous: nil)
        #expect(NodeConfig(mixed).webSessionKey == (0..<32).map { UInt8($0) })
        #expect(mixed.problems.count == 1)
        #expect(!mixed.problems[0].description.contains(key) && !mixed.problems[0].description.contains("c2VjcmV0"))
    }
}
