import Crypto
import Foundation

/// A logged-in web-mail user, carried by the browser in one cookie sealed with the cluster
/// key (`svcpkgWebSessionKey`): no session table anywhere, so any node can serve the next
/// request and a node that dies loses nothing. Revocation is per user: the session records
/// the user's revocation epoch at login, and "log out everywhere" raises the epoch file on the
/// shared tree (`RevocationEpochs`), which refuses every older cookie on every node.
public struct WebSession: Codable, Sendable, Equatable {
    /// The canonical address of the account.
    public var user: String
    /// Unix seconds.
    public var issuedAt: Int64
    public var expiresAt: Int64
    /// The user's revocation epoch when the session was made.
    public var epoch: UInt64
    /// Random per session; the CSRF token is derived from it (`csrfToken`).
    public var csrfSecret: Data

    public init(user: String, issuedAt: Int64, expiresAt: Int64, epoch: UInt64, csrfSecret: Data) {
        self.user = user
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.epoch = epoch
        self.csrfSecret = csrfSecret
    }

    /// A new session for `user` valid for `lifetime` seconds.
    public static func new(user: String, epoch: UInt64, lifetime: Int, now: Date = Date()) -> WebSession {
        let issued = Int64(now.timeIntervalSince1970)
        var secret = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for index in secret.indices { secret[index] = generator.next() }
        return WebSession(user: user, issuedAt: issued, expiresAt: issued + Int64(lifetime), epoch: epoch, csrfSecret: Data(secret))
    }

    /// The token every state-changing request must carry (form field `_csrf` or header
    /// `X-CSRF-Token`): an HMAC of the session's secret, so the page never shows the secret.
    public var csrfToken: String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("svcpkg-web-csrf".utf8), using: SymmetricKey(data: csrfSecret))
        return Base64URL.encode(Array(mac))
    }

    /// Constant-time comparison of a presented token with this session's.
    public func acceptsCSRFToken(_ presented: String?) -> Bool {
        guard let presented else { return false }
        return ConstantTime.equal(Array(presented.utf8), Array(csrfToken.utf8))
    }
}

/// Seals and opens session cookies with ChaCha20-Poly1305 under the cluster key. The cookie
/// value is `v1.` and the base64url of nonce, ciphertext and tag; anything changed in it fails
/// authentication and the request is treated as logged out.
public struct SessionSealer: Sendable {
    public enum OpenError: Error, Equatable, Sendable {
        case malformed
        case forged
        case expired
    }

    static let prefix = "v1."
    static let associatedData = Array("svcpkg-web-session-v1".utf8)
    /// Longer cookie values are refused unread (a session is ~200 bytes).
    static let maxCookieBytes = 4096
    /// Sessions claiming to be issued further in the future than this are refused (clock skew between nodes).
    static let allowedSkew: Int64 = 300

    let key: SymmetricKey

    /// `key` must be 32 bytes (the setting is validated to be).
    public init?(key: [UInt8]) {
        guard key.count == 32 else { return nil }
        self.key = SymmetricKey(data: key)
    }

    public func seal(_ session: WebSession) throws -> String {
        let plain = try JSONEncoder().encode(session)
        let box = try ChaChaPoly.seal(plain, using: key, authenticating: Self.associatedData)
        return Self.prefix + Base64URL.encode(Array(box.combined))
    }

    public func open(_ value: String, now: Date = Date()) throws(OpenError) -> WebSession {
        guard value.utf8.count <= Self.maxCookieBytes, value.hasPrefix(Self.prefix),
            let bytes = Base64URL.decode(String(value.dropFirst(Self.prefix.count)))
        else { throw .malformed }
        let session: WebSession
        do {
            let box = try ChaChaPoly.SealedBox(combined: bytes)
            let plain = try ChaChaPoly.open(box, using: key, authenticating: Self.associatedData)
            session = try JSONDecoder().decode(WebSession.self, from: plain)
        } catch {
            throw .forged
        }
        let seconds = Int64(now.timeIntervalSince1970)
        guard session.expiresAt > seconds, session.issuedAt <= seconds + Self.allowedSkew else { throw .expired }
        return session
    }
}

/// RFC 4648 §5 base64url without padding (cookie-safe, URL-safe).
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7a) || $0 == 0x2d || $0 == 0x5f }) else {
            return nil
        }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.utf8.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64).map(Array.init)
    }
}

enum ConstantTime {
    static func equal(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}
