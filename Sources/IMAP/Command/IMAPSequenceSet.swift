/// `seq-number`: a message sequence number or UID, or `*`, the largest one in use (RFC 9051 §9).
public enum IMAPSequenceNumber: Sendable, Hashable {
    case number(UInt32)
    case last

    /// `*` stands for `largest`; RFC 9051 §6.4.8 makes `*` in an empty mailbox refer to nothing,
    /// which the caller sees as `largest == 0`.
    public func resolved(largest: UInt32) -> UInt32 {
        switch self {
        case .number(let value): return value
        case .last: return largest
        }
    }
}

/// `seq-range` or a single `seq-number` (`first == last`). The order of the bounds is as sent:
/// RFC 9051 §9 makes `4:2` the same as `2:4`, which `resolved` takes care of.
public struct IMAPSequenceRange: Sendable, Hashable {
    public var first: IMAPSequenceNumber
    public var last: IMAPSequenceNumber

    public init(_ first: IMAPSequenceNumber, _ last: IMAPSequenceNumber) {
        self.first = first
        self.last = last
    }

    public init(_ single: UInt32) {
        self.init(.number(single), .number(single))
    }

    public init(_ range: ClosedRange<UInt32>) {
        self.init(.number(range.lowerBound), .number(range.upperBound))
    }

    /// The inclusive range of numbers this denotes when `*` is `largest`.
    public func resolved(largest: UInt32) -> ClosedRange<UInt32> {
        let a = first.resolved(largest: largest)
        let b = last.resolved(largest: largest)
        return min(a, b)...max(a, b)
    }
}

/// `sequence-set`, or `$` (RFC 5182 SEARCHRES: the result saved by the last `SEARCH RETURN (SAVE)`).
public enum IMAPSequenceSet: Sendable, Hashable {
    case ranges([IMAPSequenceRange])
    case lastSearchResult

    public init(_ ranges: [IMAPSequenceRange]) {
        self = .ranges(ranges)
    }

    public init(_ range: ClosedRange<UInt32>) {
        self = .ranges([IMAPSequenceRange(range)])
    }

    /// Sorted, deduplicated and merged into the fewest ranges: `[5, 1, 2, 3]` → `1:3,5`.
    public init(compacting values: some Sequence<UInt32>) {
        self.init(preservingOrder: Array(values).sorted())
    }

    /// Consecutive runs merged but the order kept, for lists whose order carries meaning: the
    /// two sets of COPYUID (RFC 4315 §3) pair up element by element.
    public init(preservingOrder values: [UInt32]) {
        var ranges: [IMAPSequenceRange] = []
        var start: UInt32?
        var end: UInt32 = 0
        for value in values {
            if let current = start {
                if value == end { continue }
                if end < UInt32.max, value == end + 1 {
                    end = value
                    continue
                }
                ranges.append(IMAPSequenceRange(.number(current), .number(end)))
            }
            start = value
            end = value
        }
        if let current = start {
            ranges.append(IMAPSequenceRange(.number(current), .number(end)))
        }
        self = .ranges(ranges)
    }

    /// Whether `value` is in the set, `*` standing for `largest`; `$` has to be resolved by the session first.
    public func contains(_ value: UInt32, largest: UInt32) -> Bool {
        guard case .ranges(let ranges) = self else { return false }
        return ranges.contains { $0.resolved(largest: largest).contains(value) }
    }

    /// True when `*` appears in it (RFC 7162: not allowed in known-uids).
    public var containsLast: Bool {
        guard case .ranges(let ranges) = self else { return false }
        return ranges.contains { $0.first == .last || $0.last == .last }
    }
}
