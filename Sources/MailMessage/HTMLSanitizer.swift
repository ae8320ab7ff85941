/// Makes HTML mail safe to show inside the web-mail page: an allowlist of elements and
/// attributes (`HTMLAllowlist`), of CSS in `style` attributes (`HTMLStyleFilter`) and of URL
/// schemes, applied to the tokens of `HTMLTokenizer`. The output is written only by this
/// serializer, never copied from the input: every kept tag is rebuilt from its lower-cased name
/// and allowed attributes with double-quoted, escaped values, every text is escaped, and every
/// opened element is closed. So whatever the browser's parser makes of the input, it can only
/// see allowed elements and attributes in the output.
///
/// Links (`a href`) keep `http`, `https` and `mailto` URLs and open in a new browsing context
/// without opener or referrer. Images keep `cid:` URLs rewritten by
/// `Options.contentIDURL`, `data:` URLs of PNG, GIF, JPEG and WebP, and `http(s)` URLs only when
/// `Options.allowRemoteImages`; otherwise the URL moves to `data-remote-src` for a "show images"
/// button. Relative URLs are dropped: they would point into the web-mail itself.
///
/// Input is hostile: one pass, nesting and output bounded by `Limits` (what a limit cuts is
/// reported in `SanitizedHTML`), no trap on any input.
public struct HTMLSanitizer: Sendable {
    public struct Limits: Sendable, Hashable {
        /// Open allowed elements at once; deeper start tags are dropped (their text is kept).
        public var maxDepth: Int
        /// Bytes of output, end tags of open elements included; the rest of the input is not
        /// shown (`SanitizedHTML.truncated`).
        public var maxOutputBytes: Int
        /// Attributes read per tag; more are ignored.
        public var maxAttributesPerElement: Int
        /// `href` and remote `src` URLs longer than this are dropped.
        public var maxURLBytes: Int
        /// `data:` image URLs longer than this are dropped (so are longer attribute values of
        /// any kind).
        public var maxDataURLBytes: Int
        /// `style` attributes longer than this are dropped; other plain attribute values are
        /// dropped past `maxAttributeBytes`.
        public var maxStyleBytes: Int
        public var maxAttributeBytes: Int

        public init(
            maxDepth: Int = 128, maxOutputBytes: Int = 8 << 20, maxAttributesPerElement: Int = 64, maxURLBytes: Int = 8 * 1024,
            maxDataURLBytes: Int = 1 << 20, maxStyleBytes: Int = 8 * 1024, maxAttributeBytes: Int = 1024
        ) {
            self.maxDepth = maxDepth
            self.maxOutputBytes = maxOutputBytes
            self.maxAttributesPerElement = maxAttributesPerElement
            self.maxURLBytes = maxURLBytes
            self.maxDataURLBytes = maxDataURLBytes
            self.maxStyleBytes = maxStyleBytes
            self.maxAttributeBytes = maxAttributeBytes
        }
    }

    public struct Options: Sendable {
        /// Keep `http`/`https` image URLs in `src` (the user asked to show images).
        public var allowRemoteImages: Bool
        /// The URL an inline image `cid:<content-id>` is served from, given the Content-ID
        /// without angle brackets and with RFC 2392 %-escapes undone, e.g.
        /// `/message/…/part/2`; nil drops the image. Without a closure every `cid:` image is
        /// dropped (and still listed in `SanitizedHTML.contentIDs`).
        public var contentIDURL: (@Sendable (String) -> String?)?
        /// The `src` of a blocked remote image (e.g. a small local placeholder); nil leaves the
        /// image without `src`.
        public var remoteImagePlaceholder: String?
        public var limits: Limits

        public init(
            allowRemoteImages: Bool = false, contentIDURL: (@Sendable (String) -> String?)? = nil,
            remoteImagePlaceholder: String? = nil, limits: Limits = Limits()
        ) {
            self.allowRemoteImages = allowRemoteImages
            self.contentIDURL = contentIDURL
            self.remoteImagePlaceholder = remoteImagePlaceholder
            self.limits = limits
        }
    }

