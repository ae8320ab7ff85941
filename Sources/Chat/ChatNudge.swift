import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Tells peer nodes that a log has new lines, so they read it now instead of at their next
/// poll: one UDP datagram `svcpkg-chat1 <key>` per peer after each local append, where the
/// key names the log (`c:<hex>` a channel, `u:<hex>` a private log). Best effort: a lost
/// datagram, an unreachable peer or a hostile sender only changes when a poll happens,
/// never what is delivered (the logs are the record, and polling goes on regardless).
public final class ChatNudge: Sendable {
    static let magic = "svcpkg-chat1 "
    static let maxDatagramBytes = 256

    let channel: any Channel
    let peers = NIOLockedValueBox<[SocketAddress]>([])

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Binds the UDP socket on which peers' nudges arrive for `hub`.
    public static func bind(host: String, port: Int, hub: ChatHub) async throws -> ChatNudge {
        let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NudgeReceiver(hub: hub))
                }
            }
            .bind(host: host, port: port).get()
        return ChatNudge(channel: channel)
    }

    public var localAddress: SocketAddress? { channel.localAddress }

    /// The other nodes' nudge addresses (replaced as LDAP's node list changes).
    public func setPeers(_ addresses: [SocketAddress]) {
        peers.withLockedValue { $0 = addresses }
    }

    func send(_ key: String) {
        let targets = peers.withLockedValue { $0 }
        guard !targets.isEmpty else { return }
        let payload = Self.magic + key
        for target in targets {
            let envelope = AddressedEnvelope(remoteAddress: target, data: channel.allocator.buffer(string: payload))
            channel.writeAndFlush(envelope, promise: nil)
        }
    }

    public func close() async {
        try? await channel.close()
    }

    /// The key in a datagram, or nil when it is not a nudge.
    static func key(in datagram: ByteBuffer) -> String? {
        guard datagram.readableBytes <= maxDatagramBytes,
            let text = datagram.getString(at: datagram.readerIndex, length: datagram.readableBytes),
            text.hasPrefix(magic)
        else { return nil }
        let key = String(text.dropFirst(magic.count))
        guard key.hasPrefix("c:") || key.hasPrefix("u:") else { return nil }
        let hex = key.dropFirst(2)
        guard !hex.isEmpty, hex.count <= 2 * IRCNames.maxChannelLength, hex.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { return nil }
        return key
    }
}

final class NudgeReceiver: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let hub: ChatHub

    init(hub: ChatHub) {
        self.hub = hub
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let key = ChatNudge.key(in: envelope.data) else { return }
        hub.nudged(key)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable from a peer that is down, and the like: polling covers it.
    }
}
