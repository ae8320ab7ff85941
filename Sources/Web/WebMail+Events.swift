import Foundation
import HTTPTypes
import Hummingbird
import MailMessage
import NIOCore
import SharedTree

/// Live updates for the open page.
extension WebMail {
    // MARK: Live updates

    /// Server-sent events: `change` whenever the folder's messages or flags change (new mail,
    /// another client's IMAP STORE on another node), found by polling the folder's change
    /// token as an IMAP IDLE session does.
    func events(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let auth = try await authenticate(request)
        let folder = try Self.folder(Self.query(request))
        let store = auth.store
        let services = self.services
        let snapshots = self.snapshots
        let interval = max(0.2, services.settings.pollInterval)
        let start = try await loadSnapshot(store, folder)
        let shown = Self.query(request).first("state").map { String($0.prefix(64)) }
        let user = auth.session.user.lowercased()
        let epoch = auth.session.epoch
        let body = ResponseBody { writer in
            // Counted while the stream runs, so a page opened in many tabs cannot hold more
            // than a few polling loops on this node; the others are told to come back later.
            let admitted = self.streams.withLockedValue { streams -> Bool in
                guard streams[user, default: 0] < Self.maxStreamsPerUser else { return false }
                streams[user, default: 0] += 1
                return true
            }
            guard admitted else {
                try await writer.write(ByteBuffer(string: "retry: 60000\n: too many live streams for this user on this node\n\n"))
                try await writer.finish(nil)
                return
            }
            defer {
                self.streams.withLockedValue { streams in
                    let left = (streams[user] ?? 1) - 1
                    streams[user] = left > 0 ? left : nil
                }
            }
            // The state the page showed (from its URL, also on the browser's reconnects), so a
            // change made between the page and this stream is announced at once.
            var last = shown ?? Self.folderState(start)
            try await writer.write(ByteBuffer(string: "retry: 3000\n: connected\n\n"))
            let deadline = Date().addingTimeInterval(Self.eventStreamSeconds)
            var sinceWrite: TimeInterval = 0
            var current = start
            // Ends when the user logs out everywhere (the browser's reconnect then gets 401).
            while Date() < deadline, !Task.isCancelled, try await self.currentEpoch(store) <= epoch {
                if Self.folderState(current) != last {
                    let unseen = current.messages.reduce(0) { $0 + ($1.flags.contains(.seen) ? 0 : 1) }
                    try await writer.write(ByteBuffer(string: "event: change\ndata: {\"exists\":\(current.messages.count),\"unseen\":\(unseen)}\n\n"))
                    last = Self.folderState(current)
                    sinceWrite = 0
                } else if sinceWrite >= 15 {
                    // A comment keeps proxies from timing the stream out and finds closed connections.
                    try await writer.write(ByteBuffer(string: ": ping\n\n"))
                    sinceWrite = 0
                }
                try await Task.sleep(for: .milliseconds(Int(interval * 1000)))
                sinceWrite += interval
                current = try await services.blocking { try snapshots.snapshot(store, folder) }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: body)
    }

    /// What the list page and the stream compare: new or expunged messages change UIDNEXT or
    /// the count, flag changes the highest MODSEQ.
    static func folderState(_ snapshot: FolderSnapshot) -> String {
        "\(snapshot.uidValidity)-\(snapshot.uidNext)-\(snapshot.highestModSeq)-\(snapshot.messages.count)"
    }
}