    /// The attribute a blocked remote image keeps its URL in.
    public static let remoteSourceAttribute = "data-remote-src"
    /// What every kept link gets, whatever the message said.
    public static let linkRel = "noopener noreferrer nofollow"

    public init() {}

    public func sanitize(_ html: String, options: Options = Options()) -> SanitizedHTML {
        var run = HTMLSanitizerRun(options: options, inputBytes: html.utf8.count)
        run.process(HTMLTokenizer(Array(html.utf8), limits: Self.tokenizerLimits(options.limits)))
        return run.finish()
    }

    /// Any bytes, read as UTF-8 with invalid sequences replaced by U+FFFD.
    public func sanitize(bytes: [UInt8], options: Options = Options()) -> SanitizedHTML {
        sanitize(String(decoding: bytes, as: UTF8.self), options: options)
    }

    static func tokenizerLimits(_ limits: Limits) -> HTMLTokenizerLimits {
        var tokenizer = HTMLTokenizerLimits()
        tokenizer.maxAttributes = max(0, limits.maxAttributesPerElement)
        tokenizer.maxAttributeValueBytes = max(limits.maxDataURLBytes, limits.maxURLBytes, limits.maxStyleBytes, limits.maxAttributeBytes)
        return tokenizer
    }
}

/// Sanitized HTML and what the web-mail needs to know about it.
public struct SanitizedHTML: Sendable, Hashable {
    /// A fragment to place inside an element of the page (no `html`, `head` or `body`).
    public var html: String
    /// At least one `http(s)` image was kept out of `src` (show a "show images" button).
    public var remoteImagesBlocked: Bool
    /// The `http(s)` image URLs, kept or blocked, first occurrence order, no duplicates.
    public var remoteImageURLs: [String]
    /// The Content-IDs of `cid:` images (without brackets, %-escapes undone), in order, no
    /// duplicates, whether or not `contentIDURL` mapped them: attachments referenced here are
    /// inline images, not attachments to list.
    public var contentIDs: [String]
    /// The URLs of the kept links (`http`, `https`, `mailto`), in order, no duplicates.
    public var links: [String]
    /// The output limit was reached: the end of the message is missing.
    public var truncated: Bool
    /// Elements nested deeper than `maxDepth` lost their tags (not their text).
    public var depthLimitReached: Bool
}

/// One sanitization: the open-element stack, the output and the facts collected.
struct HTMLSanitizerRun {
    private let options: HTMLSanitizer.Options
    private let limits: HTMLSanitizer.Limits
    private var output: [UInt8] = []
    /// Bytes the end tags of the open elements will take: kept free so closing always fits.
    private var reserved = 0
    private var stack: [HTMLElementRule] = []
    private var openCount: [String: Int] = [:]
    /// Allowed start tags dropped for depth that have not met an end tag yet.
    private var overflow = 0
    /// Inside an element dropped with its content: its name and how many of it are open.
    private var skipping: (name: String, depth: Int)?
    private var result = SanitizedHTML(
        html: "", remoteImagesBlocked: false, remoteImageURLs: [], contentIDs: [], links: [], truncated: false, depthLimitReached: false)
    private var seenRemoteImages: Set<String> = []
    private var seenContentIDs: Set<String> = []
    private var seenLinks: Set<String> = []

    init(options: HTMLSanitizer.Options, inputBytes: Int) {
        self.options = options
        self.limits = options.limits
        output.reserveCapacity(min(max(0, limits.maxOutputBytes), inputBytes + inputBytes / 8 + 64))
    }

    mutating func process(_ tokens: HTMLTokenizer) {
        for token in tokens {
            if let skip = skipping {
                switch token {
                case .startTag(let tag) where tag.name == skip.name:
                    let selfClosed = tag.selfClosing && (tag.name == "svg" || tag.name == "math")
                    if !selfClosed { skipping = (skip.name, skip.depth + 1) }
                case .endTag(let name) where name == skip.name:
                    skipping = skip.depth > 1 ? (skip.name, skip.depth - 1) : nil
                default:
                    break
                }
                continue
            }
            switch token {
            case .text(let text): appendText(text)
            case .startTag(let tag): startTag(tag)
            case .endTag(let name): endTag(name)
            case .comment, .doctype, .cdata: break
            }
            if result.truncated { break }
        }
    }

