/// Typed responses to bytes (RFC 9051 §7 and §9). Strings go out quoted when that is exact and
/// as literals otherwise (CR, LF, NUL, 8-bit data without UTF8=ACCEPT); protocol tokens that
/// come from elsewhere (capabilities, flags, codes) are stripped of anything that could break
/// the line, so no value can inject a response.
public struct IMAPResponseEncoder: Sendable {
    /// RFC 6855 §3: with UTF8=ACCEPT enabled, UTF-8 may be sent in quoted strings.
    public var utf8Accept: Bool

    public init(utf8Accept: Bool = false) {
        self.utf8Accept = utf8Accept
    }

    public func encode(_ response: IMAPResponse) -> [UInt8] {
        var buffer: [UInt8] = []
        encode(response, into: &buffer)
        return buffer
    }

    public func encode(_ response: IMAPResponse, into buffer: inout [UInt8]) {
        var writer = IMAPWriter(buffer: buffer, utf8Accept: utf8Accept)
        buffer = []
        writer.response(response)
        buffer = writer.buffer
    }
}

struct IMAPWriter {
    var buffer: [UInt8]
    let utf8Accept: Bool

    // MARK: Primitives

    mutating func raw(_ text: String) {
        buffer.append(contentsOf: text.utf8)
    }

    mutating func space() {
        buffer.append(IMAPCharacter.space)
    }

    mutating func number(_ value: some BinaryInteger) {
        raw(String(value))
    }

    mutating func crlf() {
        buffer.append(IMAPCharacter.cr)
        buffer.append(IMAPCharacter.lf)
    }

    /// Human text: controls become spaces so the line cannot be broken.
    mutating func text(_ text: String) {
        for byte in text.utf8 {
            buffer.append(IMAPCharacter.isCTL(byte) ? IMAPCharacter.space : byte)
        }
    }

    /// An atom from elsewhere: only ATOM-CHARs are kept (capabilities, resource names...).
    mutating func atom(_ text: String) {
        let bytes = text.utf8.filter(IMAPCharacter.isAtomChar)
        buffer.append(contentsOf: bytes.isEmpty ? Array("NIL".utf8) : bytes)
    }

    /// A flag or mailbox attribute: optional backslash, then an atom (or `\*`).
    mutating func flag(_ text: String) {
        var bytes = Array(text.utf8)
        if bytes == Array("\\*".utf8) {
            buffer.append(contentsOf: bytes)
            return
        }
        let system = bytes.first == IMAPCharacter.backslash
        if system { bytes.removeFirst() }
        bytes = bytes.filter(IMAPCharacter.isAtomChar)
        guard !bytes.isEmpty else { return }
        if system { buffer.append(IMAPCharacter.backslash) }
        buffer.append(contentsOf: bytes)
    }

    mutating func flagList(_ flags: [IMAPFlag]) {
        buffer.append(UInt8(ascii: "("))
        var first = true
        for flag in flags {
            let before = buffer.count
            if !first { space() }
            let afterSpace = buffer.count
            self.flag(flag.rawValue)
            if buffer.count == afterSpace {
                buffer.removeSubrange(before...)
            } else {
                first = false
            }
        }
        buffer.append(UInt8(ascii: ")"))
    }

    /// Whether `bytes` can go out as a quoted string unchanged.
    func isQuotable(_ bytes: some Collection<UInt8>) -> Bool {
        var hasEightBit = false
        for byte in bytes {
            if byte >= 0x80 {
                hasEightBit = true
            } else if !IMAPCharacter.isTextChar(byte) {
                return false
            }
        }
        guard hasEightBit else { return true }
        return utf8Accept && String(validating: bytes, as: UTF8.self) != nil
    }

    /// `string`: quoted if exact, else a literal.
    mutating func string(_ bytes: some Collection<UInt8>) {
        if isQuotable(bytes) {
            buffer.append(IMAPCharacter.dquote)
            for byte in bytes {
                if byte == IMAPCharacter.dquote || byte == IMAPCharacter.backslash {
                    buffer.append(IMAPCharacter.backslash)
                }
                buffer.append(byte)
            }
            buffer.append(IMAPCharacter.dquote)
        } else {
            literal(bytes, binary: false)
        }
    }

