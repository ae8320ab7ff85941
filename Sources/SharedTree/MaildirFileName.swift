import Foundation

/// The system flags kept in a Maildir file name's info (`:2,` + letters in ASCII order),
/// as mutt, Dovecot and Courier read them. IMAP `\Answered` is `R`, `\Deleted` is `T`;
/// `P` (passed, i.e. forwarded) has no IMAP system flag and is kept as is.
public struct MessageFlags: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let draft = MessageFlags(rawValue: 1 << 0)  // D
    public static let flagged = MessageFlags(rawValue: 1 << 1)  // F
    public static let passed = MessageFlags(rawValue: 1 << 2)  // P
    public static let answered = MessageFlags(rawValue: 1 << 3)  // R
    public static let seen = MessageFlags(rawValue: 1 << 4)  // S
    public static let deleted = MessageFlags(rawValue: 1 << 5)  // T

    static let letters: [(MessageFlags, UInt8)] = [
        (.draft, UInt8(ascii: "D")), (.flagged, UInt8(ascii: "F")), (.passed, UInt8(ascii: "P")),
        (.answered, UInt8(ascii: "R")), (.seen, UInt8(ascii: "S")), (.deleted, UInt8(ascii: "T")),
    ]

    /// The letters, in ASCII order (`DFPRST`).
    public var maildirLetters: String {
        String(decoding: Self.letters.filter { contains($0.0) }.map(\.1), as: UTF8.self)
    }

    public var description: String {
        let names: [(MessageFlags, String)] = [
            (.answered, "\\Answered"), (.flagged, "\\Flagged"), (.deleted, "\\Deleted"), (.seen, "\\Seen"),
            (.draft, "\\Draft"), (.passed, "$Passed"),
        ]
        return "(" + names.filter { contains($0.0) }.map(\.1).joined(separator: " ") + ")"
    }
}

/// The info part of a Maildir file name after `:2,`: known flags plus letters other
/// writers use (Dovecot's lowercase keyword letters), which are kept untouched.
struct MaildirInfo: Sendable, Equatable {
    var flags: MessageFlags
    /// Letters that are not ours, in the order found.
    var otherLetters: [UInt8]

    init(flags: MessageFlags = [], otherLetters: [UInt8] = []) {
        self.flags = flags
        self.otherLetters = otherLetters
    }

    /// Parses the letters after `2,`.
    init(letters: Substring.UTF8View) {
        var flags: MessageFlags = []
        var other: [UInt8] = []
        for byte in letters {
            if let known = MessageFlags.letters.first(where: { $0.1 == byte }) {
                flags.insert(known.0)
            } else if !other.contains(byte), byte > 0x20, byte != UInt8(ascii: "/") {
                other.append(byte)
            }
        }
        self.flags = flags
        self.otherLetters = other.sorted()
    }

    /// Letters in ASCII order, as the Maildir spec asks.
    var letters: String {
        var all = MessageFlags.letters.filter { flags.contains($0.0) }.map(\.1) + otherLetters
        all.sort()
        return String(decoding: all, as: UTF8.self)
    }
}

/// A Maildir message file name split into its base (unique part) and info.
struct MaildirFileName: Sendable, Equatable {
    /// Everything before the `:` that starts the info.
    let base: String
    /// Letters after `:2,`; nil when the name has no `:2,` info (a file in new/, or a
    /// writer using another info version, which we treat as "no flags").
    let info: MaildirInfo?

    init(_ name: String) {
        if let colon = name.utf8.firstIndex(of: UInt8(ascii: ":")) {
            base = String(name[..<colon])
            let rest = name[name.index(after: colon)...]
            info = rest.hasPrefix("2,") ? MaildirInfo(letters: rest.dropFirst(2).utf8) : nil
        } else {
            base = name
            info = nil
        }
    }

    /// `base:2,<letters>`.
    static func curName(base: String, info: MaildirInfo) -> String {
        base + ":2," + info.letters
    }

    /// The `S=` (size on disk) and `W=` (size with CRLF line ends) fields of a base name.
    static func sizes(ofBase base: String) -> (size: Int?, virtualSize: Int?) {
        var size: Int?
        var virtualSize: Int?
        for field in base.split(separator: ",").dropFirst() {
            if field.hasPrefix("S=") { size = Int(field.dropFirst(2)) }
            if field.hasPrefix("W=") { virtualSize = Int(field.dropFirst(2)) }
        }
        return (size, virtualSize)
    }

    /// Seconds and microseconds of delivery from `<secs>.M<usecs>…` (other writers:
    /// `<secs>.…`), for ordering new files by arrival. Unknown parts are 0.
    static func arrival(ofBase base: String) -> (seconds: Int, micros: Int) {
        let parts = base.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        let seconds = parts.first.flatMap { Int($0) } ?? 0
        var micros = 0
        if parts.count > 1, parts[1].hasPrefix("M") {
            micros = Int(parts[1].dropFirst().prefix { $0.isASCII && $0.isNumber }) ?? 0
        }
        return (seconds, micros)
    }
}

/// Makes standard Maildir base names, unique across processes and nodes:
/// `<secs>.M<usecs>P<pid>Q<n>R<random hex>.<host>,S=<size>,W=<virtual size>`
/// (D. J. Bernstein's "maildir" page: M microseconds, P process id, Q deliveries made by
/// this process, R random; Dovecot's `S=`/`W=` size fields).
enum MaildirNames {
    private static let counter = DeliveryCounter()

    static func newBase(size: Int, virtualSize: Int?, now: Date = Date()) -> String {
        let time = now.timeIntervalSince1970
        let seconds = Int(time.rounded(.down))
        let micros = min(999_999, max(0, Int((time - Double(seconds)) * 1_000_000)))
        var generator = SystemRandomNumberGenerator()
        let random = String(generator.next() as UInt64, radix: 16)
        let unique = "\(seconds).M\(micros)P\(ProcessIdentity.pid)Q\(counter.next())R\(random).\(ProcessIdentity.host)"
        return unique + ",S=\(size)" + (virtualSize.map { ",W=\($0)" } ?? "")
    }

    /// The RFC822.SIZE of a message: its size with every bare LF counted as CRLF.
    static func virtualSize(of message: [UInt8]) -> Int {
        var extra = 0
        var previous: UInt8 = 0
        for byte in message {
            if byte == 0x0A && previous != 0x0D { extra += 1 }
            previous = byte
        }
        return message.count + extra
    }
}

/// Deliveries made by this process (the `Q` field).
final class DeliveryCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}
