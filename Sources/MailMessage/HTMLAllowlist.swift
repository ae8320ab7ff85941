/// What `HTMLSanitizer` keeps of HTML mail, and the few tree-construction facts (HTML Living
/// Standard §13.2.6) it uses to keep its output close to what a browser would build.
enum HTMLAllowlist {
    /// Attributes kept on every allowed element. No `id`, `name` or `class`: in the web-mail page
    /// they could clobber the page's DOM names or borrow its styles to imitate its interface.
    static let globalAttributes: Set<String> = ["title", "dir", "lang", "style"]

    private static let cellAttributes: Set<String> = ["width", "height", "colspan", "rowspan", "bgcolor", "align", "valign", "nowrap", "scope", "abbr"]
    private static let rowAttributes: Set<String> = ["align", "valign", "bgcolor", "height"]
    private static let columnAttributes: Set<String> = ["span", "width", "align", "valign"]
    private static let alignOnly: Set<String> = ["align"]

    /// Allowed elements and their attributes beyond the global ones. `a href` and `img src`
    /// are listed but go through the URL rules of `HTMLSanitizer`.
    static let elements: [String: Set<String>] = [
        "a": ["href"],
        "abbr": [], "acronym": [], "address": [], "article": [], "aside": [],
        "b": [], "bdi": [], "bdo": [], "big": [], "blockquote": ["type"], "br": ["clear"],
        "caption": alignOnly, "center": [], "cite": [], "code": [],
        "col": columnAttributes, "colgroup": columnAttributes,
        "dd": [], "del": ["datetime"], "dfn": [], "div": alignOnly, "dl": [], "dt": [],
        "em": [], "figcaption": [], "figure": [], "font": ["color", "face", "size"], "footer": [],
        "h1": alignOnly, "h2": alignOnly, "h3": alignOnly, "h4": alignOnly, "h5": alignOnly, "h6": alignOnly,
        "header": [], "hr": ["align", "width", "size", "noshade", "color"],
        "i": [], "img": ["src", "alt", "width", "height", "border", "align", "hspace", "vspace"], "ins": ["datetime"],
        "kbd": [], "li": ["value", "type"], "main": [], "mark": [], "nav": [],
        "ol": ["start", "type", "reversed"], "p": alignOnly, "pre": [], "q": [],
        "s": [], "samp": [], "section": [], "small": [], "span": [], "strike": [], "strong": [], "sub": [], "sup": [],
        "table": ["width", "height", "border", "cellpadding", "cellspacing", "bgcolor", "align", "frame", "rules"],
        "tbody": rowAttributes, "td": cellAttributes, "tfoot": rowAttributes, "th": cellAttributes,
        "thead": rowAttributes, "time": ["datetime"], "tr": rowAttributes, "tt": [],
        "u": [], "ul": ["type"], "var": [], "wbr": [],
    ]

    /// Allowed elements without content or end tag (§13.1.2).
    static let voidElements: Set<String> = ["br", "col", "hr", "img", "wbr"]

    /// Dropped together with everything inside them: scripts and styles, frames and plug-ins,
    /// forms' option lists and text areas, media, templates, and SVG/MathML (whose content
    /// follows other parsing rules). Every other element that is not allowed (`form`, `body`,
    /// `marquee`, `o:p` …) loses only its tags; its content is sanitized as usual. Void
    /// elements (`meta`, `link`, `base`, `embed`, `input`, `param` …) have no content to drop.
    static let droppedWithContent: Set<String> = [
        "script", "style", "title", "textarea", "select", "datalist", "iframe", "frameset", "object", "applet",
        "noembed", "noframes", "noscript", "template", "svg", "math", "audio", "video", "portal", "fencedframe",
    ]

    /// Renamed as browsers do (§13.2.6.4.7: `image` is `img`) or to keep their text shown
    /// the way it was meant (`xmp`, `listing`, `plaintext` are preformatted text).
    static let renamed: [String: String] = ["image": "img", "xmp": "pre", "listing": "pre", "plaintext": "pre"]

    /// Table-structure elements: outside a `table` the tree builder ignores their tags (§13.2.6.4.7).
    static let tableParts: Set<String> = ["caption", "colgroup", "col", "tbody", "thead", "tfoot", "tr", "td", "th"]
    static let tableSections: Set<String> = ["tbody", "thead", "tfoot"]

    /// Start tags that close an open `p` (§13.2.6.4.7, "close a p element").
    static let closesParagraph: Set<String> = [
        "address", "article", "aside", "blockquote", "center", "div", "dl", "figcaption", "figure", "footer", "header",
        "main", "nav", "ol", "p", "section", "ul", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr", "li", "dd", "dt",
    ]

    static let headings: Set<String> = ["h1", "h2", "h3", "h4", "h5", "h6"]

    /// The "special" elements of §13.2.4.2 that are allowed here: searching for an open `li`,
    /// `dd` or `dt` stops at them (but not at `address`, `div` or `p`).
    static let special: Set<String> = [
        "address", "article", "aside", "blockquote", "caption", "center", "col", "colgroup", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "img", "li", "main", "nav",
        "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
    ]

    /// §13.2.4.2 "has an element in scope": a search for an open element stops at these.
    static let scopeBoundaries: Set<String> = ["table", "td", "th", "caption"]
}

/// What the sanitizer needs to know of one allowed element, found with one lookup per tag.
struct HTMLElementRule: Sendable {
    struct Traits: OptionSet, Sendable {
        let rawValue: UInt8
        static let void = Traits(rawValue: 1 << 0)
        static let closesParagraph = Traits(rawValue: 1 << 1)
        static let tablePart = Traits(rawValue: 1 << 2)
        static let special = Traits(rawValue: 1 << 3)
        static let heading = Traits(rawValue: 1 << 4)
        static let scopeBoundary = Traits(rawValue: 1 << 5)
    }

    /// The name written out (`pre` for `xmp`).
    let name: String
    /// Beyond `HTMLAllowlist.globalAttributes`.
    let attributes: Set<String>
    let traits: Traits
}

extension HTMLAllowlist {
    /// Every allowed element, and every name renamed to one, with its rule.
    static let rules: [String: HTMLElementRule] = {
        var rules: [String: HTMLElementRule] = [:]
        for (name, attributes) in elements {
            var traits: HTMLElementRule.Traits = []
            if voidElements.contains(name) { traits.insert(.void) }
            if closesParagraph.contains(name) { traits.insert(.closesParagraph) }
            if tableParts.contains(name) { traits.insert(.tablePart) }
            if special.contains(name) { traits.insert(.special) }
            if headings.contains(name) { traits.insert(.heading) }
            if scopeBoundaries.contains(name) { traits.insert(.scopeBoundary) }
            rules[name] = HTMLElementRule(name: name, attributes: attributes, traits: traits)
        }
        for (alias, name) in renamed { rules[alias] = rules[name] }
        return rules
    }()
}