    mutating func string(_ text: String) {
        string(Array(text.utf8))
    }

    mutating func nstring(_ bytes: [UInt8]?) {
        guard let bytes else {
            raw("NIL")
            return
        }
        string(bytes)
    }

    /// `{n}` CRLF data, or `~{n}` for literal8.
    mutating func literal(_ bytes: some Collection<UInt8>, binary: Bool) {
        raw(binary ? "~{\(bytes.count)}" : "{\(bytes.count)}")
        crlf()
        buffer.append(contentsOf: bytes)
    }

    /// A single character, quoted (LIST and NAMESPACE delimiters), or NIL.
    mutating func delimiter(_ character: Character?) {
        guard let character, character.isASCII, let ascii = character.asciiValue, IMAPCharacter.isTextChar(ascii) else {
            raw("NIL")
            return
        }
        string([ascii])
    }

    mutating func sequenceSet(_ set: IMAPSequenceSet) {
        switch set {
        case .lastSearchResult:
            raw("$")
        case .ranges(let ranges):
            for (index, range) in ranges.enumerated() {
                if index > 0 { buffer.append(UInt8(ascii: ",")) }
                sequenceNumber(range.first)
                if range.first != range.last {
                    buffer.append(UInt8(ascii: ":"))
                    sequenceNumber(range.last)
                }
            }
        }
    }

    private mutating func sequenceNumber(_ value: IMAPSequenceNumber) {
        switch value {
        case .number(let number): self.number(number)
        case .last: raw("*")
        }
    }

    // MARK: Responses

    mutating func response(_ response: IMAPResponse) {
        switch response {
        case .tagged(let tag, let status):
            // Tags come from the parser, but nothing else may slip into the line.
            let tagBytes = tag.utf8.filter { IMAPCharacter.isAStringChar($0) && $0 != UInt8(ascii: "+") }
            buffer.append(contentsOf: tagBytes.isEmpty ? [UInt8(ascii: "*")] : tagBytes)
            space()
            statusResponse(status)
        case .untagged(let untagged):
            raw("* ")
            self.untagged(untagged)
        case .continuation(let text):
            raw("+ ")
            self.text(text.isEmpty ? "Ready" : text)
        case .continuationChallenge(let data):
            raw("+ ")
            raw(IMAPBase64.encode(data))
        }
        crlf()
    }

    /// `resp-cond-state` / `resp-cond-bye` / `resp-cond-auth`: `OK [code] text`.
    mutating func statusResponse(_ response: IMAPStatusResponse) {
        raw(response.status.rawValue)
        space()
        if let code = response.code {
            buffer.append(UInt8(ascii: "["))
            responseCode(code)
            buffer.append(UInt8(ascii: "]"))
            space()
        }
        // RFC 3501 §9 requires text (1*TEXT-CHAR) after the code; older clients rely on it.
        text(response.text.isEmpty ? response.status.rawValue : response.text)
    }

