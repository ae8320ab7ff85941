// libFuzzer entry for the MailMessage module. Compiled together with the sources of
// Sources/MailMessage into one module (see README.md), so internal rules are reachable.
//
// Each input is used three ways:
//  1. as a message, parsed with small limits (so every limit path is reachable) and with the
//     defaults: the tree's ranges must nest, the part numbering must find every part, every
//     section, partial and BINARY must stay inside the message, and ENVELOPE, BODYSTRUCTURE and
//     the decoded forms must be computable;
//  2. as a header field value: address list, Content-Type, Content-Disposition,
//     Content-Language, encoded words;
//  3. as a body: base64 and quoted-printable decoding, every charset table.
// An invariant that fails calls `fatalError`, which libFuzzer reports as a crash.

@_cdecl("LLVMFuzzerTestOneInput")
public func mimeFuzzTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    fuzzStructure(input, limits: smallLimits)
    fuzzStructure(input, limits: MIMELimits())
    fuzzFieldValues(input)
    fuzzBodies(input)
    return 0
}

private let smallLimits = MIMELimits(maxDepth: 6, maxParts: 40, maxHeaderBytes: 512, maxHeaderFields: 16, maxBoundaryLength: 40)

private func fuzzStructure(_ message: [UInt8], limits: MIMELimits) {
    let structure = MessageStructure.parse(message, limits: limits)
    guard structure.partCount <= limits.maxParts else { fatalError("\(structure.partCount) parts over the limit \(limits.maxParts)") }
    guard structure.root.headerRange.lowerBound == 0, structure.root.bodyRange.upperBound == message.count else {
        fatalError("the root does not cover the message: \(structure.root.headerRange) \(structure.root.bodyRange)")
    }
    checkPart(structure.root, within: 0..<message.count, depth: 0, limits: limits)

    _ = structure.bodyStructure
    let envelope = structure.envelope
    _ = envelope.decoded

    // Every part numbered the IMAP way is found again by `part(at:)`.
    var paths: [([Int], MessagePart)] = []
    enumerate(structure.root, prefix: [], isMessage: true, into: &paths)
    let selector = message.first.map(Int.init) ?? 0
    for (path, expected) in paths.prefix(64) {
        guard let found = try? structure.part(at: path), found == expected else { fatalError("part \(path) not found again") }
        for text in [SectionText.full, .header, .text, .mime, .headerFields(["subject", "from"]), .headerFieldsNot(["received"])] {
            guard let section = try? structure.section(of: message, path: path, part: text) else { continue }
            checkSection(section, message: message, selector: selector)
        }
        if let binary = try? structure.binary(of: message, path: path), binary.count > message.count {
            fatalError("BINARY of \(path) is larger than the message")
        }
        _ = structure.decodedText(of: expected, in: message)
        _ = expected.filename
    }
    for text in [SectionText.full, .header, .text, .headerFields(["content-type"])] {
        if let section = try? structure.section(of: message, path: [], part: text) { checkSection(section, message: message, selector: selector) }
    }
}

private func checkPart(_ part: MessagePart, within outer: Range<Int>, depth: Int, limits: MIMELimits) {
    guard depth <= limits.maxDepth + 1 else { fatalError("depth \(depth) over the limit") }
    guard part.headerRange.lowerBound >= outer.lowerBound, part.headerRange.upperBound == part.bodyRange.lowerBound,
          part.bodyRange.upperBound <= outer.upperBound
    else { fatalError("part ranges \(part.headerRange) \(part.bodyRange) outside \(outer)") }
    guard part.bodyLines >= part.bodyBareLineFeeds, part.bodyLines <= part.bodyRange.count else { fatalError("line counts") }
    for field in part.fields where !(part.headerRange.contains(field.range.lowerBound) && field.range.upperBound <= part.headerRange.upperBound) {
        fatalError("field \(field.name) at \(field.range) outside its header \(part.headerRange)")
    }
    var previousEnd = part.bodyRange.lowerBound
    for child in part.children {
        guard child.headerRange.lowerBound >= previousEnd else { fatalError("siblings overlap") }
        checkPart(child, within: part.bodyRange, depth: depth + 1, limits: limits)
        previousEnd = child.bodyRange.upperBound
    }
}

/// IMAP part numbers (RFC 9051 §6.4.5): the children of a multipart are 1...n; a message
/// that is not multipart has its body as part 1; a message/rfc822 part's numbers go on inside.
private func enumerate(_ part: MessagePart, prefix: [Int], isMessage: Bool, into paths: inout [([Int], MessagePart)]) {
    guard paths.count < 256 else { return }
    switch part.content {
    case .multipart(let children):
        for (index, child) in children.enumerated() {
            paths.append((prefix + [index + 1], child))
            enumerate(child, prefix: prefix + [index + 1], isMessage: false, into: &paths)
        }
    case .message(let inner):
        if isMessage {
            paths.append((prefix + [1], part))
            enumerate(inner, prefix: prefix + [1], isMessage: true, into: &paths)
        } else {
            enumerate(inner, prefix: prefix, isMessage: true, into: &paths)
        }
    case .single:
        if isMessage { paths.append((prefix + [1], part)) }
    }
}

private func checkSection(_ section: SectionContent, message: [UInt8], selector: Int) {
    if case .range(let range) = section, range.lowerBound < 0 || range.upperBound > message.count {
        fatalError("section range \(range) outside the message")
    }
    let bytes = section.bytes(of: message)
    guard bytes.count == section.count else { fatalError("section size \(section.count) but \(bytes.count) bytes") }
    let origin = selector % (bytes.count + 2)
    let length = selector % 7 == 0 ? nil : selector % 13
    let partial = section.partial(origin: origin, length: length)
    let expected = Array(bytes.dropFirst(origin).prefix(length ?? Int.max))
    guard partial.bytes(of: message) == expected else { fatalError("partial <\(origin).\(String(describing: length))> is wrong") }
}

private func fuzzFieldValues(_ value: [UInt8]) {
    let addresses = AddressParser.parse(value)
    var open = false
    for address in addresses {
        if address.isGroupStart {
            if open { fatalError("nested group start") }
            open = true
        } else if address.isGroupEnd {
            if !open { fatalError("group end without start") }
            open = false
        } else if address.mailbox == nil || address.host == nil {
            fatalError("a mailbox without local part or host would read as a group marker")
        }
    }
    if open { fatalError("unclosed group") }
    _ = DecodedEnvelope.entries(addresses)
    let type = ContentType.parse(value)
    if type.type.isEmpty || type.subtype.isEmpty { fatalError("empty media type") }
    _ = type.decodedParameters
    _ = ContentDisposition.parse(value)?.decodedParameters
    _ = ContentLanguage.parse(value)
    _ = EncodedWords.decode(value)
    _ = TransferEncoding(value)
}

private func fuzzBodies(_ body: [UInt8]) {
    if let decoded = TransferEncoding.quotedPrintable.decode(body), decoded.count > body.count {
        fatalError("quoted-printable grew the body")
    }
    if let decoded = TransferEncoding.base64.decode(body), decoded.count > body.count * 3 / 4 + 3 {
        fatalError("base64 decoded more than it could")
    }
    for name in ["utf-8", "us-ascii", "iso-8859-1", "iso-8859-7", "windows-1255", "koi8-u", "shift_jis", "iso-2022-jp", "utf-16"] {
        _ = Charset.decode(body, charset: name)
    }
}
