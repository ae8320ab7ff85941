import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

@testable import DNSClient

/// A scripted DNS server on 127.0.0.1, UDP and TCP on the same port: `respond` gets each
/// decoded query and returns the messages to send back (none: the query is dropped).
final class FakeDNSServer: Sendable {
    typealias Responder = @Sendable (_ query: DNSMessage, _ overTCP: Bool) -> [[UInt8]]

    let server: DNSServer
    private let udp: any Channel
    private let tcp: any Channel
    private let log: NIOLockedValueBox<[(query: DNSMessage, overTCP: Bool)]>

    var queries: [(query: DNSMessage, overTCP: Bool)] { log.withLockedValue { $0 } }
    var udpCount: Int { queries.filter { !$0.overTCP }.count }
    var tcpCount: Int { queries.filter(\.overTCP).count }

    private init(
        server: DNSServer, udp: any Channel, tcp: any Channel,
        log: NIOLockedValueBox<[(query: DNSMessage, overTCP: Bool)]>
    ) {
        self.server = server
        self.udp = udp
        self.tcp = tcp
        self.log = log
    }

    static func start(group: any EventLoopGroup, respond: @escaping Responder) async throws -> FakeDNSServer {
        let log = NIOLockedValueBox<[(query: DNSMessage, overTCP: Bool)]>([])
        let record: Responder = { query, overTCP in
            log.withLockedValue { $0.append((query, overTCP)) }
            return respond(query, overTCP)
        }
        var lastError: any Error = ChannelError.ioOnClosedChannel
        for _ in 0..<10 {
            let udp = try await DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(FakeUDPResponder(respond: record))
                    }
                }
                .bind(host: "127.0.0.1", port: 0).get()
            guard let port = udp.localAddress?.port else { continue }
            do {
                let tcp = try await ServerBootstrap(group: group)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(
                                ByteToMessageHandler(DNSStreamFrameDecoder()))
                            try channel.pipeline.syncOperations.addHandler(FakeTCPResponder(respond: record))
                        }
                    }
                    .bind(host: "127.0.0.1", port: port).get()
                return FakeDNSServer(server: DNSServer(host: "127.0.0.1", port: port), udp: udp, tcp: tcp, log: log)
            } catch {
                lastError = error
                try? await udp.close().get()
            }
        }
        throw lastError
    }

    func stop() async {
        try? await udp.close().get()
        try? await tcp.close().get()
    }
}

private final class FakeUDPResponder: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let respond: FakeDNSServer.Responder

    init(respond: @escaping FakeDNSServer.Responder) { self.respond = respond }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let query = try? DNSMessage(decoding: Array(envelope.data.readableBytesView)) else { return }
        for message in respond(query, false) {
            context.write(
                wrapOutboundOut(
                    AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: message))),
                promise: nil)
        }
        context.flush()
    }
}

private final class FakeTCPResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let respond: FakeDNSServer.Responder

    init(respond: @escaping FakeDNSServer.Responder) { self.respond = respond }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let query = try? DNSMessage(decoding: Array(unwrapInboundIn(data).readableBytesView)) else { return }
        for message in respond(query, true) {
            var framed = ByteBuffer()
            framed.writeInteger(UInt16(message.count))
            framed.writeBytes(message)
            context.write(wrapOutboundOut(framed), promise: nil)
        }
        context.flush()
    }
}
