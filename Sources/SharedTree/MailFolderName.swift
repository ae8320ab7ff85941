/// A user whose mail lives on the shared tree, named by a validated address.
///
/// The home is `<root>/mail/<domain>/<h1h2>/<localpart>/`, where `h1h2` is the first byte
/// (two lowercase hex digits) of the 64-bit FNV-1a hash of the UTF-8 bytes of
/// `localpart@domain` (domain lowercased). FNV-1a is fixed by its definition, so the
/// directory is the same in every process, build and node (Swift's `Hasher` is seeded per
/// process and must never be used for this). The local part is used as given: callers pass
/// the canonical address from LDAP.
public struct MailUser: Sendable, Hashable, CustomStringConvertible {
    public let localPart: String
    /// Lowercased.
    public let domain: String

    public init(localPart: String, domain: String) throws(MailStoreError) {
        let address = localPart + "@" + domain
        do throws(SharedTreeError) {
            self.localPart = try SafeName(localPart, kind: .localPart).value
            self.domain = try SafeName(domain, kind: .domain).value
        } catch {
            if case .invalidName(let kind, _, let reason) = error {
                throw .invalidUser(address: address, reason: "\(kind): \(reason)")
            }
            throw .storage(error)
        }
    }

    /// Splits `address` at its last `@`.
    public init(address: String) throws(MailStoreError) {
        guard let at = address.lastIndex(of: "@") else {
            throw .invalidUser(address: address, reason: "it has no \"@\"")
        }
        try self.init(localPart: String(address[..<at]), domain: String(address[address.index(after: at)...]))
    }

    public var address: String { localPart + "@" + domain }
    public var description: String { address }

    /// The two hex digits of the hash level of the home directory.
    public var hashDirectory: String {
        let top = UInt8(truncatingIfNeeded: Self.fnv1a64(Array(address.utf8)) >> 56)
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[Int(top >> 4)], digits[Int(top & 0x0F)]], as: UTF8.self)
    }

    /// 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
    static func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}

