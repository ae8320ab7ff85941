import Directory
import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import SharedTree

/// Touches `<shared>/cluster/nodes/<node>` every `svcpkgHeartbeatInterval` seconds and keeps
/// the shared-tree health in the runtime. File I/O runs on a thread pool: an NFS server that
/// stalls must not stall an event loop.
public struct HeartbeatService: Service {
    let runtime: NodeRuntime
    let threadPool: NIOThreadPool
    let logger: Logger

    public init(runtime: NodeRuntime, threadPool: NIOThreadPool, logger: Logger) {
        self.runtime = runtime
        self.threadPool = threadPool
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await beat()
                let interval = runtime.snapshot.nodeConfig.heartbeatInterval
                try? await Task.sleep(for: .seconds(interval))
            }
        }
        // Last word: the node is stopping, so `cluster status` tells a clean stop from a crash.
        await beat(stopping: true)
    }

    func beat(stopping: Bool = false) async {
        let snapshot = runtime.snapshot
        let layout = SharedTreeLayout(root: snapshot.nodeConfig.sharedRoot)
        let heartbeat = NodeHeartbeat(
            node: snapshot.config.nodeName, pid: getpid(),
            state: stopping ? "stopped" : runtime.effectiveState.rawValue,
            version: runtime.version, host: ProcessInfo.processInfo.hostName)
        do {
            try await threadPool.runIfActive {
                try layout.createSkeleton()
                try HeartbeatStore.write(heartbeat, layout: layout)
            }
            if snapshot.sharedTreeWritable == false {
                logger.notice("shared tree writable again", metadata: ["root": "\(layout.root)"])
            }
            runtime.update {
                $0.sharedTreeWritable = true
                $0.sharedTreeError = nil
                $0.lastHeartbeatAt = Date()
            }
        } catch {
            if snapshot.sharedTreeWritable != false || snapshot.sharedTreeError != "\(error)" {
                logger.error("cannot write the heartbeat", metadata: ["root": "\(layout.root)", "error": "\(error)"])
            }
            runtime.update {
                $0.sharedTreeWritable = false
                $0.sharedTreeError = "\(error)"
            }
        }
    }
}
