import NIOCore
import NIOEmbedded
import Testing
@testable import ServerSupport

@Suite struct StartTLSGateTests {
    func read(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func holdsEverythingAfterAStartTLSLineUntilReleased() throws {
        let gate = StartTLSGate()
        let channel = EmbeddedChannel(handler: gate)
        try channel.writeInbound(ByteBuffer(string: "EHLO c\r\nstarttls\r\nRSET\r\nMAIL FROM:<evil@x.test>\r\n"))
        #expect(try read(channel) == "EHLO c\r\nstarttls\r\n")
        try channel.writeInbound(ByteBuffer(string: "more\r\n"))
        #expect(try read(channel) == "", "held while the session decides")
        gate.release()
        #expect(try read(channel) == "RSET\r\nMAIL FROM:<evil@x.test>\r\nmore\r\n")
        _ = try channel.finish()
    }

    @Test func findsTheLineAcrossReadsAndIgnoresLookalikes() throws {
        let gate = StartTLSGate()
        let channel = EmbeddedChannel(handler: gate)
        try channel.writeInbound(ByteBuffer(string: "NOOP STARTTLS\r\nSTART"))
        try channel.writeInbound(ByteBuffer(string: "TLS\r\nEHLO x\r\n"))
        #expect(try read(channel) == "NOOP STARTTLS\r\nSTARTTLS\r\n")
        gate.release()
        #expect(try read(channel) == "EHLO x\r\n")
        _ = try channel.finish()
    }

    @Test func pop3AndTaggedIMAPCommands() throws {
        let pop3 = EmbeddedChannel(handler: StartTLSGate(command: .pop3))
        try pop3.writeInbound(ByteBuffer(string: "CAPA\r\nstls\r\nUSER x\r\n"))
        #expect(try read(pop3) == "CAPA\r\nstls\r\n")
        _ = try pop3.finish()
        let imap = EmbeddedChannel(handler: StartTLSGate(command: .imap))
        try imap.writeInbound(ByteBuffer(string: "a1 CAPABILITY\r\nSTARTTLS\r\na2 starttls\r\na3 LOGIN u p\r\n"))
        #expect(try read(imap) == "a1 CAPABILITY\r\nSTARTTLS\r\na2 starttls\r\n", "untagged STARTTLS is not the IMAP command")
        _ = try imap.finish()
    }
}