    mutating func finish() -> SanitizedHTML {
        closeElements(downTo: 0)
        result.html = String(decoding: output, as: UTF8.self)
        return result
    }

    // MARK: - Tree

    private mutating func startTag(_ tag: HTMLStartTag) {
        guard let rule = HTMLAllowlist.rules[tag.name] else {
            if HTMLAllowlist.droppedWithContent.contains(tag.name) {
                // §13.1.2.1: the self-closing flag counts only on foreign (SVG/MathML) elements.
                if !(tag.selfClosing && (tag.name == "svg" || tag.name == "math")) { skipping = (tag.name, 1) }
            }
            return
        }
        let name = rule.name
        if rule.traits.contains(.tablePart), openCount["table", default: 0] == 0 { return }
        closeImpliedElements(before: rule)
        var attributes: [(name: String, value: [UInt8])] = []
        guard collectAttributes(of: tag, element: name, allowed: rule.attributes, into: &attributes) else { return }
        let isVoid = rule.traits.contains(.void)
        if !isVoid, stack.count >= limits.maxDepth {
            overflow += 1
            result.depthLimitReached = true
            return
        }
        var bytes: [UInt8] = [UInt8(ascii: "<")]
        bytes.append(contentsOf: name.utf8)
        for attribute in attributes {
            bytes.append(UInt8(ascii: " "))
            bytes.append(contentsOf: attribute.name.utf8)
            bytes.append(contentsOf: "=\"".utf8)
            Self.escape(attribute.value, inAttribute: true, into: &bytes)
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: ">"))
        let closing = isVoid ? 0 : name.utf8.count + 3
        guard output.count + bytes.count + closing + reserved <= limits.maxOutputBytes else {
            result.truncated = true
            return
        }
        output += bytes
        if !isVoid {
            stack.append(rule)
            openCount[name, default: 0] += 1
            reserved += closing
        }
    }

    private mutating func endTag(_ rawName: String) {
        guard let rule = HTMLAllowlist.rules[rawName] else { return }
        let name = rule.name
        if name == "br" {
            // §13.2.6.4.7: `</br>` is read as `<br>`.
            startTag(HTMLStartTag(name: "br", attributes: [], selfClosing: false))
            return
        }
        guard !rule.traits.contains(.void) else { return }
        if overflow > 0 {
            overflow -= 1
            return
        }
        guard openCount[name, default: 0] > 0, let index = openIndex(of: name, stoppingAt: Self.endTagBoundary(for: name)) else { return }
        closeElements(downTo: index)
    }

    /// What a search for an open `name` may not cross (§13.2.4.2 scopes, simplified).
    private static func endTagBoundary(for name: String) -> (HTMLElementRule) -> Bool {
        switch name {
        case "table": { _ in false }
        case "td", "th", "tr", "tbody", "thead", "tfoot", "caption", "colgroup": { $0.name == "table" }
        case "li": { $0.traits.contains(.scopeBoundary) || $0.name == "ul" || $0.name == "ol" }
        case "dd", "dt": { $0.traits.contains(.scopeBoundary) || $0.name == "dl" }
        default: { $0.traits.contains(.scopeBoundary) }
        }
    }

    /// Index in `stack` of the innermost open `name`, searching outwards and stopping at a
    /// boundary element.
    private func openIndex(of name: String, stoppingAt isBoundary: (HTMLElementRule) -> Bool) -> Int? {
        var i = stack.count - 1
        while i >= 0 {
            if stack[i].name == name { return i }
            if isBoundary(stack[i]) { return nil }
            i -= 1
        }
        return nil
    }

    /// The end tags a browser would imply before this start tag (§13.2.6.4.7, the common cases):
    /// a block closes an open `p`, a heading closes a heading, `li`/`dd`/`dt` close the previous
    /// item, rows and cells close the previous row or cell, `a` closes an open `a`.
    private mutating func closeImpliedElements(before rule: HTMLElementRule) {
        if rule.traits.contains(.closesParagraph), openCount["p", default: 0] > 0,
            let p = openIndex(of: "p", stoppingAt: { $0.traits.contains(.scopeBoundary) })
        {
            closeElements(downTo: p)
        }
        switch rule.name {
        case "h1", "h2", "h3", "h4", "h5", "h6":
            if let top = stack.last, top.traits.contains(.heading) { closeElements(downTo: stack.count - 1) }
        case "li":
            closeListItem(["li"], list: ["ul", "ol"])
        case "dd", "dt":
            closeListItem(["dd", "dt"], list: ["dl"])
        case "a":
            if openCount["a", default: 0] > 0, let a = openIndex(of: "a", stoppingAt: { $0.traits.contains(.scopeBoundary) }) {
                closeElements(downTo: a)
            }
        case "td", "th":
            closeTableContent(through: ["td", "th"], stoppingAt: ["tr", "table", "tbody", "thead", "tfoot"])
        case "tr":
            closeTableContent(through: ["tr", "td", "th"], stoppingAt: ["table", "tbody", "thead", "tfoot"])
        case "tbody", "thead", "tfoot", "caption", "colgroup":
            closeTableContent(through: ["tr", "td", "th", "tbody", "thead", "tfoot", "caption", "colgroup"], stoppingAt: ["table"])
        default:
            break
        }
    }

    private mutating func closeListItem(_ items: [String], list: [String]) {
        var i = stack.count - 1
        while i >= 0 {
            let element = stack[i]
            if items.contains(element.name) {
                closeElements(downTo: i)
                return
            }
            if list.contains(element.name) { return }
            if element.traits.contains(.special), !["address", "div", "p"].contains(element.name) { return }
            i -= 1
        }
    }

    /// Closes the outermost element of `targets` above the innermost `stoppingAt` element.
    private mutating func closeTableContent(through targets: [String], stoppingAt: [String]) {
        var i = stack.count - 1
        var outermost: Int?
        while i >= 0, !stoppingAt.contains(stack[i].name) {
            if targets.contains(stack[i].name) { outermost = i }
            i -= 1
        }
        if let outermost { closeElements(downTo: outermost) }
    }

    /// Writes the end tags of `stack[index...]` (their room is reserved).
    private mutating func closeElements(downTo index: Int) {
        while stack.count > index, let name = stack.popLast()?.name {
            output.append(contentsOf: "</".utf8)
            output.append(contentsOf: name.utf8)
            output.append(UInt8(ascii: ">"))
            reserved -= name.utf8.count + 3
            openCount[name, default: 1] -= 1
        }
    }

    // MARK: - Attributes

    /// The kept attributes of an allowed element, in order (`src` first, added ones last).
    /// False when the element goes: an image without a usable source.
    private mutating func collectAttributes(
        of tag: HTMLStartTag, element: String, allowed: Set<String>, into attributes: inout [(name: String, value: [UInt8])]
    ) -> Bool {
        var link: [UInt8]?
        if element == "img" {
            guard let source = tag.attribute("src"), !source.truncated, imageSource(source.value, into: &attributes) else { return false }
        } else if element == "a", let href = tag.attribute("href"), !href.truncated {
            link = linkURL(href.value)
        }
        for attribute in tag.attributes where !attribute.truncated {
            let name = attribute.name
            if name == "src" || name == "href" { continue }
            if name == "style" {
                if let style = HTMLStyleFilter.sanitize(attribute.value, maxBytes: limits.maxStyleBytes) {
                    attributes.append((name, style))
                }
            } else if allowed.contains(name) || HTMLAllowlist.globalAttributes.contains(name), attribute.value.count <= limits.maxAttributeBytes {
                attributes.append((name, attribute.value))
            }
        }
        if let link {
            attributes.insert(("href", link), at: 0)
            attributes.append(("rel", Array(HTMLSanitizer.linkRel.utf8)))
            attributes.append(("target", Array("_blank".utf8)))
        }
        return true
    }

    /// A link target: an absolute `http`, `https` or `mailto` URL, else nil.
    private mutating func linkURL(_ value: [UInt8]) -> [UInt8]? {
        let url = HTMLURL.cleaned(value)
        guard url.count <= limits.maxURLBytes, let scheme = HTMLURL.scheme(of: url) else { return nil }
        switch scheme {
        case "http", "https": guard HTMLURL.hasAuthority(url, scheme: scheme) else { return nil }
        case "mailto": break
        default: return nil
        }
        let text = String(decoding: url, as: UTF8.self)
        if seenLinks.insert(text).inserted { result.links.append(text) }
        return url
    }

    /// Appends the `src` (or its blocked form) of an image. False when the source is not one
    /// the web-mail may load.
    private mutating func imageSource(_ value: [UInt8], into attributes: inout [(name: String, value: [UInt8])]) -> Bool {
        let url = HTMLURL.cleaned(value)
        switch HTMLURL.scheme(of: url) {
        case "cid":
            let contentID = HTMLURL.contentID(url)
            guard !contentID.isEmpty, contentID.utf8.count <= limits.maxURLBytes else { return false }
            if seenContentIDs.insert(contentID).inserted { result.contentIDs.append(contentID) }
            guard let mapped = options.contentIDURL?(contentID) else { return false }
            attributes.append(("src", Array(mapped.utf8)))
            return true
        case let scheme? where scheme == "http" || scheme == "https":
            guard url.count <= limits.maxURLBytes, HTMLURL.hasAuthority(url, scheme: scheme) else { return false }
            let text = String(decoding: url, as: UTF8.self)
            if seenRemoteImages.insert(text).inserted { result.remoteImageURLs.append(text) }
            if options.allowRemoteImages {
                attributes.append(("src", url))
                attributes.append(("referrerpolicy", Array("no-referrer".utf8)))
            } else {
                result.remoteImagesBlocked = true
                if let placeholder = options.remoteImagePlaceholder { attributes.append(("src", Array(placeholder.utf8))) }
                attributes.append((HTMLSanitizer.remoteSourceAttribute, url))
            }
            return true
        case "data":
            guard url.count <= limits.maxDataURLBytes, HTMLURL.isAllowedDataImage(url) else { return false }
            attributes.append(("src", url))
            return true
        default:
            return false
        }
    }

    // MARK: - Output

    private mutating func appendText(_ text: [UInt8]) {
        // Escaping at most quintuples a byte (`&` → `&amp;`): when even that fits, no checks.
        if output.count + reserved + text.count * 5 <= limits.maxOutputBytes {
            Self.escape(text, inAttribute: false, into: &output)
            return
        }
        var i = 0
        while i < text.count {
            let c = text[i]
            let length: Int
            switch c {
            case UInt8(ascii: "&"): length = 5
            case UInt8(ascii: "<"), UInt8(ascii: ">"): length = 4
            case 0xF0...: length = 4
            case 0xE0...: length = 3
            case 0xC0...: length = 2
            default: length = 1
            }
            guard output.count + length + reserved <= limits.maxOutputBytes else {
                result.truncated = true
                return
            }
            if c < 0x80 {
                Self.escape(CollectionOfOne(c), inAttribute: false, into: &output)
                i += 1
            } else {
                // A whole UTF-8 sequence or nothing, so the output never ends inside one.
                let end = min(i + length, text.count)
                output += text[i..<end]
                i = end
            }
        }
    }

    /// Text: `&`, `<`, `>`. Attribute values (always double-quoted): also both quotes and the
    /// backtick (old engines took it for a quote).
    static func escape<C: Collection<UInt8>>(_ bytes: C, inAttribute: Bool, into out: inout [UInt8]) {
        for c in bytes {
            switch c {
            case UInt8(ascii: "&"): out.append(contentsOf: "&amp;".utf8)
            case UInt8(ascii: "<"): out.append(contentsOf: "&lt;".utf8)
            case UInt8(ascii: ">"): out.append(contentsOf: "&gt;".utf8)
            case UInt8(ascii: "\"") where inAttribute: out.append(contentsOf: "&quot;".utf8)
            case UInt8(ascii: "'") where inAttribute: out.append(contentsOf: "&#39;".utf8)
            case UInt8(ascii: "`") where inAttribute: out.append(contentsOf: "&#96;".utf8)
            default: out.append(c)
            }
        }
    }
}

