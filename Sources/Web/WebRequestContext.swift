import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// The request context of the node's HTTP application (web-mail, /healthz, /metrics, and the
/// web chat's WebSocket upgrade).
public struct WebRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The TCP peer (HAProxy, when the node is behind the content switch).
    public let peerAddress: String
    /// Where an admitted WebSocket upgrade leaves its handler (`/chat/socket`).
    public let webSocket: WebSocketHandlerReference<WebRequestContext>

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peerAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
        webSocket = .init()
    }
}

extension Request {
    /// The client address for rate limits and logs: the last `X-Forwarded-For` entry (the one
    /// the content switch added, `option forwardfor`) when there is one, else the TCP peer.
    /// Nodes are reached through the switch; a client talking to a node directly could pick
    /// the address its failures count against, but not get around the lockout of that address.
    func clientAddress(_ context: WebRequestContext) -> String {
        if let forwarded = headers[.xForwardedFor], let last = forwarded.split(separator: ",").last {
            let address = last.trimmingCharacters(in: .whitespaces)
            if !address.isEmpty, address.utf8.count <= 64 { return address }
        }
        return context.peerAddress
    }

    /// Served over TLS, directly or at the content switch (`X-Forwarded-Proto: https`).
    var isHTTPS: Bool {
        head.scheme == "https" || headers[.xForwardedProto]?.lowercased() == "https"
    }

    /// The value of one cookie.
    func cookie(_ name: String) -> String? { cookies[name]?.value }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
    static let xForwardedProto = Self("X-Forwarded-Proto")!
    static let xFrameOptions = Self("X-Frame-Options")!
    static let xCSRFToken = Self("X-CSRF-Token")!
    static let secFetchSite = Self("Sec-Fetch-Site")!
}
