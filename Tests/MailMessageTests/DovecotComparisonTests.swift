import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import MailMessage

/// ENVELOPE and BODYSTRUCTURE against Dovecot's own (a throwaway pre-authenticated `imap`
/// process on a temporary Maildir, see dovecot_helper.py). Skipped where dovecot-imapd is not
/// installed or the tests do not run as root.
enum ReferenceTools {
    static let dovecot = FileManager.default.isExecutableFile(atPath: "/usr/lib/dovecot/imap") && geteuid() == 0
    static let python = ProcessRunner.installed("python3")
}

@Suite(.enabled(if: ReferenceTools.dovecot, "needs dovecot-imapd and root"))
struct DovecotComparisonTests {
    static let helper = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("dovecot_helper.py").path

    /// Small messages at the edges of RFC 2046 that both must describe the same way.
    static let edgeCases: [String] = [
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nhello\r\n--b\r\n\r\nhello\r\n\r\n--b--\r\n",
        "Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nhello\r\n--b--\r\n",
        "Content-Type: multipart/mixed; boundary=zz\r\n\r\n--b\r\n\r\nhello\r\n--b--\r\n",
        "Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\nContent-Type: text/html\r\n\r\nhello\r\n",
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nhello no header\r\n--b--\r\n",
        "Content-Type: TEXT/Plain; CharSet=\"UTF-8\"; Format=Flowed\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\nhi\n",
        "Subject: a\nContent-Type: multipart/alternative; boundary=\"q\"\n\n--q\nContent-Type: text/plain\n\nline1\nline2\n--q\nContent-Type: message/rfc822\n\nSubject: inner\nFrom: x@y\n\ninner body\n--q--\n",
        "Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: dig\r\n\r\nb\r\n--d--\r\n",
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b  \r\n\r\nhello\r\n--b-- \r\nepilogue\r\n",
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--bx\r\n\r\nhello\r\n--b\r\n\r\nsecond\r\n--b--\r\n",
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\ninner\r\n--b\r\n\r\nouter2\r\n--b--\r\n",
        "Content-Type: text/plain; charset=\r\n\r\nx",
        "Subject: body-less",
        "",
        "\r\n\r\n",
        "Content-Type: text/plain; format=flowed\r\n\r\nx\r\n",
        "Content-Type: text/html; charset=utf-8; charset=latin1\r\n\r\nx\r\n",
        "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n\r\n--b--",
        "Content-Type: multipart/mixed; boundary=\"a b\"\r\n\r\n--a b\r\n\r\nspace\r\n--a b--\r\n",
        "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nx\r\n--q",
        "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nx\r\n--q\r\n",
        "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nx\r\n--q--",
        "From: John Smith\r\nReply-To: a@b: junk\r\nSender: a.@b\r\n\r\n",
        "From: a@b.c (comment (nested)) \r\nTo: \"a b\"@c, \"Q\" <\"x y\"@z>\r\nCc: Grp:;, Other: o@p;\r\nReply-To: \r\n\r\n",
        "From: =?utf-8?b?w6k=?= <e@x>, Group with \"quote\": <a@b> ;\r\nSender: <>\r\n\r\n",
    ]

    static func dovecot(_ paths: [String]) -> [[String: String]]? {
        guard let result = ProcessRunner.run(["python3", helper] + paths), result.status == 0 else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(result.output))) as? [[String: String]]
    }

    static func normalized(_ dovecot: String?) -> String {
        (dovecot ?? "").replacingOccurrences(of: "\"7bit\"", with: "\"7BIT\"")
    }

    @Test func fixturesMatchDovecot() throws {
        let names = FixtureTests.names
        let paths = names.map { FixtureTests.directory.appendingPathComponent($0 + ".eml").path }
        let results = try #require(Self.dovecot(paths), "dovecot_helper.py failed")
        try #require(results.count == names.count)
        for (name, result) in zip(names, results) where !FixtureTests.expected(name).dovecotDiffers {
            let structure = MessageStructure.parse(FixtureTests.message(name))
            #expect(IMAPRendering.envelope(structure.envelope) == Self.normalized(result["envelope"]), "\(name)")
            #expect(IMAPRendering.body(structure.bodyStructure) == Self.normalized(result["bodystructure"]), "\(name)")
        }
    }

    @Test func edgeCasesMatchDovecot() throws {
        let directory = NSTemporaryDirectory() + "svcpkg-mime-edge-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var paths: [String] = []
        for (index, text) in Self.edgeCases.enumerated() {
            let path = directory + "/\(index).eml"
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        let results = try #require(Self.dovecot(paths), "dovecot_helper.py failed")
        try #require(results.count == paths.count)
        for (text, result) in zip(Self.edgeCases, results) {
            let structure = MessageStructure.parse(Array(text.utf8))
            #expect(IMAPRendering.envelope(structure.envelope) == Self.normalized(result["envelope"]), "\(text.debugDescription)")
            #expect(IMAPRendering.body(structure.bodyStructure) == Self.normalized(result["bodystructure"]), "\(text.debugDescription)")
        }
    }
}