/// A folder name as IMAP sees it: levels separated by `/`, `INBOX` case-insensitive.
///
/// On disk (Maildir++) a folder is the directory `.<level>.<level>…` in the Maildir. Each
/// level is UTF-8 with `.` (the on-disk separator), `%` (the escape), `/` and `\` written
/// as `%XX`, so `Lists/a.b` becomes `.Lists.a%2Eb`. Names that could leave the home are
/// refused rather than escaped: empty levels (`a//b`, a leading or trailing `/`), levels
/// `.` and `..`, NUL and other control characters. INBOX is the Maildir itself; folders
/// below INBOX are not supported (clients create top-level folders; a first level that
/// equals INBOX in any case is refused). Modified UTF-7 (RFC 3501 §5.1.3) is the IMAP
/// layer's business: names here are plain UTF-8, which is what IMAP4rev2 uses.
public struct MailFolderName: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The IMAP hierarchy separator at the API.
    public static let separator: Character = "/"
    /// The most levels a name may have.
    public static let maxLevels = 32
    /// The longest on-disk name (without the leading dot), as `SafeName.Kind.folder` allows.
    public static let maxDiskBytes = SafeName.Kind.folder.maxBytes

    public static let inbox = MailFolderName(levels: ["INBOX"], diskName: "")

    /// The levels; `["INBOX"]` for INBOX.
    public let levels: [String]
    /// The on-disk name without the leading dot; empty for INBOX.
    let diskName: String

    private init(levels: [String], diskName: String) {
        self.levels = levels
        self.diskName = diskName
    }

    /// Validates `name` (levels separated by `/`).
    public init(_ name: String) throws(MailStoreError) {
        if name.isEmpty { throw .invalidFolderName(name: name, reason: "it is empty") }
        if name.utf8.count > 4 * Self.maxDiskBytes {
            throw .invalidFolderName(name: name, reason: "it is longer than \(Self.maxDiskBytes) bytes")
        }
        let parts = name.split(separator: Self.separator, omittingEmptySubsequences: false).map(String.init)
        if parts.count > Self.maxLevels {
            throw .invalidFolderName(name: name, reason: "it has more than \(Self.maxLevels) levels")
        }
        if parts.count == 1, parts[0].uppercased() == "INBOX" {
            self = .inbox
            return
        }
        if parts[0].uppercased() == "INBOX" {
            throw .invalidFolderName(name: name, reason: "folders below INBOX are not supported; create the folder at the top level")
        }
        for part in parts {
            if let reason = Self.problem(withLevel: part) {
                throw .invalidFolderName(name: name, reason: reason)
            }
        }
        let disk = parts.map(Self.escape).joined(separator: ".")
        if disk.utf8.count > Self.maxDiskBytes {
            throw .invalidFolderName(name: name, reason: "its on-disk form is \(disk.utf8.count) bytes long, the limit is \(Self.maxDiskBytes)")
        }
        // Belt and braces: the escaped form must be a safe single path component.
        if let reason = SafeName.problem(with: disk, kind: .folder) {
            throw .invalidFolderName(name: name, reason: reason)
        }
        self.init(levels: parts, diskName: disk)
    }

    /// Decodes a Maildir++ directory name without its leading dot (`Lists.a%2Eb`); nil
    /// for names this store would not have written (bad escapes, unsafe levels, INBOX).
    init?(diskName: String) {
        guard !diskName.isEmpty, diskName.utf8.count <= Self.maxDiskBytes else { return nil }
        var levels: [String] = []
        for part in diskName.split(separator: ".", omittingEmptySubsequences: false) {
            guard let level = Self.unescape(String(part)) else { return nil }
            levels.append(level)
        }
        guard let name = try? MailFolderName(levels.joined(separator: String(Self.separator))),
            !name.isInbox, name.diskName == diskName
        else { return nil }
        self = name
    }

    public var isInbox: Bool { diskName.isEmpty }

    /// The name with `/` between levels (`INBOX` for INBOX).
    public var name: String { levels.joined(separator: String(Self.separator)) }
    public var description: String { name }

    /// The folder one level up; nil for top-level folders and INBOX.
    public var parent: MailFolderName? {
        guard !isInbox, levels.count > 1 else { return nil }
        return try? MailFolderName(levels.dropLast().joined(separator: String(Self.separator)))
    }

    /// Every ancestor, outermost first.
    public var ancestors: [MailFolderName] {
        var result: [MailFolderName] = []
        var current = parent
        while let folder = current {
            result.insert(folder, at: 0)
            current = folder.parent
        }
        return result
    }

    /// True when `self` is `other` or lies below it.
    public func isSameOrInside(_ other: MailFolderName) -> Bool {
        guard !isInbox, !other.isInbox, levels.count >= other.levels.count else { return self == other }
        return Array(levels.prefix(other.levels.count)) == other.levels
    }

    /// `self` with the leading levels of `old` replaced by `new` (for renames).
    func replacingPrefix(_ old: MailFolderName, with new: MailFolderName) -> MailFolderName? {
        guard isSameOrInside(old) else { return nil }
        let rest = levels.dropFirst(old.levels.count)
        return try? MailFolderName((new.levels + rest).joined(separator: String(Self.separator)))
    }

    public static func < (lhs: MailFolderName, rhs: MailFolderName) -> Bool {
        if lhs.isInbox != rhs.isInbox { return lhs.isInbox }
        return lhs.levels.lexicographicallyPrecedes(rhs.levels)
    }

    static func problem(withLevel level: String) -> String? {
        if level.isEmpty { return "it has an empty level (\"//\", or \"/\" at the start or end)" }
        if level == "." || level == ".." { return "level \(quoted(level)) is not allowed" }
        for scalar in level.unicodeScalars {
            switch scalar.value {
            case 0: return "it contains a NUL byte"
            case 0x01..<0x20, 0x7F, 0x80..<0xA0: return "it contains a control character"
            default: break
            }
        }
        return nil
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    static func escape(_ level: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(level.utf8.count)
        for byte in level.utf8 {
            switch byte {
            case UInt8(ascii: "."), UInt8(ascii: "%"), UInt8(ascii: "/"), UInt8(ascii: "\\"):
                out += [UInt8(ascii: "%"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
            default:
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unescape(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else {
                    return nil
                }
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
