import CLDAP
import Foundation

/// One entry returned by a search: its DN and its attributes (names lower-cased, values as UTF-8 strings).
public struct LDAPEntry: Sendable, Equatable, Codable {
    public var dn: String
    public var attributes: [String: [String]]

    public init(dn: String, attributes: [String: [String]]) {
        self.dn = dn
        var lowered: [String: [String]] = [:]
        for (name, values) in attributes { lowered[name.lowercased(), default: []] += values }
        self.attributes = lowered
    }

    public func values(_ attribute: String) -> [String] { attributes[attribute.lowercased()] ?? [] }
    public func first(_ attribute: String) -> String? { values(attribute).first }
}

public enum LDAPScope: Int32, Sendable {
    case base = 0
    case oneLevel = 1
    case subtree = 2
}

/// An LDAP failure with libldap's result code and the server's diagnostic text.
public struct LDAPError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var operation: String
    public var diagnostic: String

    public var description: String {
        var text = "\(operation): \(Self.message(for: code)) (\(code))"
        if !diagnostic.isEmpty { text += ": \(diagnostic)" }
        return text
    }

    public static func message(for code: Int32) -> String {
        guard let cString = ldap_err2string(code) else { return "LDAP error" }
        return String(cString: cString)
    }

    /// Connection-level failures after which the handle must be thrown away and a new one tried.
    public var isConnectionFailure: Bool {
        code == -1 /* LDAP_SERVER_DOWN */ || code == -11 /* LDAP_CONNECT_ERROR */
            || code == -5 /* LDAP_TIMEOUT */ || code == -2 /* LDAP_LOCAL_ERROR */
    }

    public var isInvalidCredentials: Bool { code == 0x31 }
    public var isNoSuchObject: Bool { code == 0x20 }
}

/// A synchronous libldap handle. Not thread-safe: one thread uses it at a time
/// (the `DirectoryClient` pool hands it out). Every call blocks, so it must never run on an
/// event loop.
final class LDAPConnection {
    private var handle: OpaquePointer?
    let uris: [String]
    private(set) var boundDN: String?

