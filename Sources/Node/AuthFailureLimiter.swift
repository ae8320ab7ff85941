import Foundation
import NIOConcurrencyHelpers

/// Slows down and then refuses password guessing per client address, on this node:
/// each failure is answered after `delay × min(recent failures, 5)`, and an address with
/// `maxFailures` failures inside the window is refused without asking LDAP at all.
/// Counters are node-local (HAProxy tends to keep a client on one node; a guesser spread
/// over N nodes gets N times the budget, which the delay still makes slow).
final class AuthFailureLimiter: Sendable {
    struct Limits: Sendable, Equatable {
        var delay: TimeInterval
        var maxFailures: Int
        var window: TimeInterval
    }

    private let failures = NIOLockedValueBox<[String: [Date]]>([:])
    static let maxTrackedAddresses = 100_000

    /// Whether the address may try now.
    func allows(_ address: String, limits: Limits, now: Date = Date()) -> Bool {
        recentFailures(address, limits: limits, now: now) < limits.maxFailures
    }

    /// Records a failure and returns how long to wait before answering.
    func recordFailure(_ address: String, limits: Limits, now: Date = Date()) -> TimeInterval {
        let count = failures.withLockedValue { table -> Int in
            if table.count >= Self.maxTrackedAddresses { table = table.filter { $0.value.last.map { now.timeIntervalSince($0) < limits.window } ?? false } }
            var list = table[address, default: []].filter { now.timeIntervalSince($0) < limits.window }
            list.append(now)
            table[address] = list
            return list.count
        }
        return limits.delay * Double(min(count, 5))
    }

    func recordSuccess(_ address: String) {
        failures.withLockedValue { $0[address] = nil }
    }

    func recentFailures(_ address: String, limits: Limits, now: Date = Date()) -> Int {
        failures.withLockedValue { table in table[address]?.filter { now.timeIntervalSince($0) < limits.window }.count ?? 0 }
    }
}
