import Logging
import NIOCore

/// A bound listener and the task that runs each accepted connection in a child task of its
/// own: what every protocol server does once its channel is bound. `stopAccepting` closes
/// the listener (sessions in progress go on: the drain); `stop` also cancels them.
public final class AcceptLoop<Connection: Sendable>: Sendable {
    private let serverChannel: NIOAsyncChannel<Connection, Never>
    private let task: Task<Void, Never>
    public let localPort: Int

    /// `name` names the protocol in the log lines ("IMAP listener stopped").
    public init(
        serverChannel: NIOAsyncChannel<Connection, Never>, requestedPort: Int, name: String, logger: Logger,
        handle: @escaping @Sendable (Connection) async -> Void
    ) {
        self.serverChannel = serverChannel
        self.localPort = serverChannel.channel.localAddress?.port ?? requestedPort
        self.task = Task {
            do {
                try await serverChannel.executeThenClose { connections in
                    await withDiscardingTaskGroup { group in
                        do {
                            for try await connection in connections {
                                group.addTask { await handle(connection) }
                            }
                        } catch {
                            logger.debug("\(name) listener stopped", metadata: ["error": "\(error)"])
                        }
                    }
                }
            } catch {
                logger.error("\(name) listener failed", metadata: ["error": "\(error)"])
            }
        }
    }

    public func stopAccepting() async {
        try? await serverChannel.channel.close()
    }

    public func stop() async {
        await stopAccepting()
        task.cancel()
        await task.value
    }
}
