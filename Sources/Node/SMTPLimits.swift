import Foundation
import NIOConcurrencyHelpers

/// Token buckets keyed by client address or user: `rate` events per `period`, bursts up to
/// `rate`. O(1) per event; the table is pruned of full (idle) buckets when it grows large.
///
/// Node-local: behind HAProxy a client spread over N nodes gets up to N times the limit.
/// That bounds abuse per node (what protects the node) without a shared-tree write per message.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Date
    }

    private let buckets = NIOLockedValueBox<[String: Bucket]>([:])
    static let maxTrackedKeys = 100_000

    /// Takes one token for `key`; false when the bucket is empty. A rate of 0 means unlimited.
    func take(_ key: String, rate: Int, period: TimeInterval, now: Date = Date()) -> Bool {
        guard rate > 0 else { return true }
        let capacity = Double(rate)
        let refillPerSecond = capacity / period
        return buckets.withLockedValue { table in
            if table.count >= Self.maxTrackedKeys {
                table = table.filter { $0.value.tokens + now.timeIntervalSince($0.value.updated) * refillPerSecond < capacity }
            }
            var bucket = table[key] ?? Bucket(tokens: capacity, updated: now)
            bucket.tokens = min(capacity, bucket.tokens + max(0, now.timeIntervalSince(bucket.updated)) * refillPerSecond)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                table[key] = bucket
                return false
            }
            bucket.tokens -= 1
            table[key] = bucket
            return true
        }
    }
}

/// Open connections per client address on this node.
final class ConnectionCounter: Sendable {
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    /// Counts the connection if the address has fewer than `limit` open; false refuses it.
    func open(_ address: String, limit: Int) -> Bool {
        counts.withLockedValue { table in
            let current = table[address, default: 0]
            guard current < limit else { return false }
            table[address] = current + 1
            return true
        }
    }

    func close(_ address: String) {
        counts.withLockedValue { table in
            let remaining = table[address, default: 0] - 1
            table[address] = remaining > 0 ? remaining : nil
        }
    }

    func count(_ address: String) -> Int { counts.withLockedValue { $0[address, default: 0] } }
}