/// URL rules for `href` and `src` (WHATWG URL Standard §4.4 for what a browser ignores).
enum HTMLURL {
    /// Without leading and trailing C0 controls and spaces, and with every ASCII tab and
    /// newline removed, as the URL parser does before anything else: `jav&#x09;ascript:` is
    /// `javascript:` to a browser, so it must be to the scheme check too.
    static func cleaned(_ value: [UInt8]) -> [UInt8] {
        var start = 0
        var end = value.count
        while start < end, value[start] <= 0x20 { start += 1 }
        while end > start, value[end - 1] <= 0x20 { end -= 1 }
        return value[start..<end].filter { $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
    }

    /// The lower-cased scheme (§4.4 scheme state: an ASCII letter, then letters, digits, `+`,
    /// `-`, `.`, up to `:`), or nil for a relative URL.
    static func scheme(of url: [UInt8]) -> String? {
        guard let first = url.first, first.isHTMLLetter else { return nil }
        for (i, c) in url.enumerated() {
            if c == UInt8(ascii: ":") { return String(decoding: url[..<i].map(\.htmlLowercased), as: UTF8.self) }
            guard c.isHTMLAlphanumeric || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".") else { return nil }
        }
        return nil
    }

    /// `scheme://`: without the two slashes, `https:/x` and `https:x` are relative to a page
    /// served over the same scheme (§4.4 special relative or authority state), so they would
    /// point into the web-mail itself.
    static func hasAuthority(_ url: [UInt8], scheme: String) -> Bool {
        let colon = scheme.utf8.count
        return url.count > colon + 2 && url[colon + 1] == UInt8(ascii: "/") && url[colon + 2] == UInt8(ascii: "/")
    }

