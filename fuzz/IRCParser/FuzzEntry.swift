// libFuzzer entry for the IRC line framer, message parser and encoder, and the pure rules
// beside them (names, ban masks, modes, server-time). Compiled together with those sources
// into one module (see README.md), so internal functions are reachable.
//
// Each input is used three ways:
//  1. as a byte stream fed to `LineFramer` in chunks whose sizes come from the input, every
//     line parsed; a parsed message encodes and parses back to itself (when the encoding
//     fits the limits), and its parameters go through the mode and name rules;
//  2. as one line handed straight to the parser;
//  3. as text: server-time parsing, ban-mask matching and tag escaping must not trap, and
//     escaping then unescaping a tag value gives it back.
// An invariant that fails calls `fatalError`, which libFuzzer reports as a crash.

@_cdecl("LLVMFuzzerTestOneInput")
public func ircFuzzTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    fuzzFramerAndParser(input)
    fuzzLine(input)
    fuzzText(input)
    return 0
}

private func fuzzFramerAndParser(_ input: [UInt8]) {
    var framer = LineFramer()
    var offset = 0
    var chunkIndex = 0
    while offset < input.count {
        let chunk = Int(input[chunkIndex % input.count] % 64) + 1
        chunkIndex += 1
        let end = min(input.count, offset + chunk)
        framer.append(input[offset..<end])
        offset = end
        while let event = framer.next(maxLength: IRCLimits.maxLineBytes) {
            if case .line(let line) = event {
                if line.count > IRCLimits.maxLineBytes { fatalError("framer returned a line of \(line.count) bytes") }
                fuzzLine(line)
            }
        }
        if framer.bufferedCount > IRCLimits.maxLineBytes + 65 { fatalError("framer holds \(framer.bufferedCount) bytes") }
    }
}

private func fuzzLine(_ line: [UInt8]) {
    guard let message = try? IRCMessage.parse(line) else { return }
    if message.params.count > IRCLimits.maxParams { fatalError("\(message.params.count) params") }
    if message.command.isEmpty { fatalError("empty command") }
    let wire = Array(message.encoded().utf8)
    guard wire.count >= 2, wire[wire.count - 2] == 0x0d, wire[wire.count - 1] == 0x0a else { fatalError("encoding without CR LF") }
    let body = Array(wire.dropLast(2))
    if body.contains(where: { $0 == 0 || $0 == 0x0a || $0 == 0x0d }) { fatalError("encoding holds NUL, CR or LF") }
    if let again = try? IRCMessage.parse(body) {
        if again != message { fatalError("round trip changed \(message) into \(again)") }
    } else {
        // Only the limits may refuse a re-encoding (escaping and a trailing `:` can grow it).
        let tagBytes = body.first == UInt8(ascii: "@") ? (body.firstIndex(of: 0x20) ?? body.count) + 1 : 0
        if tagBytes <= IRCLimits.maxTagSectionBytes && body.count - tagBytes <= IRCLimits.maxBodyBytes {
            fatalError("the encoding of \(message) does not parse")
        }
    }
    _ = message.clientTagBytes
    for param in message.params {
        _ = IRCNames.isValidNick(param)
        _ = IRCNames.isValidChannel(param)
        let file = IRCNames.fileName(param)
        if file.contains("/") || file.utf8.count != IRCNames.fold(param).utf8.count * 2 { fatalError("bad file name for \(param)") }
        if IRCNames.truncate(param, to: 10).utf8.count > 10 { fatalError("truncate overshoots") }
    }
    var channel = ChannelState(name: "#fuzz", created: 0)
    let founder = ChatEvent(time: 0, kind: .join, nick: "op", source: "op!op@h", account: nil, node: "n", pid: 1, target: "#fuzz")
    channel.apply(founder)
    if message.params.count >= 1 {
        let arguments = Array(message.params.dropFirst())
        if case .success(let changes) = channel.checkModes(nick: "op", modeString: message.params[0], arguments: arguments) {
            let params = ChannelState.modeParams(changes)
            for change in ChannelState.parseModeParams(params) { channel.apply(change) }
            if channel.bans.count > ChannelState.maxBans + 13 { fatalError("ban list over its limit") }
        }
    }
    _ = channel.checkJoin(nick: message.params.first ?? "x", source: message.source ?? "x!y@z", key: message.params.last)
}

private func fuzzText(_ input: [UInt8]) {
    let text = String(decoding: input, as: UTF8.self)
    _ = ServerTime.parse(text)
    let half = text.utf8.count / 2
    let pattern = String(decoding: input.prefix(min(half, 200)), as: UTF8.self)
    _ = Glob.matches(pattern, String(decoding: input.dropFirst(half).prefix(400), as: UTF8.self))
    _ = Glob.normalizeMask(text)
    let value = String(text.unicodeScalars.filter { $0 != "\0" }.prefix(512))
    let escaped = IRCMessage.escapeTagValue(value)
    if IRCMessage.unescapeTagValue(Array(escaped.utf8)[...]) != value { fatalError("tag value \(value) does not survive escaping") }
}
