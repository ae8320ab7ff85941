import Testing
@testable import Directory

@Suite struct BootstrapTests {
    @Test func parsesAllKeys() throws {
        let text = """
            # comment
            ldap_uri = ldap://a:389 ldap://b:389
            bind_dn = cn=svcpkg-node,ou=svcpkg,dc=example,dc=test
            bind_password_file = /etc/svcpkg/bind.pw
            base_dn = dc=example,dc=test
            node = n1
            """
        let bootstrap = try Bootstrap.parse(text, path: "/x")
        #expect(bootstrap.ldapURIs == ["ldap://a:389", "ldap://b:389"])
        #expect(bootstrap.node == "n1")
        #expect(bootstrap.baseDN == "dc=example,dc=test")
    }

    @Test func nodeDefaultsToShortHostName() throws {
        let text = "ldap_uri = ldap://a\nbind_dn = x\nbind_password_file = /p\nbase_dn = dc=x\n"
        #expect(try Bootstrap.parse(text, path: "/x", hostName: "mx3.example.test").node == "mx3")
    }

    @Test(arguments: [
        ("ldap_uri = ldap://a\nbind_dn = x\nbase_dn = dc=x\n", "missing required key `bind_password_file`"),
        ("ldap_uri = http://a\nbind_dn = x\nbind_password_file = /p\nbase_dn = dc=x\n", "not an ldap://"),
        ("ldap_uri = ldap://a\nfoo = 1\n", "unknown key `foo`"),
        ("just text\n", "expected `key = value`"),
        ("node = a\nnode = b\n", "set twice"),
        ("ldap_uri = ldap://a\nbind_dn = x\nbind_password_file = /p\nbase_dn = dc=x\nnode = ../etc\n", "node name"),
    ])
    func rejectsBadFiles(text: String, expected: String) {
        #expect {
            _ = try Bootstrap.parse(text, path: "/b.conf")
        } throws: { error in
            "\(error)".contains(expected) && "\(error)".contains("/b.conf")
        }
    }
}

@Suite struct FilterEscapeTests {
    @Test func escapesSpecials() {
        #expect(ldapFilterEscape("a*b(c)d\\e") == "a\\2ab\\28c\\29d\\5ce")
        #expect(ldapFilterEscape("jörg@x") == "jörg@x")
        #expect(ldapFilterEscape("a\u{0}b") == "a\\00b")
    }

    @Test func escapesDNValues() {
        #expect(ldapDNEscape("a,b") == "a\\,b")
        #expect(ldapDNEscape(" x") == "\\ x")
        #expect(ldapDNEscape("#x") == "\\#x")
    }

    @Test func normalizesAddresses() {
        #expect(MailAddressText.normalize(" Alice@Example.TEST ") == "alice@example.test")
        #expect(MailAddressText.normalize("a@b@c") == nil)
        #expect(MailAddressText.normalize("a b@c.test") == nil)
        #expect(MailAddressText.normalize("a@-bad.test") == nil)
        #expect(MailAddressText.normalize("@x.test") == nil)
    }
}
