/// IRC over WebSocket (IRCv3 "WebSocket support", subprotocol `text.ircv3.net`): each text
/// message carries exactly one IRC line without its CR LF, in both directions. This is the
/// pure adapter between such messages and the session's lines; the WebSocket itself (upgrade,
/// frames, pings) belongs to the web module.
public enum IRCWebSocketFraming {
    /// The subprotocol web chat speaks: UTF-8 text messages, one line each.
    public static let subprotocol = "text.ircv3.net"
    /// The largest message accepted: the IRC line limit, plus a CR LF some clients send anyway.
    public static let maxMessageBytes = IRCLimits.maxLineBytes + 2

    public enum Input: Sendable, Equatable {
        /// One line for the session (no CR, LF or NUL inside).
        case line([UInt8])
        /// Longer than an IRC line may be: the session answers 417, as for a TCP client.
        case tooLong
        /// CR or LF inside the message (it would smuggle a second line), or NUL.
        case malformed
        /// Nothing to do (an empty message, as a keep-alive).
        case empty
    }

    /// One text message from the browser. The spec says messages carry no line ending; one
    /// trailing CR LF or LF is tolerated and dropped, any other CR or LF makes the message
    /// malformed rather than being split into several commands.
    public static func input(fromText text: String) -> Input {
        var bytes = Array(text.utf8)
        if bytes.last == 0x0A { bytes.removeLast() }
        if bytes.last == 0x0D { bytes.removeLast() }
        if bytes.isEmpty { return .empty }
        if bytes.count > IRCLimits.maxLineBytes { return .tooLong }
        if bytes.contains(where: { $0 == 0x0A || $0 == 0x0D || $0 == 0 }) { return .malformed }
        return .line(bytes)
    }

    /// One text message for the browser: the encoded line without its CR LF.
    public static func text(from message: IRCMessage) -> String {
        var line = message.encoded()
        if line.hasSuffix("\r\n") { line.removeLast(1) }  // "\r\n" is one Character in Swift
        return line
    }
}