    mutating func responseCode(_ code: IMAPResponseCode) {
        switch code {
        case .alert: raw("ALERT")
        case .alreadyExists: raw("ALREADYEXISTS")
        case .appendUID(let uidValidity, let uids):
            raw("APPENDUID \(uidValidity) ")
            sequenceSet(uids)
        case .authenticationFailed: raw("AUTHENTICATIONFAILED")
        case .authorizationFailed: raw("AUTHORIZATIONFAILED")
        case .badCharset(let charsets):
            raw("BADCHARSET")
            if !charsets.isEmpty {
                raw(" (")
                for (index, charset) in charsets.enumerated() {
                    if index > 0 { space() }
                    atom(charset)
                }
                raw(")")
            }
        case .cannot: raw("CANNOT")
        case .capability(let capabilities):
            raw("CAPABILITY")
            for capability in capabilities {
                space()
                atom(capability)
            }
        case .clientBug: raw("CLIENTBUG")
        case .closed: raw("CLOSED")
        case .compressionActive: raw("COMPRESSIONACTIVE")
        case .contactAdmin: raw("CONTACTADMIN")
        case .copyUID(let uidValidity, let source, let destination):
            raw("COPYUID \(uidValidity) ")
            sequenceSet(source)
            space()
            sequenceSet(destination)
        case .corruption: raw("CORRUPTION")
        case .expired: raw("EXPIRED")
        case .expungeIssued: raw("EXPUNGEISSUED")
        case .hasChildren: raw("HASCHILDREN")
        case .highestModSeq(let value): raw("HIGHESTMODSEQ \(value)")
        case .inUse: raw("INUSE")
        case .limit: raw("LIMIT")
        case .modified(let set):
            raw("MODIFIED ")
            sequenceSet(set)
        case .noModSeq: raw("NOMODSEQ")
        case .noPerm: raw("NOPERM")
        case .nonexistent: raw("NONEXISTENT")
        case .notSaved: raw("NOTSAVED")
        case .overQuota: raw("OVERQUOTA")
        case .parse: raw("PARSE")
        case .permanentFlags(let flags):
            raw("PERMANENTFLAGS ")
            flagList(flags)
        case .privacyRequired: raw("PRIVACYREQUIRED")
        case .readOnly: raw("READ-ONLY")
        case .readWrite: raw("READ-WRITE")
        case .serverBug: raw("SERVERBUG")
        case .tooBig: raw("TOOBIG")
        case .tryCreate: raw("TRYCREATE")
        case .uidNext(let value): raw("UIDNEXT \(value)")
        case .uidNotSticky: raw("UIDNOTSTICKY")
        case .uidValidity(let value): raw("UIDVALIDITY \(value)")
        case .unavailable: raw("UNAVAILABLE")
        case .unknownCTE: raw("UNKNOWN-CTE")
        case .unseen(let value): raw("UNSEEN \(value)")
        case .useAttribute: raw("USEATTR")
        case .other(let name, let detail):
            atom(name)
            if let detail, !detail.isEmpty {
                space()
                text(String(detail.map { $0 == "]" ? " " : $0 }))
            }
        }
    }

    mutating func untagged(_ response: IMAPUntaggedResponse) {
        switch response {
        case .status(let status):
            statusResponse(status)
        case .capability(let capabilities):
            raw("CAPABILITY")
            for capability in capabilities {
                space()
                atom(capability)
            }
        case .enabled(let capabilities):
            raw("ENABLED")
            for capability in capabilities {
                space()
                atom(capability)
            }
        case .list(let list):
            raw("LIST ")
            listResponse(list)
        case .lsub(let list):
            raw("LSUB ")
            listResponse(list)
        case .mailboxStatus(let mailbox, let values):
            raw("STATUS ")
            string(mailbox.bytes)
            raw(" (")
            for (index, value) in values.enumerated() {
                if index > 0 { space() }
                raw("\(value.attribute.rawValue) \(value.value)")
            }
            raw(")")
        case .exists(let count): raw("\(count) EXISTS")
        case .recent(let count): raw("\(count) RECENT")
        case .expunge(let number): raw("\(number) EXPUNGE")
        case .vanished(let earlier, let uids):
            raw(earlier ? "VANISHED (EARLIER) " : "VANISHED ")
            sequenceSet(uids)
        case .flags(let flags):
            raw("FLAGS ")
            flagList(flags)
        case .search(let numbers, let modSeq):
            raw("SEARCH")
            numberList(numbers, modSeq: modSeq)
        case .sort(let numbers, let modSeq):
            raw("SORT")
            numberList(numbers, modSeq: modSeq)
        case .esearch(let result):
            esearch(result)
        case .thread(let threads):
            raw("THREAD")
            if !threads.isEmpty { space() }
            for thread in threads {
                buffer.append(UInt8(ascii: "("))
                threadMembers(thread)
                buffer.append(UInt8(ascii: ")"))
            }
        case .namespace(let namespace):
            raw("NAMESPACE ")
            namespaces(namespace.personal)
            space()
            namespaces(namespace.otherUsers)
            space()
            namespaces(namespace.shared)
        case .quota(let root, let resources):
            raw("QUOTA ")
            string(root)
            raw(" (")
            for (index, resource) in resources.enumerated() {
                if index > 0 { space() }
                atom(resource.name.uppercased())
                raw(" \(resource.usage) \(resource.limit)")
            }
            raw(")")
        case .quotaRoot(let mailbox, let roots):
            raw("QUOTAROOT ")
            string(mailbox.bytes)
            for root in roots {
                space()
                string(root)
            }
        case .id(let fields):
            raw("ID ")
            guard let fields else {
                raw("NIL")
                return
            }
            raw("(")
            for (index, field) in fields.enumerated() {
                if index > 0 { space() }
                string(field.key)
                space()
                nstring(field.value.map { Array($0.utf8) })
            }
            raw(")")
        case .fetch(let number, let values):
            raw("\(number) FETCH (")
            for (index, value) in values.enumerated() {
                if index > 0 { space() }
                fetchValue(value)
            }
            raw(")")
        }
    }

