import NIOCore
import NIOPosix

/// Moves one query and its response over UDP or TCP with NIO. No DNS logic beyond framing:
/// `accepts` decides which received message is the response (the resolver passes a check of
/// ID and question), anything else is dropped.
struct DNSTransport: Sendable {
    let eventLoopGroup: any EventLoopGroup

    enum Failure: Error, Equatable, CustomStringConvertible {
        case timedOut
        case closedWithoutResponse
        case unsupportedEventLoopGroup

        var description: String {
            switch self {
            case .timedOut: "no response in time"
            case .closedWithoutResponse: "connection closed before a response arrived"
            case .unsupportedEventLoopGroup:
                "the event loop group cannot open sockets (not a MultiThreadedEventLoopGroup)"
            }
        }
    }

    /// RFC 1035 §4.2.1, on a connected socket from a kernel-chosen (random) port, so that the
    /// kernel drops datagrams from other sources and reports ICMP port-unreachable at once.
    func exchangeUDP(
        _ query: [UInt8], with server: SocketAddress, timeout: TimeAmount,
        accepts: @escaping @Sendable ([UInt8]) -> Bool
    ) async throws -> [UInt8] {
        let eventLoop = eventLoopGroup.next()
        guard let bootstrap = DatagramBootstrap(validatingGroup: eventLoop) else {
            throw Failure.unsupportedEventLoopGroup
        }
        let promise = eventLoop.makePromise(of: [UInt8].self)
        let channel: any Channel
        do {
            channel =
                try await bootstrap
                // Room for any datagram: a larger one would be cut by the kernel and then refused
                // as malformed, although the server only ignored the advertised EDNS size.
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            DNSDatagramResponseHandler(promise: promise, accepts: accepts))
                    }
                }
                .connect(to: server).get()
        } catch {
            promise.fail(error)
            throw error
        }
        return try await exchange(on: channel, promise: promise, timeout: timeout) {
            channel.writeAndFlush(ByteBuffer(bytes: query))
        }
    }

    /// RFC 1035 §4.2.2 / RFC 7766: one query per connection, each message behind a 16-bit length.
    func exchangeTCP(
        _ query: [UInt8], with server: SocketAddress, timeout: TimeAmount,
        accepts: @escaping @Sendable ([UInt8]) -> Bool
    ) async throws -> [UInt8] {
        let eventLoop = eventLoopGroup.next()
        guard let bootstrap = ClientBootstrap(validatingGroup: eventLoop) else {
            throw Failure.unsupportedEventLoopGroup
        }
        let promise = eventLoop.makePromise(of: [UInt8].self)
        let channel: any Channel
        do {
            channel =
                try await bootstrap
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSStreamFrameDecoder()))
                        try channel.pipeline.syncOperations.addHandler(
                            DNSStreamResponseHandler(promise: promise, accepts: accepts))
                    }
                }
                .connect(to: server).get()
        } catch {
            promise.fail(error)
            throw error
        }
        var framed = ByteBuffer()
        framed.reserveCapacity(query.count + 2)
        framed.writeInteger(UInt16(truncatingIfNeeded: query.count))
        framed.writeBytes(query)
        return try await exchange(on: channel, promise: promise, timeout: timeout) { [framed] in
            channel.writeAndFlush(framed)
        }
    }

    /// Sends, waits for the promise (response, error, close, timeout or task cancellation,
    /// whichever comes first) and always closes the channel.
    private func exchange(
        on channel: any Channel, promise: EventLoopPromise<[UInt8]>, timeout: TimeAmount,
        send: @Sendable () -> EventLoopFuture<Void>
    ) async throws -> [UInt8] {
        let timer = channel.eventLoop.scheduleTask(in: timeout) { promise.fail(Failure.timedOut) }
        send().whenFailure { promise.fail($0) }
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
        }
    }
}

/// Completes the promise with the first datagram `accepts` takes; fails it on a socket error
/// (ICMP port unreachable arrives as ECONNREFUSED on a connected socket) or on close.
final class DNSDatagramResponseHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let promise: EventLoopPromise<[UInt8]>
    private let accepts: @Sendable ([UInt8]) -> Bool

    init(promise: EventLoopPromise<[UInt8]>, accepts: @escaping @Sendable ([UInt8]) -> Bool) {
        self.promise = promise
        self.accepts = accepts
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let datagram = unwrapInboundIn(data).data
        let bytes = Array(datagram.readableBytesView)
        if accepts(bytes) { promise.succeed(bytes) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(DNSTransport.Failure.closedWithoutResponse)
        context.fireChannelInactive()
    }
}

/// Same for a TCP stream, after `DNSStreamFrameDecoder` has cut it into messages.
final class DNSStreamResponseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<[UInt8]>
    private let accepts: @Sendable ([UInt8]) -> Bool

    init(promise: EventLoopPromise<[UInt8]>, accepts: @escaping @Sendable ([UInt8]) -> Bool) {
        self.promise = promise
        self.accepts = accepts
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(unwrapInboundIn(data).readableBytesView)
        if accepts(bytes) { promise.succeed(bytes) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(DNSTransport.Failure.closedWithoutResponse)
        context.fireChannelInactive()
    }
}

/// RFC 1035 §4.2.2 framing: a two-octet length, then the message. The length field caps a
/// message at 65535 octets, so a peer cannot make this buffer grow beyond that plus one read.
struct DNSStreamFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            buffer.readableBytes >= 2 + Int(length)
        else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        guard let frame = buffer.readSlice(length: Int(length)) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        try decode(context: context, buffer: &buffer)
    }
}
