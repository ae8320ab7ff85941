// libFuzzer entry for MailMessage's HTML sanitizer. Compiled together with the sources of
// Sources/MailMessage into one module (see README.md).
//
// Each input is sanitized as HTML (as UTF-8 bytes, invalid sequences included) with remote
// images blocked and allowed, under small limits and the defaults. The output must hold no
// executable construct (script-bearing elements, event-handler attributes, script URLs, CSS
// escapes to code), keep every element it opens closed, respect the output limit, and be a
// fixed point: sanitizing it again changes nothing (for output without images, which are rewritten). A broken invariant calls `fatalError`,
// which libFuzzer reports as a crash.

@_cdecl("LLVMFuzzerTestOneInput")
public func htmlFuzzTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let sanitizer = HTMLSanitizer()
    let small = HTMLSanitizer.Limits(maxDepth: 8, maxOutputBytes: 2048, maxAttributesPerElement: 4, maxURLBytes: 64, maxDataURLBytes: 128, maxStyleBytes: 64, maxAttributeBytes: 64)
    for limits in [small, HTMLSanitizer.Limits()] {
        for remote in [false, true] {
            let options = HTMLSanitizer.Options(allowRemoteImages: remote, contentIDURL: { "/part/" + $0 }, limits: limits)
            let result = sanitizer.sanitize(bytes: input, options: options)
            check(result.html, limits: limits)
            let again = sanitizer.sanitize(result.html, options: options)
            // Images are rewritten on the way out (cid: mapped, remote sources parked in a data
            // attribute), so only image-free output must come back unchanged.
            // Under the small limits a value cut to its limit may be cut again: defaults only.
            if limits == HTMLSanitizer.Limits(), !result.truncated, !result.depthLimitReached, !result.html.contains("<img"),
                again.html != result.html {
                fatalError("not a fixed point:\n\(result.html)\n---\n\(again.html)")
            }
        }
    }
    return 0
}

/// Elements that must never come out; what must never be in a style; URL schemes never kept.
private let forbiddenElements: Set<String> = ["script", "iframe", "object", "embed", "form", "meta", "base", "link", "svg", "math", "style"]
private let forbiddenInStyle = ["expression(", "url(", "@import", "javascript:", "\\", "/*"]
private let forbiddenSchemes = ["javascript:", "vbscript:", "data:text", "file:"]

/// `name="value"` pairs of a tag as the sanitizer writes them (values double-quoted and escaped).
/// Bytes, not Characters: a combining mark after `>` must not hide the `>`.
private func attributes(_ tag: ArraySlice<UInt8>) -> [(name: String, value: String)] {
    var result: [(String, String)] = []
    var index = tag.firstIndex(of: 0x20) ?? tag.endIndex
    while let equals = tag[index...].firstIndex(of: UInt8(ascii: "=")) {
        let name = String(decoding: tag[index..<equals].drop { $0 == 0x20 }, as: UTF8.self)
        let quote = equals + 1
        guard quote < tag.endIndex, tag[quote] == UInt8(ascii: "\"") else { fatalError("unquoted attribute value in <\(String(decoding: tag, as: UTF8.self))>") }
        guard let valueEnd = tag[(quote + 1)...].firstIndex(of: UInt8(ascii: "\"")) else { fatalError("unterminated attribute value") }
        result.append((name, String(decoding: tag[(quote + 1)..<valueEnd], as: UTF8.self)))
        index = valueEnd + 1
    }
    return result
}

private func check(_ html: String, limits: HTMLSanitizer.Limits) {
    guard html.utf8.count <= limits.maxOutputBytes else { fatalError("output of \(html.utf8.count) bytes over \(limits.maxOutputBytes)") }
    let bytes = html.utf8.map { $0 >= 0x41 && $0 <= 0x5a ? $0 | 0x20 : $0 }
    var stack: [String] = []
    var index = 0
    while let open = bytes[index...].firstIndex(of: UInt8(ascii: "<")) {
        guard let close = bytes[open...].firstIndex(of: UInt8(ascii: ">")) else { fatalError("unterminated tag in \(html)") }
        let tag = bytes[(open + 1)..<close]
        index = close + 1
        if tag.first == UInt8(ascii: "/") {
            let name = String(decoding: tag.dropFirst(), as: UTF8.self)
            guard stack.last == name else { fatalError("</\(name)> closes \(stack.last ?? "nothing") in \(html)") }
            stack.removeLast()
            continue
        }
        let name = String(decoding: tag.prefix { $0 != 0x20 }, as: UTF8.self)
        if forbiddenElements.contains(name) { fatalError("<\(name)> in output: \(html)") }
        for (attribute, value) in attributes(tag) {
            if attribute.hasPrefix("on") { fatalError("event handler \(attribute) in \(html)") }
            if attribute == "style" {
                for word in forbiddenInStyle where value.contains(word) { fatalError("\(word) in a style: \(html)") }
            }
            if attribute == "href" || attribute == "src" {
                for scheme in forbiddenSchemes where value.hasPrefix(scheme) { fatalError("\(scheme) URL in \(html)") }
            }
        }
        if !["br", "col", "hr", "img", "wbr"].contains(name) { stack.append(name) }
    }
    guard stack.isEmpty else { fatalError("unclosed \(stack) in \(html)") }
}
