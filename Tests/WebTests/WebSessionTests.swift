import Foundation
import Testing

@testable import Web

@Suite struct WebSessionTests {
    let key: [UInt8] = (0..<32).map { UInt8($0) }
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func sealedSessionOpensOnAnyNodeWithTheSameKey() throws {
        let session = WebSession.new(user: "alice@example.org", epoch: 3, lifetime: 3600, now: now)
        let cookie = try #require(SessionSealer(key: key)).seal(session)
        #expect(cookie.hasPrefix("v1."))
        #expect(!cookie.contains("alice"))
        // Another node: a new sealer from the same cluster key.
        let opened = try #require(SessionSealer(key: key)).open(cookie, now: now.addingTimeInterval(60))
        #expect(opened == session)
        #expect(opened.epoch == 3)
    }

    @Test func everyChangedByteIsRefused() throws {
        let sealer = try #require(SessionSealer(key: key))
        let cookie = try sealer.seal(WebSession.new(user: "alice@example.org", epoch: 0, lifetime: 3600, now: now))
        let bytes = try #require(Base64URL.decode(String(cookie.dropFirst(3))))
        for index in stride(from: 0, to: bytes.count, by: 7) {
            var tampered = bytes
            tampered[index] ^= 0x01
            #expect(throws: SessionSealer.OpenError.forged) { try sealer.open("v1." + Base64URL.encode(tampered), now: now) }
        }
        #expect(throws: SessionSealer.OpenError.malformed) { try sealer.open("v1.!!!", now: now) }
        #expect(throws: SessionSealer.OpenError.malformed) { try sealer.open("alice@example.org", now: now) }
        #expect(throws: SessionSealer.OpenError.malformed) { try sealer.open("v1." + String(repeating: "A", count: 5000), now: now) }
    }

    @Test func anotherKeyCannotOpenIt() throws {
        let cookie = try #require(SessionSealer(key: key)).seal(WebSession.new(user: "a@example.org", epoch: 0, lifetime: 3600, now: now))
        let other = try #require(SessionSealer(key: [UInt8](repeating: 9, count: 32)))
        #expect(throws: SessionSealer.OpenError.forged) { try other.open(cookie, now: now) }
        #expect(SessionSealer(key: [1, 2, 3]) == nil)
    }

    @Test func expiredOrFutureSessionsAreRefused() throws {
        let sealer = try #require(SessionSealer(key: key))
        let cookie = try sealer.seal(WebSession.new(user: "a@example.org", epoch: 0, lifetime: 600, now: now))
        #expect(throws: SessionSealer.OpenError.expired) { try sealer.open(cookie, now: now.addingTimeInterval(601)) }
        #expect(throws: SessionSealer.OpenError.expired) { try sealer.open(cookie, now: now.addingTimeInterval(-3600)) }
    }

    @Test func csrfTokenIsPerSessionAndChecked() {
        let one = WebSession.new(user: "a@example.org", epoch: 0, lifetime: 600, now: now)
        let two = WebSession.new(user: "a@example.org", epoch: 0, lifetime: 600, now: now)
        #expect(one.csrfToken != two.csrfToken)
        #expect(one.acceptsCSRFToken(one.csrfToken))
        #expect(!one.acceptsCSRFToken(two.csrfToken))
        #expect(!one.acceptsCSRFToken(nil))
        #expect(!one.acceptsCSRFToken(""))
        // The token does not reveal the secret.
        #expect(!one.csrfToken.contains(Base64URL.encode(Array(one.csrfSecret))))
    }
}
