/// RFC 6376 §3.4: the two canonicalization algorithms, for header and body separately.
public enum DKIMCanonicalization: String, Sendable, Equatable {
    case simple
    case relaxed
}

enum Canonicalizer {
    private static func isWSP(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

    /// RFC 6376 §3.4.1 / §3.4.2 for one header field (`field` without the final CRLF).
    /// Appends the canonical form, with CRLF unless `terminate` is false (the DKIM-Signature
    /// field itself is hashed without its CRLF, §3.7).
    static func appendHeader(_ field: RawHeaderField, _ algorithm: DKIMCanonicalization, terminate: Bool = true, to out: inout [UInt8]) {
        appendHeader(name: field.name, bytes: field.bytes, valueStart: field.valueStart, algorithm, terminate: terminate, to: &out)
    }

    static func appendHeader(
        name: String, bytes: [UInt8], valueStart: Int, _ algorithm: DKIMCanonicalization, terminate: Bool = true, to out: inout [UInt8]
    ) {
        switch algorithm {
        case .simple:
            out.append(contentsOf: bytes)
        case .relaxed:
            // §3.4.2: lowercase name, unfold, WSP runs to one SP, no WSP at the end of the
            // value or around the colon.
            out.append(contentsOf: Array(name.lowercased().utf8))
            out.append(0x3a)
            var pendingSpace = false
            var started = false
            var index = valueStart
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte == 0x0d, index < bytes.count, bytes[index] == 0x0a {
                    index += 1
                    continue
                }
                if isWSP(byte) {
                    pendingSpace = started
                    continue
                }
                if pendingSpace { out.append(0x20) }
                pendingSpace = false
                started = true
                out.append(byte)
            }
        }
        if terminate { out.append(contentsOf: [0x0d, 0x0a]) }
    }

    /// The canonical header section form of a whole field, for tests and signing.
    static func header(_ field: RawHeaderField, _ algorithm: DKIMCanonicalization) -> [UInt8] {
        var out: [UInt8] = []
        appendHeader(field, algorithm, to: &out)
        return out
    }

    /// RFC 6376 §3.4.3 / §3.4.4 on a CRLF body, returning the canonical bytes. Used for tests;
    /// hashing goes through `BodyCanonicalizer` without holding a second copy.
    static func body(_ body: ArraySlice<UInt8>, _ algorithm: DKIMCanonicalization) -> [UInt8] {
        var out: [UInt8] = []
        var sink = BodyCanonicalizer(algorithm: algorithm) { out.append(contentsOf: $0) }
        sink.process(body)
        sink.finish()
        return out
    }
}

/// Streams a CRLF body through a canonicalization algorithm into `emit`, holding back runs
/// of empty lines until something follows them (trailing empty lines are dropped, §3.4.3,
/// §3.4.4). `emitted` counts canonical bytes, for l=.
struct BodyCanonicalizer {
    let algorithm: DKIMCanonicalization
    let emit: ([UInt8]) -> Void
    private(set) var emitted = 0
    private var pendingEmptyLines = 0
    private var buffer: [UInt8] = []

    init(algorithm: DKIMCanonicalization, emit: @escaping ([UInt8]) -> Void) {
        self.algorithm = algorithm
        self.emit = emit
        buffer.reserveCapacity(1 << 16)
    }

    private static let crlf: [UInt8] = [0x0d, 0x0a]

    mutating func process(_ body: ArraySlice<UInt8>) {
        var lineStart = body.startIndex
        var index = body.startIndex
        while index < body.endIndex {
            if body[index] == 0x0d, index + 1 < body.endIndex, body[index + 1] == 0x0a {
                line(body[lineStart..<index])
                index += 2
                lineStart = index
            } else {
                index += 1
            }
        }
        // §3.4.3/§3.4.4: a last line without CRLF is treated as if it had one.
        if lineStart < body.endIndex { line(body[lineStart..<body.endIndex]) }
    }

    private mutating func line(_ content: ArraySlice<UInt8>) {
        switch algorithm {
        case .simple:
            if content.isEmpty {
                pendingEmptyLines += 1
                return
            }
            flushEmptyLines()
            append(content)
        case .relaxed:
            // §3.4.4: WSP at the end of a line is removed; a run of WSP becomes one SP.
            var end = content.endIndex
            while end > content.startIndex, content[end - 1] == 0x20 || content[end - 1] == 0x09 { end -= 1 }
            if end == content.startIndex {
                pendingEmptyLines += 1
                return
            }
            flushEmptyLines()
            var inWSP = false
            for byte in content[content.startIndex..<end] {
                if byte == 0x20 || byte == 0x09 {
                    if !inWSP { appendByte(0x20) }
                    inWSP = true
                } else {
                    inWSP = false
                    appendByte(byte)
                }
            }
        }
        append(Self.crlf[...])
    }

    private mutating func flushEmptyLines() {
        while pendingEmptyLines > 0 {
            append(Self.crlf[...])
            pendingEmptyLines -= 1
        }
    }

    private mutating func appendByte(_ byte: UInt8) {
        buffer.append(byte)
        emitted += 1
        if buffer.count >= 1 << 16 { drain() }
    }

    private mutating func append(_ bytes: ArraySlice<UInt8>) {
        buffer.append(contentsOf: bytes)
        emitted += bytes.count
        if buffer.count >= 1 << 16 { drain() }
    }

    private mutating func drain() {
        if !buffer.isEmpty { emit(buffer) }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Ends the body: §3.4.3 makes an empty simple body a single CRLF; relaxed stays empty.
    mutating func finish() {
        if algorithm == .simple && emitted == 0 { append(Self.crlf[...]) }
        drain()
    }
}
