import NIOCore
import NIOPosix

/// HAProxy agent-check responder: on each connection it writes one line
/// (`ready up 87%`, `drain` or `maint`) and closes, as HAProxy's `agent-check` expects.
final class AgentCheckServer: Sendable {
    let channel: any Channel

    private init(channel: any Channel) { self.channel = channel }

    static func start(host: String, port: Int, runtime: NodeRuntime) async throws -> AgentCheckServer {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AgentCheckHandler(runtime: runtime))
                }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        return AgentCheckServer(channel: channel)
    }

    func stop() async {
        try? await channel.close()
    }
}

private final class AgentCheckHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let runtime: NodeRuntime
    init(runtime: NodeRuntime) { self.runtime = runtime }

    func channelActive(context: ChannelHandlerContext) {
        let reply = context.channel.allocator.buffer(string: runtime.agentReply())
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // HAProxy may send an agent-send string; the reply does not depend on it.
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