    /// - Parameter uris: several URIs are tried in order by libldap itself (failover).
    init(uris: [String], timeout: TimeInterval) throws(LDAPError) {
        self.uris = uris
        var ld: OpaquePointer?
        let rc = ldap_initialize(&ld, uris.joined(separator: " "))
        guard rc == 0, let ld else {
            throw LDAPError(code: rc, operation: "ldap_initialize \(uris.joined(separator: " "))", diagnostic: "")
        }
        handle = ld
        var version: Int32 = 3  // LDAPv3 only
        _ = ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version)
        let seconds = Int(timeout)
        let micros = Int((timeout - Double(seconds)) * 1_000_000)
        var tv = timeval(tv_sec: seconds, tv_usec: micros)
        _ = ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv)
        _ = ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv)
        // Referrals are never chased: a node talks to the servers it was given.
        _ = ldap_set_option(ld, LDAP_OPT_REFERRALS, nil)
    }

    deinit {
        if let handle { ldap_unbind_ext_s(handle, nil, nil) }
    }

    /// Simple bind. An empty password is refused here: LDAP treats it as an anonymous
    /// bind that "succeeds" (RFC 4513 §5.1.2), which must never count as authentication.
    func bind(dn: String, password: String) throws(LDAPError) {
        guard let handle else { throw LDAPError(code: -1, operation: "bind", diagnostic: "connection closed") }
        guard !password.isEmpty else {
            throw LDAPError(code: 0x31, operation: "bind as \(dn)", diagnostic: "empty password refused")
        }
        var bytes = Array(password.utf8CString)
        let rc = bytes.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var credential = berval(bv_len: ber_len_t(buffer.count - 1), bv_val: buffer.baseAddress)
            return ldap_sasl_bind_s(handle, dn, nil, &credential, nil, nil, nil)
        }
        // Scrub the copy of the password.
        for index in bytes.indices { bytes[index] = 0 }
        guard rc == 0 else {
            throw LDAPError(code: rc, operation: "bind as \(dn)", diagnostic: diagnosticMessage())
        }
        boundDN = dn
    }

    func search(
        base: String, scope: LDAPScope, filter: String, attributes: [String]?, sizeLimit: Int32 = 0
    ) throws(LDAPError) -> [LDAPEntry] {
        guard let handle else { throw LDAPError(code: -1, operation: "search", diagnostic: "connection closed") }
        var result: OpaquePointer?
        var attributeCStrings: [UnsafeMutablePointer<CChar>?] = (attributes ?? []).map { strdup($0) }
        attributeCStrings.append(nil)
        defer { for pointer in attributeCStrings { free(pointer) } }
        let rc = attributeCStrings.withUnsafeMutableBufferPointer { buffer -> Int32 in
            ldap_search_ext_s(
                handle, base, scope.rawValue, filter,
                attributes == nil ? nil : buffer.baseAddress,
                0, nil, nil, nil, sizeLimit, &result)
        }
        defer { if let result { ldap_msgfree(result) } }
        // LDAP_SIZELIMIT_EXCEEDED (4) still returns the entries found so far.
        guard rc == 0 || rc == 4 else {
            throw LDAPError(
                code: rc, operation: "search \(base) \(filter)", diagnostic: diagnosticMessage())
        }
        var entries: [LDAPEntry] = []
        var entry = ldap_first_entry(handle, result)
        while let current = entry {
            entries.append(readEntry(handle, current))
            entry = ldap_next_entry(handle, current)
        }
        return entries
    }

    private func readEntry(_ handle: OpaquePointer, _ entry: OpaquePointer) -> LDAPEntry {
        var dn = ""
        if let dnPointer = ldap_get_dn(handle, entry) {
            dn = String(cString: dnPointer)
            ldap_memfree(dnPointer)
        }
        var attributes: [String: [String]] = [:]
        var ber: OpaquePointer?
        var name = ldap_first_attribute(handle, entry, &ber)
        while let attribute = name {
            let key = String(cString: attribute)
            if let values = ldap_get_values_len(handle, entry, attribute) {
                var index = 0
                var list: [String] = []
                while let value = values[index] {
                    let count = Int(value.pointee.bv_len)
                    if let base = value.pointee.bv_val {
                        let bytes = UnsafeRawBufferPointer(start: base, count: count)
                        list.append(String(decoding: bytes, as: UTF8.self))
                    } else {
                        list.append("")
                    }
                    index += 1
                }
                ldap_value_free_len(values)
                attributes[key] = list
            }
            ldap_memfree(attribute)
            name = ldap_next_attribute(handle, entry, ber)
        }
        if let ber { ber_free(ber, 0) }
        return LDAPEntry(dn: dn, attributes: attributes)
    }

    private func diagnosticMessage() -> String {
        guard let handle else { return "" }
        var message: UnsafeMutablePointer<CChar>?
        _ = ldap_get_option(handle, LDAP_OPT_DIAGNOSTIC_MESSAGE, &message)
        guard let message else { return "" }
        defer { ldap_memfree(message) }
        return String(cString: message)
    }
}

/// RFC 4515 §3: escape a value for use inside a search filter.
public func ldapFilterEscape(_ value: String) -> String {
    let hex = Array("0123456789abcdef".utf8)
    var bytes: [UInt8] = []
    for byte in value.utf8 {
        switch byte {
        case UInt8(ascii: "*"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "\\"), 0:
            bytes += [UInt8(ascii: "\\"), hex[Int(byte >> 4)], hex[Int(byte & 0x0f)]]
        default:
            bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// RFC 4514 §2.4: escape a value for use as an RDN value in a DN.
public func ldapDNEscape(_ value: String) -> String {
    var out = ""
    for (index, character) in value.enumerated() {
        switch character {
        case ",", "+", "\"", "\\", "<", ">", ";", "=":
            out += "\\\(character)"
        case "#" where index == 0, " " where index == 0:
            out += "\\\(character)"
        case " " where index == value.count - 1:
            out += "\\ "
        default:
            out.append(character)
        }
    }
    return out
}
