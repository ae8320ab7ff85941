import Foundation

/// The only file a node reads besides LDAP: how to reach LDAP and who this node is.
/// Format: `key = value` lines, `#` comments, blank lines ignored.
public struct Bootstrap: Sendable, Equatable {
    public static let defaultPath = "/etc/svcpkg/bootstrap.conf"
    public static let knownKeys: Set<String> = ["ldap_uri", "bind_dn", "bind_password_file", "base_dn", "node"]

    public var path: String
    public var ldapURIs: [String]
    public var bindDN: String
    public var bindPasswordFile: String
    public var baseDN: String
    public var node: String

    public init(path: String, ldapURIs: [String], bindDN: String, bindPasswordFile: String, baseDN: String, node: String) {
        self.path = path
        self.ldapURIs = ldapURIs
        self.bindDN = bindDN
        self.bindPasswordFile = bindPasswordFile
        self.baseDN = baseDN
        self.node = node
    }

    /// `--bootstrap`, then `SVCPKG_BOOTSTRAP`, then the default path.
    public static func resolvePath(option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let option, !option.isEmpty { return option }
        if let fromEnvironment = environment["SVCPKG_BOOTSTRAP"], !fromEnvironment.isEmpty { return fromEnvironment }
        return defaultPath
    }

    public static func load(path: String) throws(BootstrapError) -> Bootstrap {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw BootstrapError(path: path, line: nil, problem: "cannot read the file (\(Self.errnoText(path)))")
        }
        return try parse(text, path: path)
    }

    public static func parse(_ text: String, path: String, hostName: String = ProcessInfo.processInfo.hostName) throws(BootstrapError) -> Bootstrap {
        var values: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw BootstrapError(path: path, line: index + 1, problem: "expected `key = value`")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard knownKeys.contains(key) else {
                throw BootstrapError(path: path, line: index + 1, problem: "unknown key `\(key)` (known: \(knownKeys.sorted().joined(separator: ", ")))")
            }
            guard values[key] == nil else {
                throw BootstrapError(path: path, line: index + 1, problem: "`\(key)` is set twice")
            }
            values[key] = value
        }
        func required(_ key: String) throws(BootstrapError) -> String {
            guard let value = values[key], !value.isEmpty else {
                throw BootstrapError(path: path, line: nil, problem: "missing required key `\(key)`")
            }
            return value
        }
        let uris = try required("ldap_uri").split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        for uri in uris where !(uri.hasPrefix("ldap://") || uri.hasPrefix("ldaps://") || uri.hasPrefix("ldapi://")) {
            throw BootstrapError(path: path, line: nil, problem: "ldap_uri `\(uri)` is not an ldap://, ldaps:// or ldapi:// URI")
        }
        let node = values["node"].flatMap { $0.isEmpty ? nil : $0 }
            ?? String(hostName.split(separator: ".").first ?? Substring(hostName))
        guard NodeName.isValid(node) else {
            throw BootstrapError(path: path, line: nil, problem: "node name `\(node)` is invalid (letters, digits, '-', '_', 1–64 characters)")
        }
        return Bootstrap(
            path: path, ldapURIs: uris, bindDN: try required("bind_dn"),
            bindPasswordFile: try required("bind_password_file"), baseDN: try required("base_dn"), node: node)
    }

    /// Reads the bind password: the file's first line, without its line end.
    public func bindPassword() throws(BootstrapError) -> String {
        guard let data = FileManager.default.contents(atPath: bindPasswordFile) else {
            throw BootstrapError(path: bindPasswordFile, line: nil, problem: "cannot read the bind password file (\(Self.errnoText(bindPasswordFile)))")
        }
        let text = String(decoding: data, as: UTF8.self)
        let password = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let trimmed = password.hasSuffix("\r") ? String(password.dropLast()) : password
        guard !trimmed.isEmpty else {
            throw BootstrapError(path: bindPasswordFile, line: nil, problem: "the bind password file is empty")
        }
        return trimmed
    }

    static func errnoText(_ path: String) -> String {
        if !FileManager.default.fileExists(atPath: path) { return "no such file" }
        if !FileManager.default.isReadableFile(atPath: path) { return "permission denied" }
        return "unreadable"
    }
}

public struct BootstrapError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var line: Int?
    public var problem: String
    public var description: String {
        if let line { return "bootstrap \(path):\(line): \(problem)" }
        return "bootstrap \(path): \(problem)"
    }
}

public enum NodeName {
    public static func isValid(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count), let first = name.utf8.first, first != UInt8(ascii: ".") && first != UInt8(ascii: "-") else {
            return false
        }
        return name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }
}