    private mutating func numberList(_ numbers: [UInt32], modSeq: UInt64?) {
        for number in numbers {
            space()
            self.number(number)
        }
        if let modSeq {
            raw(" (MODSEQ \(modSeq))")
        }
    }

    /// `mailbox-list = "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox [SP mbox-list-extended]`.
    private mutating func listResponse(_ list: IMAPListResponse) {
        buffer.append(UInt8(ascii: "("))
        for (index, attribute) in list.attributes.enumerated() {
            if index > 0 { space() }
            flag(attribute)
        }
        raw(") ")
        delimiter(list.delimiter)
        space()
        string(list.mailbox.bytes)
        guard !list.extendedItems.isEmpty else { return }
        raw(" (")
        for (index, item) in list.extendedItems.enumerated() {
            if index > 0 { space() }
            switch item {
            case .childInfo(let options):
                raw("\"CHILDINFO\" (")
                for (optionIndex, option) in options.enumerated() {
                    if optionIndex > 0 { space() }
                    string(option)
                }
                raw(")")
            case .oldName(let name):
                raw("\"OLDNAME\" (")
                string(name.bytes)
                raw(")")
            }
        }
        raw(")")
    }

    /// RFC 4731 §3.1: `"ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)`.
    private mutating func esearch(_ result: IMAPESearchResponse) {
        raw("ESEARCH")
        if let tag = result.tag {
            raw(" (TAG ")
            string(tag)
            raw(")")
        }
        if result.byUID { raw(" UID") }
        if let min = result.min { raw(" MIN \(min)") }
        if let max = result.max { raw(" MAX \(max)") }
        if let all = result.all, all != .ranges([]) {
            raw(" ALL ")
            sequenceSet(all)
        }
        if let count = result.count { raw(" COUNT \(count)") }
        if let modSeq = result.modSeq { raw(" MODSEQ \(modSeq)") }
    }

    /// RFC 5256 §4: `thread-members = nz-number *(SP nz-number) [SP thread-nested]`,
    /// `thread-nested = 2*thread-list`. A chain of only children stays flat; a fork nests.
    private mutating func threadMembers(_ node: IMAPThreadNode) {
        var current = node
        var wroteMember = false
        while true {
            if let id = current.id {
                if wroteMember { space() }
                number(id)
                wroteMember = true
            }
            // A single child continues the chain; a placeholder with one child is just that child.
            if current.children.count == 1 {
                current = current.children[0]
                continue
            }
            if current.children.isEmpty { return }
            if wroteMember { space() }
            for child in current.children {
                buffer.append(UInt8(ascii: "("))
                threadMembers(child)
                buffer.append(UInt8(ascii: ")"))
            }
            return
        }
    }

