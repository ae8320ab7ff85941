/// Domain name handling shared by SPF, DKIM and DMARC: ASCII only (A-labels), compared
/// lowercase without a trailing dot.
enum DomainName {
    /// `name` lowercased without one trailing dot, when it is a syntactically usable DNS
    /// name: 1–63 octets per label, at most 253 in all, letters, digits, "-" and "_" (which
    /// `_domainkey`, `_dmarc` and SPF's `_spf` names need). `minLabels` 2 refuses a bare TLD.
    static func normalized(_ name: some StringProtocol, minLabels: Int = 1) -> String? {
        var text = Substring(name)
        if text.hasSuffix(".") { text = text.dropLast() }
        guard !text.isEmpty, text.utf8.count <= 253 else { return nil }
        var labels = 0
        for label in text.utf8.split(separator: 0x2e, omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.count <= 63,
                label.allSatisfy({ TagList.isAlpha($0) || TagList.isDigit($0) || $0 == 0x2d || $0 == 0x5f })
            else { return nil }
            labels += 1
        }
        guard labels >= minLabels else { return nil }
        return text.lowercased()
    }

    /// True when `name` is `parent` or below it (both already normalized).
    static func isSame(_ name: String, orSubdomainOf parent: String) -> Bool {
        name == parent || name.hasSuffix("." + parent)
    }
}

/// RFC 7489 §3.2 organizational domain, with a small built-in public-suffix table instead of
/// the full Public Suffix List.
///
/// The organizational domain is the last two labels, or the last three when the last two are
/// one of the well-known multi-label registry suffixes below (`co.uk`, `com.au`, …).
/// Limits, knowingly accepted: private suffixes (`github.io`, `blogspot.com`, cloud hosting
/// zones) are not known, so two tenants of one such zone count as one organization for
/// relaxed alignment; registry suffixes missing from the table (e.g. less common second-level
/// zones) make every registrant below them share one organizational domain. The consequence is
/// a DMARC "pass" by relaxed alignment that the full list would refuse, never a false "fail".
public enum OrganizationalDomain {
    /// Two-label public suffixes under which registrations happen at the third level.
    public static let multiLabelSuffixes: Set<String> = [
        "co.uk", "org.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk", "ac.uk", "gov.uk", "sch.uk", "nhs.uk", "police.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au", "asn.au", "id.au",
        "co.nz", "net.nz", "org.nz", "ac.nz", "govt.nz", "school.nz",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp", "ad.jp", "ed.jp", "gr.jp", "lg.jp",
        "co.kr", "or.kr", "ne.kr", "ac.kr", "go.kr",
        "co.za", "org.za", "net.za", "gov.za", "ac.za",
        "co.in", "net.in", "org.in", "firm.in", "gen.in", "ind.in", "ac.in", "gov.in",
        "co.il", "org.il", "net.il", "ac.il", "gov.il",
        "co.id", "or.id", "ac.id", "go.id", "web.id",
        "co.th", "in.th", "ac.th", "go.th", "or.th",
        "com.br", "net.br", "org.br", "gov.br", "edu.br",
        "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "ac.cn",
        "com.tw", "net.tw", "org.tw", "edu.tw", "gov.tw",
        "com.hk", "net.hk", "org.hk", "edu.hk", "gov.hk",
        "com.sg", "net.sg", "org.sg", "edu.sg", "gov.sg",
        "com.my", "net.my", "org.my", "edu.my", "gov.my",
        "com.mx", "net.mx", "org.mx", "gob.mx", "edu.mx",
        "com.ar", "net.ar", "org.ar", "gob.ar", "edu.ar",
        "com.tr", "net.tr", "org.tr", "gov.tr", "edu.tr",
        "com.ua", "net.ua", "org.ua", "gov.ua", "edu.ua",
        "com.pl", "net.pl", "org.pl", "gov.pl", "edu.pl",
        "com.ru", "net.ru", "org.ru",
        "com.es", "org.es", "nom.es", "gob.es", "edu.es",
        "com.pt", "org.pt", "gov.pt", "edu.pt",
        "co.at", "or.at", "ac.at", "gv.at",
        "com.vn", "net.vn", "org.vn", "gov.vn", "edu.vn",
        "com.ph", "net.ph", "org.ph", "gov.ph", "edu.ph",
        "com.pk", "net.pk", "org.pk", "gov.pk", "edu.pk",
        "com.eg", "org.eg", "gov.eg", "edu.eg",
        "com.sa", "net.sa", "org.sa", "gov.sa", "edu.sa",
        "com.co", "net.co", "org.co", "gov.co", "edu.co",
        "com.pe", "net.pe", "org.pe", "gob.pe", "edu.pe",
        "com.ng", "org.ng", "gov.ng", "edu.ng",
        "co.ke", "or.ke", "ac.ke", "go.ke",
    ]

    /// The organizational domain of `domain` (normalized: lowercase, no trailing dot).
    public static func of(_ domain: String) -> String {
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count > 2 else { return domain }
        let lastTwo = labels.suffix(2).joined(separator: ".")
        let keep = multiLabelSuffixes.contains(lastTwo) ? 3 : 2
        return labels.suffix(keep).joined(separator: ".")
    }
}
