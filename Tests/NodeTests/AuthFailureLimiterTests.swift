import Foundation
import Testing
@testable import Node

@Suite struct AuthFailureLimiterTests {
    let limits = AuthFailureLimiter.Limits(delay: 1, maxFailures: 3, window: 60)

    @Test func delaysGrowThenTheAddressIsRefused() {
        let limiter = AuthFailureLimiter()
        let now = Date(timeIntervalSince1970: 1000)
        #expect(limiter.allows("192.0.2.1", limits: limits, now: now))
        #expect(limiter.recordFailure("192.0.2.1", limits: limits, now: now) == 1)
        #expect(limiter.recordFailure("192.0.2.1", limits: limits, now: now) == 2)
        #expect(limiter.allows("192.0.2.1", limits: limits, now: now))
        #expect(limiter.recordFailure("192.0.2.1", limits: limits, now: now) == 3)
        #expect(!limiter.allows("192.0.2.1", limits: limits, now: now))
        #expect(limiter.allows("192.0.2.2", limits: limits, now: now), "other addresses are not affected")
        #expect(limiter.allows("192.0.2.1", limits: limits, now: now.addingTimeInterval(61)), "failures age out")
    }

    @Test func successClearsAndDelayIsCapped() {
        let limiter = AuthFailureLimiter()
        let wide = AuthFailureLimiter.Limits(delay: 0.5, maxFailures: 100, window: 60)
        var last = 0.0
        for _ in 0..<8 { last = limiter.recordFailure("a", limits: wide) }
        #expect(last == 2.5)
        limiter.recordSuccess("a")
        #expect(limiter.recentFailures("a", limits: wide) == 0)
    }
}