    /// `namespace = nil / "(" 1*namespace-descr ")"`, `namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) ")"`.
    private mutating func namespaces(_ list: [IMAPNamespace]) {
        guard !list.isEmpty else {
            raw("NIL")
            return
        }
        buffer.append(UInt8(ascii: "("))
        for namespace in list {
            buffer.append(UInt8(ascii: "("))
            string(namespace.prefix.bytes)
            space()
            delimiter(namespace.delimiter)
            buffer.append(UInt8(ascii: ")"))
        }
        buffer.append(UInt8(ascii: ")"))
    }

    // MARK: FETCH

    mutating func fetchValue(_ value: IMAPFetchValue) {
        switch value {
        case .flags(let flags):
            raw("FLAGS ")
            flagList(flags)
        case .uid(let uid): raw("UID \(uid)")
        case .internalDate(let date):
            raw("INTERNALDATE ")
            string(date.description)
        case .rfc822Size(let size): raw("RFC822.SIZE \(size)")
        case .envelope(let envelope):
            raw("ENVELOPE ")
            self.envelope(envelope)
        case .body(let body):
            raw("BODY ")
            bodyStructure(body, extensible: false)
        case .bodyStructure(let body):
            raw("BODYSTRUCTURE ")
            bodyStructure(body, extensible: true)
        case .modSeq(let modSeq): raw("MODSEQ (\(modSeq))")
        case .rfc822(let data):
            raw("RFC822 ")
            nstring(data)
        case .rfc822Header(let data):
            raw("RFC822.HEADER ")
            nstring(data)
        case .rfc822Text(let data):
            raw("RFC822.TEXT ")
            nstring(data)
        case .bodySection(let section, let origin, let data):
            raw("BODY")
            self.section(section)
            if let origin { raw("<\(origin)>") }
            space()
            nstring(data)
        case .binary(let part, let origin, let data):
            raw("BINARY")
            sectionBinary(part)
            if let origin { raw("<\(origin)>") }
            space()
            if let data {
                if data.contains(0) {
                    literal(data, binary: true)
                } else {
                    string(data)
                }
            } else {
                raw("NIL")
            }
        case .binarySize(let part, let size):
            raw("BINARY.SIZE")
            sectionBinary(part)
            raw(" \(size)")
        }
    }

    mutating func section(_ section: IMAPSection) {
        buffer.append(UInt8(ascii: "["))
        raw(section.part.map(String.init).joined(separator: "."))
        if let text = section.text {
            if !section.part.isEmpty { buffer.append(UInt8(ascii: ".")) }
            switch text {
            case .header: raw("HEADER")
            case .text: raw("TEXT")
            case .mime: raw("MIME")
            case .headerFields(let names), .headerFieldsNot(let names):
                if case .headerFields = text {
                    raw("HEADER.FIELDS (")
                } else {
                    raw("HEADER.FIELDS.NOT (")
                }
                for (index, name) in names.enumerated() {
                    if index > 0 { space() }
                    astring(name)
                }
                buffer.append(UInt8(ascii: ")"))
            }
        }
        buffer.append(UInt8(ascii: "]"))
    }

    private mutating func sectionBinary(_ part: [UInt32]) {
        buffer.append(UInt8(ascii: "["))
        raw(part.map(String.init).joined(separator: "."))
        buffer.append(UInt8(ascii: "]"))
    }

    /// `astring`: bare when all ASTRING-CHARs (and not NIL), else a string.
    mutating func astring(_ text: String) {
        let bytes = Array(text.utf8)
        if !bytes.isEmpty, bytes.allSatisfy(IMAPCharacter.isAStringChar), text.uppercased() != "NIL" {
            buffer.append(contentsOf: bytes)
        } else {
            string(bytes)
        }
    }

    /// `envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP
    /// env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"`.
    mutating func envelope(_ envelope: IMAPEnvelope) {
        buffer.append(UInt8(ascii: "("))
        nstring(envelope.date)
        space()
        nstring(envelope.subject)
        for addresses in [envelope.from, envelope.sender, envelope.replyTo, envelope.to, envelope.cc, envelope.bcc] {
            space()
            addressList(addresses)
        }
        space()
        nstring(envelope.inReplyTo)
        space()
        nstring(envelope.messageID)
        buffer.append(UInt8(ascii: ")"))
    }

