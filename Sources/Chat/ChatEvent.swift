#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One line of a chat log on the shared tree (a channel's log or a user's inbox), stored
/// as one JSON object per line. `seq` orders the lines of one log: the writer assigns it
/// under the log's lock, so every node sees one order per channel.
public struct ChatEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case privmsg, notice, tagmsg, join, part, quit, topic, mode, kick, away
        /// In the invitee's inbox: `params` holds the channel.
        case invite
        /// A nick change: `nick` the old nick, `params` the new one.
        case nick
    }

    public var seq: UInt64
    /// Milliseconds since 1970 by the writing node's clock (IRCv3 server-time).
    public var time: Int64
    public var kind: Kind
    /// Who did it: nick, full `nick!user@host`, account (nil for guests).
    public var nick: String
    public var source: String
    public var account: String?
    /// Where the actor is connected: node name and process id (how a dead node's members
    /// are found).
    public var node: String
    public var pid: Int32
    /// The channel (as first created) or, in an inbox, the recipient's nick.
    public var target: String
    /// Message text, PART/QUIT/KICK reason, topic, away message (nil: back).
    public var text: String?
    /// MODE: the applied mode string and its arguments; KICK: the victim's nick.
    public var params: [String]?
    /// Client-only tags (`+typing`, `+draft/reply`) relayed with the message.
    public var tags: [String: String]?

    public init(
        seq: UInt64 = 0, time: Int64, kind: Kind, nick: String, source: String, account: String?, node: String, pid: Int32,
        target: String, text: String? = nil, params: [String]? = nil, tags: [String: String]? = nil
    ) {
        self.seq = seq
        self.time = time
        self.kind = kind
        self.nick = nick
        self.source = source
        self.account = account
        self.node = node
        self.pid = pid
        self.target = target
        self.text = text
        self.params = params
        self.tags = tags
    }

    /// Whether CHATHISTORY returns it (IRCv3 draft/chathistory without event-playback:
    /// messages only).
    public var isMessage: Bool { kind == .privmsg || kind == .notice }
}

/// IRCv3 server-time: `YYYY-MM-DDThh:mm:ss.sssZ`, UTC.
public enum ServerTime {
    public static func nowMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    public static func format(_ milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let millis = Int32(milliseconds % 1000)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(millis, 3))Z"
    }

    /// `YYYY-MM-DD` of the UTC day: the name of the day's log file.
    public static func day(_ milliseconds: Int64) -> String {
        String(format(milliseconds).prefix(10))
    }

    /// Parses `YYYY-MM-DDThh:mm:ss[.sss]Z`; nil for anything else.
    public static func parse(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int32? {
            guard range.upperBound <= bytes.count else { return nil }
            var value: Int32 = 0
            for byte in bytes[range] {
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int32(byte - 0x30)
            }
            return value
        }
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"),
            bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var millis: Int64 = 0
        if bytes[19] == UInt8(ascii: ".") {
            let digits = bytes[20..<(bytes.count - 1)]
            guard (1...9).contains(digits.count), let fraction = number(20..<(bytes.count - 1)) else { return nil }
            var scaled = Int64(fraction)
            for _ in digits.count..<3 { scaled *= 10 }
            for _ in 3..<max(3, digits.count) { scaled /= 10 }
            millis = scaled
        } else if bytes.count != 20 {
            return nil
        }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        let seconds = timegm(&parts)
        return Int64(seconds) * 1000 + millis
    }
}
