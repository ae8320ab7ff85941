// libFuzzer entry for the web-mail's parsers of hostile input: compiled together with the
// sources of Sources/MailMessage and the Foundation-only files of Sources/Web (see README.md).
//
// Each input is used as:
//  1. a multipart/form-data body (boundary `B`) and as a URL-encoded form: bounded field and file
//     counts, and no more bytes out than came in;
//  2. recipients typed into To/Cc/Bcc: every address accepted is valid and one line;
//  3. the text, subject and attachment name of a composed message, which must come out 7-bit,
//     parse back with the same recipients and subject, and carry the text unchanged through
//     quoted-printable;
//  4. a stored message opened for reading, replying and forwarding.
// An invariant that fails calls `fatalError`, which libFuzzer reports as a crash.

import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func webFormsFuzzTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    fuzzForms(input)
    fuzzAddresses(String(decoding: input, as: UTF8.self))
    fuzzCompose(input)
    fuzzReading(input)
    return 0
}

private func fuzzForms(_ input: [UInt8]) {
    if let form = try? WebForm.multipart(input, contentType: "multipart/form-data; boundary=B") {
        guard form.fields.count <= WebForm.maxFields, form.files.count <= WebForm.maxFiles else { fatalError("too many parts kept") }
        let out = form.files.reduce(0) { $0 + $1.data.count } + form.fields.reduce(0) { $0 + $1.value.utf8.count }
        // Field values are read as UTF-8: an invalid byte becomes U+FFFD (3 bytes).
        guard out <= input.count * 3 else { fatalError("the form holds more than its body") }
    }
    let encoded = WebForm.urlEncoded(Substring(String(decoding: input, as: UTF8.self)))
    guard encoded.fields.count <= WebForm.maxFields else { fatalError("too many URL-encoded fields") }
}

private func fuzzAddresses(_ text: String) {
    guard let addresses = try? AddressInput.parse(text) else { return }
    guard addresses.count <= AddressInput.maxRecipients else { fatalError("too many recipients") }
    for address in addresses where !AddressInput.isValid(address) || address.contains("\r") || address.contains("\n") {
        fatalError("accepted a bad address \(address)")
    }
}

private func fuzzCompose(_ input: [UInt8]) {
    let text = String(decoding: input, as: UTF8.self)
    let message = OutgoingMessage(
        from: "alice@example.org", to: ["bob@example.org"], cc: ["carol@example.org"], bcc: ["dave@example.org"],
        subject: text, text: text, inReplyTo: text, references: text,
        attachments: [.init(filename: text, contentType: text, data: input)])
    let bytes = message.render(date: Date(timeIntervalSince1970: 1_800_000_000), messageID: "fuzz@example.org", boundarySeed: "fuzz")
    // An attachment typed message/rfc822 is written as it is (RFC 2046 §5.2.1), not base64.
    if text.lowercased() == "message/rfc822" { return }
    guard bytes.allSatisfy({ $0 < 0x80 }) else { fatalError("8-bit output") }
    guard !String(decoding: bytes, as: UTF8.self).contains("dave@example.org") else { fatalError("Bcc leaked") }
    let view = MessageView(bytes)
    guard MessageView.addresses(view.envelope.to) == ["bob@example.org"], MessageView.addresses(view.envelope.cc) == ["carol@example.org"] else {
        fatalError("recipients changed: \(view.envelope.to) \(view.envelope.cc)")
    }
    let subject = HeaderText.singleLine(text)
    guard (view.envelope.subject ?? "") == subject else { fatalError("subject changed: \(String(describing: view.envelope.subject)) != \(subject)") }
    guard view.attachments.count == 1, view.content(of: view.attachments[0].path)?.data == input else { fatalError("attachment changed") }
    // Quoted-printable: line breaks become CRLF, everything else comes back as it was.
    var expected: [UInt8] = []
    var index = 0
    while index < input.count {
        if input[index] == 0x0d, index + 1 < input.count, input[index + 1] == 0x0a {
            expected += [0x0d, 0x0a]
            index += 2
        } else if input[index] == 0x0a {
            expected += [0x0d, 0x0a]
            index += 1
        } else {
            expected.append(input[index])
            index += 1
        }
    }
    if !expected.isEmpty, expected.suffix(2) != [0x0d, 0x0a] { expected += [0x0d, 0x0a] }
    guard TransferEncoding.quotedPrintable.decode(Array(TransferEncoding.quotedPrintableEncoded(input).utf8)) == expected else { fatalError("quoted-printable round trip") }
}

private func fuzzReading(_ input: [UInt8]) {
    let view = MessageView(input)
    for part in view.attachments.prefix(16) { _ = view.content(of: part.path) }
    for mode in [MessageView.ComposeMode.reply, .replyAll, .forward] {
        let draft = view.draft(mode, own: ["alice@example.org"])
        for address in draft.to.split(separator: ",") + draft.cc.split(separator: ",") {
            let trimmed = address.trimmingCharacters(in: .whitespaces)
            guard trimmed.isEmpty || AddressInput.isValid(trimmed) else { fatalError("a reply to an invalid address \(trimmed)") }
        }
        guard !(draft.inReplyTo ?? "").contains("\n"), !(draft.references ?? "").contains("\n") else { fatalError("a line break in a reply header") }
    }
}
