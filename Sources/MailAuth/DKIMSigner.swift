import Crypto
import Foundation

/// Why a message could not be signed.
public enum DKIMSigningError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidDomain(String)
    case invalidSelector(String)
    /// RFC 6376 §5.4: the From field must be signed; a message without one is not signable.
    case noFromHeader
    case signingFailed(String)

    public var description: String {
        switch self {
        case .invalidDomain(let domain): "DKIM signing domain \"\(domain)\" is not a valid domain name"
        case .invalidSelector(let selector): "DKIM selector \"\(selector)\" is not a valid DNS label sequence"
        case .noFromHeader: "the message has no From header field; DKIM requires it to be signed (RFC 6376 §5.4)"
        case .signingFailed(let why): "DKIM signing failed: \(why)"
        }
    }
}

/// Signs outgoing mail (RFC 6376 §5). The returned field goes on top of the message, before
/// any other header field.
public struct DKIMSigner: Sendable {
    /// The header fields signed by default (RFC 6376 §5.4.1's recommendation, trimmed to what
    /// relays leave alone).
    public static let defaultHeaders = [
        "from", "to", "cc", "subject", "date", "message-id", "reply-to", "in-reply-to", "references",
        "mime-version", "content-type", "content-transfer-encoding",
    ]

    public var domain: String
    public var selector: String
    public var key: DKIMSigningKey
    /// Names of header fields to sign; each instance present in the message is signed.
    public var headers: [String]
    /// Names listed in h= once more than they occur (RFC 6376 §8.15), so that a field of that
    /// name added later (a second From) breaks the signature.
    public var oversignedHeaders: [String]
    public var headerCanonicalization: DKIMCanonicalization
    public var bodyCanonicalization: DKIMCanonicalization
    /// When set, x= is t= plus this many seconds (RFC 6376 §3.5).
    public var signatureLifetime: Int?

    public init(
        domain: String,
        selector: String,
        key: DKIMSigningKey,
        headers: [String] = DKIMSigner.defaultHeaders,
        oversignedHeaders: [String] = ["from"],
        headerCanonicalization: DKIMCanonicalization = .relaxed,
        bodyCanonicalization: DKIMCanonicalization = .relaxed,
        signatureLifetime: Int? = nil
    ) {
        self.domain = domain
        self.selector = selector
        self.key = key
        self.headers = headers
        self.oversignedHeaders = oversignedHeaders
        self.headerCanonicalization = headerCanonicalization
        self.bodyCanonicalization = bodyCanonicalization
        self.signatureLifetime = signatureLifetime
    }

    /// The complete `DKIM-Signature: ...\r\n` field, folded to lines under 78 columns, to
    /// prepend to `message` unchanged (CRLF line endings; bare LFs are signed as CRLF).
    public func signatureHeader(for message: [UInt8], now: Date) throws(DKIMSigningError) -> String {
        guard let domain = DomainName.normalized(domain) else { throw .invalidDomain(domain) }
        guard let selector = DomainName.normalized(selector) else { throw .invalidSelector(selector) }
        let parsed = RawMessage(message)
        guard !parsed.fields(named: "from").isEmpty else { throw .noFromHeader }

        // h=: every instance of each configured name, plus one for the oversigned ones.
        var names: [String] = []
        var seen = Set<String>()
        let oversigned = Set(oversignedHeaders.map { $0.lowercased() })
        for name in headers.map({ $0.lowercased() }) where !seen.contains(name) && RawMessage.isValidFieldName(name) {
            seen.insert(name)
            let count = parsed.fields(named: name).count + (oversigned.contains(name) ? 1 : 0)
            names.append(contentsOf: repeatElement(name, count: min(count, MailAuthLimits.maxSignedHeaders - names.count)))
        }

        var bodyHasher = SHA256()
        var body = BodyCanonicalizer(algorithm: bodyCanonicalization) { bodyHasher.update(data: $0) }
        body.process(parsed.body)
        body.finish()
        let bodyHash = Data(bodyHasher.finalize()).base64EncodedString()

        let timestamp = Int(now.timeIntervalSince1970)
        var tags: [String] = [
            "v=1", "a=\(key.algorithm.rawValue)", "c=\(headerCanonicalization.rawValue)/\(bodyCanonicalization.rawValue)",
            "d=\(domain)", "s=\(selector)", "t=\(timestamp)",
        ]
        if let lifetime = signatureLifetime { tags.append("x=\(timestamp + lifetime)") }

        var folder = HeaderFolder(fieldName: "DKIM-Signature")
        for tag in tags { folder.append(tag + ";") }
        folder.appendList(prefix: "h=", items: names, separator: ":", terminator: ";")
        folder.append("bh=\(bodyHash);")
        folder.append("b=")
        let unsigned = folder.text

        // RFC 6376 §3.7: the signed headers in h= order, then this field with an empty b=
        // and without its final CRLF.
        var data: [UInt8] = []
        for field in DKIMHeaderSelection.select(names, from: parsed.fields) {
            Canonicalizer.appendHeader(field, headerCanonicalization, to: &data)
        }
        let own = Array(unsigned.utf8)
        Canonicalizer.appendHeader(
            name: "DKIM-Signature", bytes: own, valueStart: "DKIM-Signature:".utf8.count, headerCanonicalization, terminate: false,
            to: &data)

        let signature: [UInt8]
        do {
            signature = try key.sign(data)
        } catch {
            throw .signingFailed("\(error)")
        }
        folder.appendUnbroken(Data(signature).base64EncodedString())
        return folder.text + "\r\n"
    }
}

