import NIOConcurrencyHelpers
import NIOCore

/// A small in-process cache of answers, bounded in entries and in time. Failures are never
/// cached; negative answers only when the server sent an SOA to say for how long.
final class DNSCache: Sendable {
    struct Key: Hashable, Sendable {
        var name: DNSName
        var type: UInt16
    }

    enum Value: Equatable, Sendable {
        case records([DNSRecordData])
        case noData
        case nameError
    }

    private struct Entry: Sendable {
        var value: Value
        var expires: NIODeadline
    }

    let maxEntries: Int
    let maxTTL: UInt32
    let maxNegativeTTL: UInt32
    private let entries = NIOLockedValueBox<[Key: Entry]>([:])

    /// - Parameters:
    ///   - maxEntries: 0 turns the cache off.
    ///   - maxTTL: upper bound on how long a positive answer is kept, whatever its TTL says.
    ///   - maxNegativeTTL: the same for NXDOMAIN and NODATA.
    init(maxEntries: Int = 10_000, maxTTL: UInt32 = 3_600, maxNegativeTTL: UInt32 = 300) {
        self.maxEntries = max(0, maxEntries)
        self.maxTTL = maxTTL
        self.maxNegativeTTL = maxNegativeTTL
    }

    var count: Int { entries.withLockedValue { $0.count } }

    func value(for key: Key, now: NIODeadline = .now()) -> Value? {
        entries.withLockedValue { entries in
            guard let entry = entries[key] else { return nil }
            guard entry.expires > now else {
                entries[key] = nil
                return nil
            }
            return entry.value
        }
    }

    /// Stores what `answer` says, if it may be cached at all.
    func store(_ answer: DNSAnswer, for key: Key, now: NIODeadline = .now()) {
        let value: Value
        let ttl: UInt32
        switch answer {
        case .records(let records, let recordTTL):
            (value, ttl) = (.records(records), min(recordTTL, maxTTL))
        case .noData(let negativeTTL?):
            (value, ttl) = (.noData, min(negativeTTL, maxNegativeTTL))
        case .nameError(let negativeTTL?):
            (value, ttl) = (.nameError, min(negativeTTL, maxNegativeTTL))
        case .noData(nil), .nameError(nil), .failure:
            return
        }
        guard ttl > 0, maxEntries > 0 else { return }
        let entry = Entry(value: value, expires: now + .seconds(Int64(ttl)))
        let limit = maxEntries
        entries.withLockedValue { entries in
            if entries[key] == nil && entries.count >= limit {
                entries = entries.filter { $0.value.expires > now }
                // Still full of live entries: drop about a tenth, in the dictionary's own
                // (hash-scattered) order, so that this O(n) pass runs once per many inserts.
                if entries.count >= limit {
                    let drop = max(1, limit / 10)
                    let victims = Array(entries.keys.prefix(drop))
                    for victim in victims { entries[victim] = nil }
                }
            }
            entries[key] = entry
        }
    }
}
