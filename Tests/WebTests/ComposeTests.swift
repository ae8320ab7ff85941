import Foundation
import MailMessage
import Testing

@testable import Web

@Suite struct ComposeTests {
    @Test func urlEncodedForms() {
        let form = WebForm.urlEncoded("a=1&b=x+y%21&uid=3&uid=4&empty=&flag")
        #expect(form.first("a") == "1")
        #expect(form.first("b") == "x y!")
        #expect(form.all("uid") == ["3", "4"])
        #expect(form.first("empty") == "")
        #expect(form.first("flag") == "")
        #expect(form.first("missing") == nil)
    }

    @Test func multipartFormWithFiles() throws {
        let body = """
            --XyZ\r
            Content-Disposition: form-data; name="to"\r
            \r
            bob@example.org\r
            --XyZ\r
            Content-Disposition: form-data; name="attachment"; filename="notes.txt"\r
            Content-Type: text/plain\r
            \r
            line one\r
            line two\r
            --XyZ\r
            Content-Disposition: form-data; name="attachment"; filename=""\r
            Content-Type: application/octet-stream\r
            \r
            \r
            --XyZ--\r

            """
        let form = try WebForm.multipart(Array(body.utf8), contentType: "multipart/form-data; boundary=XyZ")
        #expect(form.first("to") == "bob@example.org")
        #expect(form.files.count == 1)
        #expect(form.files.first?.filename == "notes.txt")
        #expect(form.files.first?.data == Array("line one\r\nline two".utf8))
        #expect(throws: WebForm.ParseError.self) { try WebForm.multipart(Array(body.utf8), contentType: "multipart/form-data") }
        #expect(throws: WebForm.ParseError.self) { try WebForm.multipart(Array("--XyZ\r\nbroken".utf8), contentType: "multipart/form-data; boundary=XyZ") }
    }

    @Test func addressesAreCheckedOneByOne() throws {
        #expect(try AddressInput.parse("a@example.org, Bob <bob@example.org>; c@example.org") == ["a@example.org", "bob@example.org", "c@example.org"])
        #expect(try AddressInput.parse("  ") == [])
        #expect(throws: AddressInput.Problem.self) { try AddressInput.parse("not an address") }
        #expect(throws: AddressInput.Problem.self) { try AddressInput.parse("a@example.org\r\nBcc: evil@example.org x") }
        #expect(throws: AddressInput.Problem.self) { try AddressInput.parse("<a@b@example.org>") }
    }

    @Test func composedMessageParsesBackWithAttachments() throws {
        let message = OutgoingMessage(
            from: "alice@example.org", to: ["bob@example.org"], cc: ["carol@example.org"], bcc: ["dave@example.org"],
            subject: "Grüße\r\nBcc: injected@example.org", text: "Hello Bob,\nä line with = sign and trailing space \n.\nBye",
            inReplyTo: "<orig@example.org>", references: "<root@example.org> <orig@example.org>",
            attachments: [.init(filename: "report ü.pdf", contentType: "application/pdf", data: Array(repeating: 0xff, count: 300))])
        let bytes = message.render(date: Date(timeIntervalSince1970: 1_800_000_000), messageID: "id1@example.org", boundarySeed: "abc")
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(!text.contains("Bcc:"))
        #expect(!text.contains("dave@example.org"))
        #expect(message.recipients == ["bob@example.org", "carol@example.org", "dave@example.org"])
        #expect(bytes.allSatisfy { $0 < 0x80 })
        let view = MessageView(bytes)
        #expect(view.envelope.subject == "Grüße Bcc: injected@example.org")
        #expect(MessageView.addresses(view.envelope.to) == ["bob@example.org"])
        #expect(view.envelope.inReplyTo == "<orig@example.org>")
        #expect(view.body == .text("Hello Bob,\r\nä line with = sign and trailing space \r\n.\r\nBye\r\n"))
        #expect(view.attachments.count == 1)
        let attachment = try #require(view.attachments.first)
        #expect(attachment.filename == "report ü.pdf")
        #expect(view.content(of: attachment.path)?.data == Array(repeating: 0xff, count: 300))
    }

    @Test func quotedPrintableKeepsLinesShort() {
        let encoded = QuotedPrintable.encode(Array(String(repeating: "é", count: 100).utf8))
        #expect(encoded.split(separator: "\r\n").allSatisfy { $0.count <= 76 })
        let decoded = TransferEncoding(Array("quoted-printable".utf8)).decode(Array(encoded.utf8))
        #expect(decoded.map { String(decoding: $0, as: UTF8.self) } == String(repeating: "é", count: 100) + "\r\n")
    }

    static let alternative = """
        From: Bob <bob@example.org>\r
        To: alice@example.org, Carol <carol@example.org>\r
        Cc: al@example.org\r
        Reply-To: bob-replies@example.org\r
        Subject: Lunch\r
        Date: Mon, 7 Dec 2026 10:00:00 +0000\r
        Message-ID: <lunch@example.org>\r
        References: <earlier@example.org>\r
        MIME-Version: 1.0\r
        Content-Type: multipart/mixed; boundary="outer"\r
        \r
        --outer\r
        Content-Type: multipart/related; boundary="rel"\r
        \r
        --rel\r
        Content-Type: multipart/alternative; boundary="alt"\r
        \r
        --alt\r
        Content-Type: text/plain; charset=utf-8\r
        \r
        Plain lunch at noon?\r
        --alt\r
        Content-Type: text/html; charset=utf-8\r
        \r
        <p>HTML lunch at <b>noon</b>?</p><img src="cid:logo@example.org"><script>alert(1)</script>\r
        --alt--\r
        --rel\r
        Content-Type: image/png\r
        Content-ID: <logo@example.org>\r
        Content-Transfer-Encoding: base64\r
        \r
        iVBORw0KGgo=\r
        --rel--\r
        --outer\r
        Content-Type: application/pdf; name="menu.pdf"\r
        Content-Disposition: attachment; filename="menu.pdf"\r
        Content-Transfer-Encoding: base64\r
        \r
        JVBERi0=\r
        --outer--\r

        """

    @Test func readingPrefersHTMLAndListsAttachments() throws {
        let view = MessageView(Array(Self.alternative.utf8))
        guard case .html(let html) = view.body else {
            Issue.record("expected the HTML part, got \(view.body)")
            return
        }
        #expect(html.contains("HTML lunch"))
        #expect(view.contentIDs["logo@example.org"] == [1, 2])
        #expect(view.attachments.map(\.filename) == [nil, "menu.pdf"])
        #expect(view.content(of: [2])?.data == Array("%PDF-".utf8))
        #expect(view.quotableText.contains("lunch"))
    }

    @Test func replyAllLeavesOutOwnAddresses() {
        let view = MessageView(Array(Self.alternative.utf8))
        let reply = view.draft(.reply, own: ["alice@example.org", "al@example.org"])
        #expect(reply.to == "bob-replies@example.org")
        #expect(reply.cc == "")
        #expect(reply.subject == "Re: Lunch")
        #expect(reply.inReplyTo == "<lunch@example.org>")
        #expect(reply.references == "<earlier@example.org> <lunch@example.org>")
        #expect(reply.text.contains("\n> "))
        let all = view.draft(.replyAll, own: ["alice@example.org", "al@example.org"])
        #expect(all.cc == "carol@example.org")
        let forward = view.draft(.forward, own: [])
        #expect(forward.subject == "Fwd: Lunch")
        #expect(forward.to == "")
        #expect(MessageView.prefixed("Re:", "RE: Lunch") == "RE: Lunch")
    }
}
