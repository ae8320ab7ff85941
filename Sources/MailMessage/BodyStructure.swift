/// RFC 9051 §7.5.2 (RFC 3501 §7.4.2) BODYSTRUCTURE, with extension data: field for field what
/// the IMAP encoder's `IMAPBodyStructure` holds (BODY is the same without extension data).
/// Strings are raw header bytes; empty parameter lists and nil values are sent as NIL.
public indirect enum BodyStructure: Sendable, Hashable {
    case singlePart(SinglePartBody)
    case multipart(MultipartBody)

    /// The structure of a parsed message.
    public init(_ structure: MessageStructure) {
        self.init(structure.root)
    }

    /// The structure of one part (for message/rfc822 parts: of the message inside).
    public init(_ part: MessagePart) {
        let extensionData = BodyExtension(part)
        switch part.content {
        case .multipart(let children):
            // IMAP needs at least one part (`body-type-mpart = 1*body`); a multipart without
            // any gets an empty text/plain one, as Dovecot sends.
            let parts = children.isEmpty ? [.emptyTextPlain] : children.map(BodyStructure.init)
            self = .multipart(MultipartBody(parts: parts, subtype: part.contentType.subtype, parameters: part.contentType.parameters, extensionData: extensionData))
        case .single, .message:
            self = .singlePart(SinglePartBody(part, extensionData: extensionData))
        }
    }

    /// `("text" "plain" ("charset" "us-ascii") NIL NIL "7BIT" 0 0)`.
    public static let emptyTextPlain = BodyStructure.singlePart(
        SinglePartBody(
            type: "text", subtype: "plain", fields: BodyFields(parameters: [MIMEParameter("charset", "us-ascii")], octets: 0),
            kind: .text(lines: 0), extensionData: BodyExtension()))
}

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets`.
public struct BodyFields: Sendable, Hashable {
    /// As written in Content-Type (RFC 2231 sections not joined: IMAP sends them raw).
    public var parameters: [MIMEParameter]
    public var id: [UInt8]?
    public var description: [UInt8]?
    /// The Content-Transfer-Encoding token as written; `7BIT` when absent.
    public var encoding: String
    /// The body size with CRLF line breaks.
    public var octets: Int

    public init(parameters: [MIMEParameter] = [], id: [UInt8]? = nil, description: [UInt8]? = nil, encoding: String = "7BIT", octets: Int) {
        self.parameters = parameters
        self.id = id
        self.description = description
        self.encoding = encoding
        self.octets = octets
    }
}

public struct BodyDisposition: Sendable, Hashable {
    public var kind: String
    public var parameters: [MIMEParameter]

    public init(_ kind: String, parameters: [MIMEParameter] = []) {
        self.kind = kind
        self.parameters = parameters
    }
}

/// Extension data of both kinds of body: disposition (RFC 2183), language (RFC 3282),
/// location (RFC 2557).
public struct BodyExtension: Sendable, Hashable {
    public var disposition: BodyDisposition?
    /// Empty for NIL.
    public var language: [String]
    public var location: [UInt8]?

    public init(disposition: BodyDisposition? = nil, language: [String] = [], location: [UInt8]? = nil) {
        self.disposition = disposition
        self.language = language
        self.location = location
    }

    init(_ part: MessagePart) {
        self.init(
            disposition: part.disposition.map { BodyDisposition($0.kind, parameters: $0.parameters) },
            language: ContentLanguage.parse(part.fields.first("Content-Language")),
            location: part.fields.first("Content-Location"))
    }
}

public struct SinglePartBody: Sendable, Hashable {
    public indirect enum Kind: Sendable, Hashable {
        case basic
        /// text/*: the body size in lines.
        case text(lines: Int)
        /// message/rfc822 (and message/global): the envelope and structure of the message
        /// inside, and the body size in lines.
        case message(envelope: Envelope, body: BodyStructure, lines: Int)
    }

    public var type: String
    public var subtype: String
    public var fields: BodyFields
    public var kind: Kind
    /// `body-fld-md5`: the Content-MD5 value (RFC 1864) when present.
    public var md5: [UInt8]?
    public var extensionData: BodyExtension

    public init(type: String, subtype: String, fields: BodyFields, kind: Kind = .basic, md5: [UInt8]? = nil, extensionData: BodyExtension = BodyExtension()) {
        self.type = type
        self.subtype = subtype
        self.fields = fields
        self.kind = kind
        self.md5 = md5
        self.extensionData = extensionData
    }

    init(_ part: MessagePart, extensionData: BodyExtension) {
        let contentType = part.contentType
        var parameters = contentType.parameters
        // RFC 2046 §4.1.2: text without a charset is US-ASCII; say so, as Dovecot does.
        if contentType.isText && contentType.parameter("charset") == nil {
            parameters.append(MIMEParameter("charset", "us-ascii"))
        }
        let encodingToken = part.fields.first("Content-Transfer-Encoding").map(MIMELexer.firstToken) ?? []
        let fields = BodyFields(
            parameters: parameters, id: part.fields.first("Content-ID"), description: part.fields.first("Content-Description"),
            encoding: encodingToken.isEmpty ? "7BIT" : String(decoding: encodingToken, as: UTF8.self), octets: part.bodyOctets)
        let kind: Kind
        if contentType.isText {
            kind = .text(lines: part.bodyLines)
        } else if contentType.isEncapsulatedMessage {
            if case .message(let inner) = part.content {
                kind = .message(envelope: Envelope(fields: inner.fields), body: BodyStructure(inner), lines: part.bodyLines)
            } else {
                // Not parsed (encoded or over a limit): an empty envelope and body, as Dovecot sends.
                kind = .message(envelope: Envelope(), body: .emptyTextPlain, lines: part.bodyLines)
            }
        } else {
            kind = .basic
        }
        self.init(
            type: contentType.type, subtype: contentType.subtype, fields: fields, kind: kind,
            md5: part.fields.first("Content-MD5"), extensionData: extensionData)
    }
}

public struct MultipartBody: Sendable, Hashable {
    public var parts: [BodyStructure]
    public var subtype: String
    /// Content-Type parameters (the boundary...).
    public var parameters: [MIMEParameter]
    public var extensionData: BodyExtension

    public init(parts: [BodyStructure], subtype: String, parameters: [MIMEParameter] = [], extensionData: BodyExtension = BodyExtension()) {
        self.parts = parts
        self.subtype = subtype
        self.parameters = parameters
        self.extensionData = extensionData
    }
}

extension MessageStructure {
    /// BODYSTRUCTURE of the message.
    public var bodyStructure: BodyStructure { BodyStructure(root) }
    /// ENVELOPE of the message.
    public var envelope: Envelope { Envelope(fields: root.fields) }
}
