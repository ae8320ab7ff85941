/// A token bucket: `capacity` tokens, refilled at `ratePerSecond`. Pure (the caller passes
/// the time), so tests drive it with a fake clock.
public struct TokenBucket: Sendable, Equatable {
    public var capacity: Double
    public var ratePerSecond: Double
    private(set) var tokens: Double
    private var last: Int64?

    public init(capacity: Double, ratePerSecond: Double) {
        self.capacity = capacity
        self.ratePerSecond = ratePerSecond
        self.tokens = capacity
    }

    /// Takes `cost` tokens if there are enough at `now` (milliseconds).
    public mutating func take(_ cost: Double = 1, now: Int64) -> Bool {
        if let last, now > last {
            tokens = min(capacity, tokens + Double(now - last) / 1000 * ratePerSecond)
        }
        last = max(last ?? now, now)
        guard tokens >= cost else { return false }
        tokens -= cost
        return true
    }
}

/// Per-client flood limits: one bucket for all commands, a stricter one for CTCP
/// requests (which make other clients answer), and how many refused commands in a row
/// end the connection.
public struct FloodLimits: Sendable, Equatable {
    public var burst: Double
    public var linesPerSecond: Double
    public var ctcpBurst: Double
    public var ctcpPerSecond: Double
    /// Commands refused in a row (without the bucket refilling in between) before the
    /// connection is closed with `ERROR :Excess Flood`.
    public var maxRefused: Int

    public init(burst: Double = 20, linesPerSecond: Double = 4, ctcpBurst: Double = 3, ctcpPerSecond: Double = 0.5, maxRefused: Int = 30) {
        self.burst = burst
        self.linesPerSecond = linesPerSecond
        self.ctcpBurst = ctcpBurst
        self.ctcpPerSecond = ctcpPerSecond
        self.maxRefused = maxRefused
    }
}
