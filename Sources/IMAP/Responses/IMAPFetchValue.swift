/// One item of a `* n FETCH (...)` response.
public enum IMAPFetchValue: Sendable, Hashable {
    case flags([IMAPFlag])
    case uid(UInt32)
    case internalDate(IMAPDateTime)
    case rfc822Size(UInt64)
    case envelope(IMAPEnvelope)
    /// `BODY`: the structure without extension data.
    case body(IMAPBodyStructure)
    /// `BODYSTRUCTURE`: with extension data where the tree has it.
    case bodyStructure(IMAPBodyStructure)
    case modSeq(UInt64)
    case rfc822([UInt8]?)
    case rfc822Header([UInt8]?)
    case rfc822Text([UInt8]?)
    /// `BODY[section]<origin> data`; `origin` is the offset of a partial fetch.
    case bodySection(IMAPSection, origin: UInt64?, [UInt8]?)
    /// `BINARY[part]<origin> data`: sent as literal8 when it holds NUL (RFC 3516 §4.1).
    case binary(part: [UInt32], origin: UInt64?, [UInt8]?)
    case binarySize(part: [UInt32], UInt64)
}

/// RFC 9051 §7.5.2 ENVELOPE. Strings are the raw header bytes (RFC 2047 encoded words are left
/// as they are); nil is NIL.
public struct IMAPEnvelope: Sendable, Hashable {
    public var date: [UInt8]?
    public var subject: [UInt8]?
    public var from: [IMAPAddress]
    public var sender: [IMAPAddress]
    public var replyTo: [IMAPAddress]
    public var to: [IMAPAddress]
    public var cc: [IMAPAddress]
    public var bcc: [IMAPAddress]
    public var inReplyTo: [UInt8]?
    public var messageID: [UInt8]?

    public init(
        date: [UInt8]? = nil, subject: [UInt8]? = nil, from: [IMAPAddress] = [], sender: [IMAPAddress] = [],
        replyTo: [IMAPAddress] = [], to: [IMAPAddress] = [], cc: [IMAPAddress] = [], bcc: [IMAPAddress] = [],
        inReplyTo: [UInt8]? = nil, messageID: [UInt8]? = nil
    ) {
        self.date = date
        self.subject = subject
        self.from = from
        self.sender = sender
        self.replyTo = replyTo
        self.to = to
        self.cc = cc
        self.bcc = bcc
        self.inReplyTo = inReplyTo
        self.messageID = messageID
    }
}

/// `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`. RFC 9051 §7.5.2:
/// a group starts with host NIL and the group name as mailbox, and ends with mailbox and host NIL.
public struct IMAPAddress: Sendable, Hashable {
    public var name: [UInt8]?
    public var adl: [UInt8]?
    public var mailbox: [UInt8]?
    public var host: [UInt8]?

    public init(name: [UInt8]? = nil, adl: [UInt8]? = nil, mailbox: [UInt8]?, host: [UInt8]?) {
        self.name = name
        self.adl = adl
        self.mailbox = mailbox
        self.host = host
    }

    public static func groupStart(_ name: [UInt8]) -> IMAPAddress { IMAPAddress(mailbox: name, host: nil) }
    public static let groupEnd = IMAPAddress(mailbox: nil, host: nil)
}

/// The MIME tree of a message as FETCH BODY/BODYSTRUCTURE shows it (RFC 9051 §7.5.2). Built
/// by the MIME code; this module only encodes it.
public indirect enum IMAPBodyStructure: Sendable, Hashable {
    case singlePart(IMAPSinglePartBody)
    case multipart(IMAPMultipartBody)
}

public struct IMAPBodyParameter: Sendable, Hashable {
    public var name: String
    public var value: [UInt8]

    public init(_ name: String, _ value: [UInt8]) {
        self.name = name
        self.value = value
    }

    public init(_ name: String, _ value: String) {
        self.init(name, Array(value.utf8))
    }
}

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets`.
public struct IMAPBodyFields: Sendable, Hashable {
    public var parameters: [IMAPBodyParameter]
    public var id: [UInt8]?
    public var description: [UInt8]?
    /// `7BIT`, `BASE64`...
    public var encoding: String
    public var octets: UInt32

    public init(parameters: [IMAPBodyParameter] = [], id: [UInt8]? = nil, description: [UInt8]? = nil, encoding: String = "7BIT", octets: UInt32) {
        self.parameters = parameters
        self.id = id
        self.description = description
        self.encoding = encoding
        self.octets = octets
    }
}

public struct IMAPBodyDisposition: Sendable, Hashable {
    public var kind: String
    public var parameters: [IMAPBodyParameter]

    public init(_ kind: String, parameters: [IMAPBodyParameter] = []) {
        self.kind = kind
        self.parameters = parameters
    }
}

/// Extension data common to both kinds of body: disposition, language, location.
public struct IMAPBodyExtension: Sendable, Hashable {
    public var disposition: IMAPBodyDisposition?
    /// Empty for NIL.
    public var language: [String]
    public var location: [UInt8]?

    public init(disposition: IMAPBodyDisposition? = nil, language: [String] = [], location: [UInt8]? = nil) {
        self.disposition = disposition
        self.language = language
        self.location = location
    }
}

public struct IMAPSinglePartBody: Sendable, Hashable {
    public indirect enum Kind: Sendable, Hashable {
        /// Anything but text/* and message/rfc822 (and message/global).
        case basic
        /// text/*: size in lines.
        case text(lines: UInt64)
        /// message/rfc822: the enclosed message's envelope and structure, and its size in lines.
        case message(envelope: IMAPEnvelope, body: IMAPBodyStructure, lines: UInt64)
    }

    /// Media type and subtype, sent as strings (`"TEXT" "PLAIN"`).
    public var type: String
    public var subtype: String
    public var fields: IMAPBodyFields
    public var kind: Kind
    /// BODYSTRUCTURE only: `body-fld-md5`.
    public var md5: [UInt8]?
    /// BODYSTRUCTURE only; nil is sent as NIL for each item.
    public var extensionData: IMAPBodyExtension?

    public init(type: String, subtype: String, fields: IMAPBodyFields, kind: Kind = .basic, md5: [UInt8]? = nil, extensionData: IMAPBodyExtension? = nil) {
        self.type = type
        self.subtype = subtype
        self.fields = fields
        self.kind = kind
        self.md5 = md5
        self.extensionData = extensionData
    }
}

public struct IMAPMultipartBody: Sendable, Hashable {
    public var parts: [IMAPBodyStructure]
    public var subtype: String
    /// BODYSTRUCTURE only: `body-fld-param` of the multipart (the boundary...).
    public var parameters: [IMAPBodyParameter]
    /// BODYSTRUCTURE only; nil is sent as NIL for each item.
    public var extensionData: IMAPBodyExtension?

    public init(parts: [IMAPBodyStructure], subtype: String, parameters: [IMAPBodyParameter] = [], extensionData: IMAPBodyExtension? = nil) {
        self.parts = parts
        self.subtype = subtype
        self.parameters = parameters
        self.extensionData = extensionData
    }
}