    /// `"(" 1*address ")" / nil`: addresses follow one another without spaces.
    private mutating func addressList(_ addresses: [IMAPAddress]) {
        guard !addresses.isEmpty else {
            raw("NIL")
            return
        }
        buffer.append(UInt8(ascii: "("))
        for address in addresses {
            buffer.append(UInt8(ascii: "("))
            nstring(address.name)
            space()
            nstring(address.adl)
            space()
            nstring(address.mailbox)
            space()
            nstring(address.host)
            buffer.append(UInt8(ascii: ")"))
        }
        buffer.append(UInt8(ascii: ")"))
    }

    /// `body = "(" (body-type-1part / body-type-mpart) ")"`; `extensible` for BODYSTRUCTURE.
    mutating func bodyStructure(_ body: IMAPBodyStructure, extensible: Bool) {
        buffer.append(UInt8(ascii: "("))
        switch body {
        case .singlePart(let part):
            singlePart(part, extensible: extensible)
        case .multipart(let multipart):
            // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]: no space between parts.
            for part in multipart.parts {
                bodyStructure(part, extensible: extensible)
            }
            if multipart.parts.isEmpty {
                // RFC 9051 requires at least one part; an empty text/plain keeps clients parsing.
                singlePartPlaceholder()
            }
            space()
            string(multipart.subtype.uppercased())
            if extensible {
                space()
                bodyParameters(multipart.parameters)
                bodyExtension(multipart.extensionData)
            }
        }
        buffer.append(UInt8(ascii: ")"))
    }

    private mutating func singlePartPlaceholder() {
        bodyStructure(.singlePart(IMAPSinglePartBody(type: "TEXT", subtype: "PLAIN", fields: IMAPBodyFields(octets: 0), kind: .text(lines: 0))), extensible: false)
    }

    private mutating func singlePart(_ part: IMAPSinglePartBody, extensible: Bool) {
        string(part.type.uppercased())
        space()
        string(part.subtype.uppercased())
        space()
        bodyParameters(part.fields.parameters)
        space()
        nstring(part.fields.id)
        space()
        nstring(part.fields.description)
        space()
        string(part.fields.encoding.uppercased())
        space()
        number(part.fields.octets)
        switch part.kind {
        case .basic:
            break
        case .text(let lines):
            raw(" \(lines)")
        case .message(let envelope, let body, let lines):
            space()
            self.envelope(envelope)
            space()
            bodyStructure(body, extensible: extensible)
            raw(" \(lines)")
        }
        if extensible {
            space()
            nstring(part.md5)
            bodyExtension(part.extensionData)
        }
    }

    /// `SP body-fld-dsp SP body-fld-lang SP body-fld-loc`.
    private mutating func bodyExtension(_ data: IMAPBodyExtension?) {
        space()
        if let disposition = data?.disposition {
            buffer.append(UInt8(ascii: "("))
            string(disposition.kind.uppercased())
            space()
            bodyParameters(disposition.parameters)
            buffer.append(UInt8(ascii: ")"))
        } else {
            raw("NIL")
        }
        space()
        let languages = data?.language ?? []
        switch languages.count {
        case 0: raw("NIL")
        case 1: string(languages[0])
        default:
            buffer.append(UInt8(ascii: "("))
            for (index, language) in languages.enumerated() {
                if index > 0 { space() }
                string(language)
            }
            buffer.append(UInt8(ascii: ")"))
        }
        space()
        nstring(data?.location)
    }

    /// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`.
    private mutating func bodyParameters(_ parameters: [IMAPBodyParameter]) {
        guard !parameters.isEmpty else {
            raw("NIL")
            return
        }
        buffer.append(UInt8(ascii: "("))
        for (index, parameter) in parameters.enumerated() {
            if index > 0 { space() }
            string(parameter.name.uppercased())
            space()
            string(parameter.value)
        }
        buffer.append(UInt8(ascii: ")"))
    }
}
