import CompressNIO
import NIOCore

/// RFC 4978 COMPRESS=DEFLATE: raw deflate (RFC 1951) in both directions once the server's
/// tagged OK has gone out. Placed between TLS (if any) and the rest of the pipeline.
final class DeflateInboundHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// What one read may inflate to: a small compressed read that expands past this is a
    /// decompression bomb, and the connection is closed.
    static let maxInflatedPerRead = 16 << 20
    static let chunkSize = 64 * 1024

    private let inflater: ZlibDecompressor

    init() throws {
        inflater = try ZlibDecompressor(algorithm: .deflate)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        var produced = 0
        while input.readableBytes > 0 {
            var output = context.channel.allocator.buffer(capacity: Self.chunkSize)
            let before = input.readerIndex
            do {
                try inflater.inflate(from: &input, to: &output)
            } catch let error as CompressNIOError where error == .bufferOverflow || error == .inputBufferOverflow {
                // Output full (go round again) or input exhausted (wait for more).
            } catch {
                context.close(promise: nil)
                return
            }
            produced += output.readableBytes
            guard produced <= Self.maxInflatedPerRead else {
                context.close(promise: nil)
                return
            }
            if output.readableBytes > 0 {
                context.fireChannelRead(wrapInboundOut(output))
            } else if input.readerIndex == before {
                break
            }
        }
    }
}

final class DeflateOutboundHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let deflater: ZlibCompressor

    init() throws {
        deflater = try ZlibCompressor(algorithm: .deflate)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        var input = unwrapOutboundIn(data)
        // A sync flush per write: the client can inflate every response as soon as it arrives.
        var output = context.channel.allocator.buffer(capacity: deflater.maxSize(from: input))
        do {
            try deflater.deflate(from: &input, to: &output, flush: .sync)
        } catch {
            promise?.fail(error)
            context.close(promise: nil)
            return
        }
        context.write(wrapOutboundOut(output), promise: promise)
    }
}