    /// RFC 2392: `cid:` then the Content-ID without brackets, %-escaped.
    static func contentID(_ url: [UInt8]) -> String {
        var bytes: [UInt8] = []
        var i = 4
        while i < url.count {
            if url[i] == UInt8(ascii: "%"), i + 2 < url.count, let high = url[i + 1].htmlDigitValue(hex: true),
                let low = url[i + 2].htmlDigitValue(hex: true)
            {
                bytes.append(UInt8(high * 16 + low))
                i += 3
            } else {
                bytes.append(url[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static let allowedDataImageTypes: Set<String> = ["image/png", "image/gif", "image/jpeg", "image/jpg", "image/webp"]

    /// RFC 2397 `data:<type>[;param]*;base64,<base64>` with one of the raster image types and
    /// nothing but base64 in the data (no SVG: it can carry script).
    static func isAllowedDataImage(_ url: [UInt8]) -> Bool {
        let prefix = "data:".utf8.count
        guard url.count > prefix, let comma = url[prefix...].firstIndex(of: UInt8(ascii: ",")) else { return false }
        let header = String(decoding: url[prefix..<comma].map(\.htmlLowercased), as: UTF8.self)
        let parameters = header.split(separator: ";", omittingEmptySubsequences: false)
        guard parameters.count >= 2, parameters.last == "base64", allowedDataImageTypes.contains(String(parameters[0])) else { return false }
        for parameter in parameters.dropFirst().dropLast() {
            guard parameter.utf8.allSatisfy({ $0.isHTMLAlphanumeric || "=-._".utf8.contains($0) }) else { return false }
        }
        return url[(comma + 1)...].allSatisfy { c in
            switch c {
            case UInt8(ascii: "+"), UInt8(ascii: "/"), UInt8(ascii: "="), UInt8(ascii: " "): true
            default: c.isHTMLAlphanumeric
            }
        }
    }
}