/// RFC 6376 §5.4.2: each name in h= takes the bottom-most instance of that field not yet
/// taken; a name with no instance left contributes nothing (which is what oversigning uses).
enum DKIMHeaderSelection {
    static func select(_ names: [String], from fields: [RawHeaderField]) -> [RawHeaderField] {
        var used: [String: Int] = [:]
        var byName: [String: [RawHeaderField]] = [:]
        for field in fields { byName[field.lowercasedName, default: []].append(field) }
        var selected: [RawHeaderField] = []
        for name in names {
            let lowered = name.lowercased()
            let instances = byName[lowered] ?? []
            let taken = used[lowered, default: 0]
            guard taken < instances.count else { continue }
            selected.append(instances[instances.count - 1 - taken])
            used[lowered] = taken + 1
        }
        return selected
    }
}

/// Builds a header field folded so that no line reaches 78 columns (RFC 5322 §2.1.1),
/// breaking only where folding white space is allowed.
struct HeaderFolder {
    private(set) var text: String
    private var column: Int
    static let width = 76

    init(fieldName: String) {
        text = fieldName + ":"
        column = text.count
    }

    /// Appends one unbreakable word, preceded by a space or a fold.
    mutating func append(_ word: String) {
        if column + 1 + word.count > Self.width {
            text += "\r\n\t"
            column = 1
        } else {
            text += " "
            column += 1
        }
        text += word
        column += word.count
    }

    /// Appends `prefix` + items joined by `separator`, folding after a separator when needed.
    mutating func appendList(prefix: String, items: [String], separator: String, terminator: String) {
        var pieces: [String] = []
        for (index, item) in items.enumerated() {
            var piece = item
            if index == 0 { piece = prefix + piece }
            piece += index == items.count - 1 ? terminator : separator
            pieces.append(piece)
        }
        if pieces.isEmpty { pieces = [prefix + terminator] }
        append(pieces[0])
        for piece in pieces.dropFirst() {
            if column + piece.count > Self.width {
                text += "\r\n\t"
                column = 1
            }
            text += piece
            column += piece.count
        }
    }

    /// Appends a long token directly after the current text, folding inside it (allowed in
    /// base64 values, RFC 6376 §3.5).
    mutating func appendUnbroken(_ token: String) {
        var rest = Substring(token)
        while !rest.isEmpty {
            let room = Self.width - column
            if room <= 0 {
                text += "\r\n\t"
                column = 1
                continue
            }
            let chunk = rest.prefix(room)
            text += chunk
            column += chunk.count
            rest = rest.dropFirst(chunk.count)
        }
    }
}
