// libFuzzer entry for the IMAP framer, parser and encoder. Compiled together with the sources
// of Sources/IMAP into one module (see README.md), so internal rules are reachable.
//
// Each input is used four ways:
//  1. as a byte stream fed to `IMAPCommandFramer` in chunks whose sizes come from the input,
//     with small limits so every limit path is reachable, every frame parsed in both
//     UTF8=ACCEPT modes and every suggested response encoded;
//  2. as one frame handed straight to the parser (literal size lies, no framer in front);
//  3. as a string value: encoding it as an IMAP string and parsing it back must give it back;
//  4. as a mailbox name and as base64: the codecs must round-trip.
// An invariant that fails calls `fatalError`, which libFuzzer reports as a crash.

@_cdecl("LLVMFuzzerTestOneInput")
public func imapFuzzTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    fuzzFramerAndParser(input)
    fuzzParserDirectly(input)
    fuzzStringRoundTrip(input)
    fuzzCodecs(input)
    return 0
}

private let fuzzLimits = IMAPLimits(
    maxLineLength: 512, maxLiteralSize: 256, maxAppendLiteralSize: 1024, maxCommandSize: 2048,
    maxAppendCommandSize: 4096, maxDiscardedBytes: 4096, maxTagLength: 16, maxNestingDepth: 8,
    maxSequenceSetRanges: 32, maxSearchKeys: 64, maxFetchAttributes: 16, maxListItems: 32, maxAppendMessages: 4
)

private func fuzzFramerAndParser(_ input: [UInt8]) {
    guard let control = input.first else { return }
    let literalExtension: IMAPLiteralExtension = [.none, .literalPlus, .literalMinus][Int(control % 3)]
    let rejectLiterals = control & 0x4 != 0
    var framer = IMAPCommandFramer(limits: fuzzLimits, literalExtension: literalExtension)
    let parsers = [IMAPCommandParser(limits: fuzzLimits, utf8Accept: false), IMAPCommandParser(limits: fuzzLimits, utf8Accept: true)]
    let encoder = IMAPResponseEncoder()
    var offset = 1
    var chunkIndex = 0
    while offset < input.count {
        // Chunk sizes 1...64 taken from the input itself, cycling.
        let chunk = Int(input[chunkIndex % input.count] % 64) + 1
        chunkIndex += 1
        let end = min(input.count, offset + chunk)
        framer.append(input[offset..<end])
        offset = end
        while let event = framer.nextEvent() {
            switch event {
            case .frame(let frame):
                guard frame.bytes.count <= fuzzLimits.maxAppendCommandSize + fuzzLimits.maxLineLength else {
                    fatalError("frame of \(frame.bytes.count) bytes exceeds the limits")
                }
                for parser in parsers {
                    switch parser.parse(frame) {
                    case .success(let command):
                        _ = command.description
                        if let tag = frame.tag, tag != command.tag { fatalError("framer tag \(tag) != parser tag \(command.tag)") }
                    case .failure(let error):
                        _ = encoder.encode(error.suggestedResponse)
                    }
                }
                _ = parsers[0].parseIdleDone(frame)
                _ = parsers[0].parseAuthenticationResponse(frame)
            case .continuationRequired(let announcement):
                if announcement.size > fuzzLimits.maxAppendLiteralSize { fatalError("announced literal over the limit") }
                if rejectLiterals { framer.rejectPendingLiteral() }
            case .error(let error):
                _ = encoder.encode(error.suggestedResponse)
            }
            if framer.bufferedByteCount > fuzzLimits.maxAppendCommandSize + fuzzLimits.maxLineLength + 64 {
                fatalError("framer holds \(framer.bufferedByteCount) bytes")
            }
        }
    }
}

private func fuzzParserDirectly(_ input: [UInt8]) {
    for utf8Accept in [false, true] {
        if case .failure(let error) = IMAPCommandParser(limits: fuzzLimits, utf8Accept: utf8Accept).parse(input) {
            _ = IMAPResponseEncoder(utf8Accept: utf8Accept).encode(error.suggestedResponse)
        }
    }
}

private func fuzzStringRoundTrip(_ input: [UInt8]) {
    // literal excludes NUL, so strings with NUL cannot be sent as `string`.
    guard !input.contains(0) else { return }
    for utf8Accept in [false, true] {
        var writer = IMAPWriter(buffer: [], utf8Accept: utf8Accept)
        writer.string(input)
        var cursor = ParserCursor(writer.buffer, limits: IMAPLimits(), utf8Accept: utf8Accept)
        do throws(IMAPParseError) {
            let parsed = try GrammarParser.string(&cursor)
            guard parsed == input, cursor.isAtEnd else { fatalError("string round trip changed the value") }
        } catch {
            fatalError("encoded string does not parse: \(error)")
        }
    }
}

private func fuzzCodecs(_ input: [UInt8]) {
    if let name = ModifiedUTF7.decode(input), ModifiedUTF7.encode(name) != input {
        fatalError("modified UTF-7 accepted a non-canonical form")
    }
    let text = String(decoding: input, as: UTF8.self)
    guard ModifiedUTF7.decode(ModifiedUTF7.encode(text)) == text else { fatalError("modified UTF-7 round trip failed") }
    guard IMAPBase64.decode(Array(IMAPBase64.encode(input).utf8)) == input else { fatalError("base64 round trip failed") }
    _ = IMAPBase64.decode(input)
    _ = IMAPMailboxName(input).decoded(utf8Accept: false)
}
