/// Splits client input into lines (POP3, IRC) (ending at LF; one CR before it is dropped) with a bound:
/// a line longer than the limit is reported once as `.tooLong` and then thrown away up to
/// its LF as it arrives, so an endless line costs no memory.
///
/// Consumed input is dropped lazily (a read index, compacted when it passes half the
/// buffer), so a read holding thousands of pipelined commands is split in linear time.
public struct LineFramer: Sendable, Equatable {
    public init() {}

    public enum Event: Sendable, Equatable {
        case line([UInt8])
        case tooLong
    }

    private var buffer: [UInt8] = []
    private var start = 0
    /// Where the search for the next LF resumes: bytes before it hold none, so a line that
    /// arrives a byte at a time is scanned once, not once per byte.
    private var scanned = 0
    /// Inside a line already reported as too long: drop bytes until its LF.
    private var discarding = false

    /// Bytes received and not yet taken as lines.
    public var bufferedCount: Int { buffer.count - start }

    public mutating func append(_ bytes: some Collection<UInt8>) {
        buffer.append(contentsOf: bytes)
    }

    /// Forgets everything buffered (after STLS: plaintext read ahead is never trusted).
    public mutating func reset() {
        buffer = []
        start = 0
        scanned = 0
        discarding = false
    }

    /// The next complete line (without CR LF) if it is at most `maxLength` octets, `.tooLong`
    /// once for a longer one, or nil when more input is needed.
    public mutating func next(maxLength: Int) -> Event? {
        defer { compact() }
        while true {
            guard let end = buffer[max(start, scanned)...].firstIndex(of: 0x0a) else {
                scanned = buffer.count
                if discarding {
                    start = buffer.count
                    return nil
                }
                // The line is already too long and has not ended: report it now, drop the
                // rest as it comes.
                if buffer.count - start > maxLength + 1 {
                    start = buffer.count
                    discarding = true
                    return .tooLong
                }
                return nil
            }
            let lineStart = start
            start = end + 1
            scanned = start
            if discarding {
                discarding = false
                continue
            }
            var lineEnd = end
            if lineEnd > lineStart && buffer[lineEnd - 1] == 0x0d { lineEnd -= 1 }
            guard lineEnd - lineStart <= maxLength else { return .tooLong }
            return .line(Array(buffer[lineStart..<lineEnd]))
        }
    }

    private mutating func compact() {
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
            start = 0
            scanned = 0
        } else if start > 4096 && start > buffer.count / 2 {
            buffer.removeFirst(start)
            scanned -= start
            start = 0
        }
    }
}
