/// RFC 9051 §7.5.2 (RFC 3501 §7.4.2) ENVELOPE: the header values as they are in the message
/// (unfolded, encoded words kept), nil where IMAP sends NIL. Field for field what the IMAP
/// encoder's `IMAPEnvelope` holds.
public struct Envelope: Sendable, Hashable {
    public var date: [UInt8]?
    public var subject: [UInt8]?
    public var from: [EnvelopeAddress]
    public var sender: [EnvelopeAddress]
    public var replyTo: [EnvelopeAddress]
    public var to: [EnvelopeAddress]
    public var cc: [EnvelopeAddress]
    public var bcc: [EnvelopeAddress]
    public var inReplyTo: [UInt8]?
    public var messageID: [UInt8]?

    public init(
        date: [UInt8]? = nil, subject: [UInt8]? = nil, from: [EnvelopeAddress] = [], sender: [EnvelopeAddress] = [],
        replyTo: [EnvelopeAddress] = [], to: [EnvelopeAddress] = [], cc: [EnvelopeAddress] = [], bcc: [EnvelopeAddress] = [],
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

    /// The envelope of a header; the first field of each name counts.
    public init(fields: [RawHeaderField]) {
        func addresses(_ name: String) -> [EnvelopeAddress] {
            fields.first(name).map(AddressParser.parse) ?? []
        }
        let from = addresses("From")
        let sender = addresses("Sender")
        let replyTo = addresses("Reply-To")
        // RFC 3501 §7.4.2: an absent or empty Sender or Reply-To is set to From.
        self.init(
            date: fields.first("Date"), subject: fields.first("Subject"), from: from,
            sender: sender.isEmpty ? from : sender, replyTo: replyTo.isEmpty ? from : replyTo,
            to: addresses("To"), cc: addresses("Cc"), bcc: addresses("Bcc"),
            inReplyTo: fields.first("In-Reply-To"), messageID: fields.first("Message-ID"))
    }

    /// The envelope of a message's header section.
    public init(message: [UInt8]) {
        self.init(fields: RawHeader.fields(of: message))
    }

    /// The same envelope decoded for display (RFC 2047 encoded words, 8-bit text).
    public var decoded: DecodedEnvelope {
        DecodedEnvelope(
            date: date.map(lenientString), subject: subject.map(EncodedWords.decode),
            from: DecodedEnvelope.entries(from), sender: DecodedEnvelope.entries(sender), replyTo: DecodedEnvelope.entries(replyTo),
            to: DecodedEnvelope.entries(to), cc: DecodedEnvelope.entries(cc), bcc: DecodedEnvelope.entries(bcc),
            inReplyTo: inReplyTo.map(lenientString), messageID: messageID.map(lenientString))
    }
}

/// One mailbox, decoded for display.
public struct MailboxAddress: Sendable, Hashable {
    public var displayName: String?
    /// nil when the message left it out.
    public var localPart: String?
    public var domain: String?
    public var route: String?

    public init(displayName: String? = nil, localPart: String?, domain: String?, route: String? = nil) {
        self.displayName = displayName
        self.localPart = localPart
        self.domain = domain
        self.route = route
    }

    /// `local@domain`, or what of it there is.
    public var address: String {
        switch (localPart, domain) {
        case let (local?, domain?): "\(local)@\(domain)"
        case let (local?, nil): local
        case let (nil, domain?): "@\(domain)"
        case (nil, nil): ""
        }
    }
}

/// An address-list element: a mailbox or a group of mailboxes (RFC 5322 §3.4).
public enum AddressListEntry: Sendable, Hashable {
    case mailbox(MailboxAddress)
    case group(name: String, members: [MailboxAddress])
}

/// The envelope for web-mail: every text decoded.
public struct DecodedEnvelope: Sendable, Hashable {
    public var date: String?
    public var subject: String?
    public var from: [AddressListEntry]
    public var sender: [AddressListEntry]
    public var replyTo: [AddressListEntry]
    public var to: [AddressListEntry]
    public var cc: [AddressListEntry]
    public var bcc: [AddressListEntry]
    public var inReplyTo: String?
    public var messageID: String?

    static func entries(_ addresses: [EnvelopeAddress]) -> [AddressListEntry] {
        var entries: [AddressListEntry] = []
        var group: (name: String, members: [MailboxAddress])?
        for address in addresses {
            if address.isGroupEnd {
                if let open = group { entries.append(.group(name: open.name, members: open.members)) }
                group = nil
            } else if address.isGroupStart, let name = address.mailbox {
                if let open = group { entries.append(.group(name: open.name, members: open.members)) }
                group = (EncodedWords.decode(name), [])
            } else {
                let mailbox = MailboxAddress(
                    displayName: address.name.map(EncodedWords.decode),
                    localPart: address.mailbox.flatMap { $0 == EnvelopeAddress.missingMailbox ? nil : lenientString($0) },
                    domain: address.host.flatMap { $0 == EnvelopeAddress.missingDomain ? nil : lenientString($0) },
                    route: address.adl.map(lenientString))
                if group != nil { group?.members.append(mailbox) } else { entries.append(.mailbox(mailbox)) }
            }
        }
        if let open = group { entries.append(.group(name: open.name, members: open.members)) }
        return entries
    }
}
