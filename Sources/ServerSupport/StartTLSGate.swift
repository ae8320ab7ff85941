import NIOCore
import NIOSSL

/// Makes STARTTLS (SMTP RFC 3207, POP3 STLS RFC 2595, IMAP RFC 9051 §6.2.1) safe with an
/// async connection loop that reads ahead.
///
/// After a line that is the protocol's TLS command, the gate passes that line on and holds
/// every byte after it. Then either
/// - the session agrees: `startTLS(reply:context:)` runs in one event-loop tick — held
///   plaintext is discarded (a client must wait for the 220; anything before it is an
///   injection attempt, CVE-2011-0411), the 220 is written, and the TLS handler goes in
///   front of the gate, so every later byte is decrypted; or
/// - it does not (DATA text, STARTTLS refused): `release()` passes the held bytes on.
public final class StartTLSGate: ChannelDuplexHandler, RemovableChannelHandler {
    /// Which lines start TLS: the protocol's command, untagged (SMTP, POP3) or after a tag (IMAP).
    public struct Command: Sendable {
        let word: [UInt8]
        let tagged: Bool

        public static let smtp = Command(word: Array("STARTTLS".utf8), tagged: false)
        public static let pop3 = Command(word: Array("STLS".utf8), tagged: false)
        public static let imap = Command(word: Array("STARTTLS".utf8), tagged: true)

        /// Longest line prefix worth looking at (an IMAP tag plus the command).
        static let maxLine = 80

        func matches(_ line: [UInt8]) -> Bool {
            var rest = line[...]
            if tagged {
                guard let space = rest.firstIndex(of: 0x20), space > rest.startIndex else { return false }
                rest = rest[rest.index(after: space)...]
            }
            return rest.count == word.count && zip(rest, word).allSatisfy { ($0 | 0x20) == ($1 | 0x20) }
        }
    }

    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State {
        case passing
        case holding
        case encrypted
    }

    private let command: Command
    private var state = State.passing
    private var held: ByteBuffer?
    /// The current line so far (only its first bytes matter: is it STARTTLS?).
    private var linePrefix: [UInt8] = []
    private var lineLength = 0
    private var context: ChannelHandlerContext?

    public init(command: Command = .smtp) {
        self.command = command
    }

    public func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    public func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        switch state {
        case .encrypted:
            context.fireChannelRead(data)
        case .holding:
            hold(&buffer)
        case .passing:
            let bytes = buffer.readableBytesView
            var split: Int?
            for (offset, byte) in bytes.enumerated() {
                if byte == 0x0a {
                    var line = linePrefix
                    if line.last == 0x0d { line.removeLast() }
                    if lineLength <= Command.maxLine, command.matches(line) {
                        split = offset + 1
                        linePrefix = []
                        lineLength = 0
                        break
                    }
                    linePrefix = []
                    lineLength = 0
                } else {
                    lineLength += 1
                    if linePrefix.count < Command.maxLine { linePrefix.append(byte) }
                }
            }
            guard let split else {
                context.fireChannelRead(data)
                return
            }
            let head = buffer.readSlice(length: split) ?? ByteBuffer()
            state = .holding
            context.fireChannelRead(wrapInboundOut(head))
            if buffer.readableBytes > 0 { hold(&buffer) }
        }
    }

    private func hold(_ buffer: inout ByteBuffer) {
        if held == nil { held = buffer } else { held?.writeBuffer(&buffer) }
    }

    /// The session refused or ignored the line: pass on what was held.
    public func release() {
        guard state == .holding, let context else { return }
        state = .passing
        if let held, held.readableBytes > 0 {
            self.held = nil
            // Held bytes may hold another STARTTLS line: run them through the scan again.
            channelRead(context: context, data: wrapInboundOut(held))
        }
        context.fireChannelReadComplete()
    }

    /// Discards held plaintext, writes `reply`, and puts the TLS handler in front. Event loop only.
    public func startTLS(reply: ByteBuffer, sslContext: NIOSSLContext) throws {
        guard let context else { throw ChannelError.ioOnClosedChannel }
        held = nil
        state = .encrypted
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
        try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext), position: .before(self))
    }
}
