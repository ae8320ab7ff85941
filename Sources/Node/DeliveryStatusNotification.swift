import Foundation
import MailMessage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// RFC 3464 delivery status notifications ("bounces") for recipients the queue gave up on.
///
/// Loop rules (RFC 5321 §4.5.5, RFC 3834): a message with the null reverse-path never gets a
/// DSN, and the DSN itself is sent with the null reverse-path and `Auto-Submitted:
/// auto-replied`, so a DSN that cannot be delivered is dropped rather than bounced again.
struct DeliveryStatusNotification {
    struct FailedRecipient: Equatable {
        var address: String
        /// RFC 3463 status code, e.g. "5.1.1".
        var status: String
        /// The remote server's reply or our reason, e.g. "smtp; 550 5.1.1 no such user".
        var diagnostic: String
        /// The host that gave the reply, if any.
        var remoteMTA: String?
    }

    static let maxReturnedHeaderBytes = 64 * 1024

    var reportingMTA: String
    var originalSender: String
    var queueID: String
    var arrivalDate: Date
    var recipients: [FailedRecipient]
    var originalMessage: [UInt8]

    /// Whether a DSN may be sent for a message from `sender` at all.
    static func isBounceable(sender: String) -> Bool {
        !sender.isEmpty && !sender.lowercased().hasPrefix("mailer-daemon@")
    }

    /// The complete message (CRLF line ends) to queue with the null sender to `originalSender`.
    func render(now: Date = Date(), boundary: String = "dsn-" + UUID().uuidString) -> [UInt8] {
        let date = RFC5322Date.string(now)
        let host = Self.clean(reportingMTA)
        var text = """
            From: Mail Delivery System <MAILER-DAEMON@\(host)>
            To: <\(Self.clean(originalSender))>
            Subject: Undelivered Mail Returned to Sender
            Date: \(date)
            Message-ID: <\(Self.clean(queueID)).dsn@\(host)>
            Auto-Submitted: auto-replied
            MIME-Version: 1.0
            Content-Type: multipart/report; report-type=delivery-status;
            \tboundary="\(boundary)"

            This is a MIME-encapsulated message.

            --\(boundary)
            Content-Type: text/plain; charset=utf-8
            Content-Description: Notification

            This is the mail system at \(host).

            Your message could not be delivered to one or more recipients.
            It has been returned with the reasons below; the headers of your
            message are attached.


            """
        for recipient in recipients {
            text += "<\(Self.clean(recipient.address))>: \(Self.clean(recipient.diagnostic))\n"
        }
        text += """

            --\(boundary)
            Content-Type: message/delivery-status
            Content-Description: Delivery report

            Reporting-MTA: dns; \(host)
            X-Svcpkg-Queue-ID: \(Self.clean(queueID))
            Arrival-Date: \(RFC5322Date.string(arrivalDate))

            """
        for recipient in recipients {
            text += "Final-Recipient: rfc822; \(Self.clean(recipient.address))\n"
            text += "Action: failed\n"
            text += "Status: \(Self.validStatus(recipient.status))\n"
            if let remote = recipient.remoteMTA { text += "Remote-MTA: dns; \(Self.clean(remote))\n" }
            text += "Diagnostic-Code: \(Self.clean(recipient.diagnostic))\n"
            text += "Last-Attempt-Date: \(date)\n\n"
        }
        text += """
            --\(boundary)
            Content-Type: text/rfc822-headers
            Content-Description: Undelivered message headers


            """
        var bytes = Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8)
        bytes += Self.headerBlock(of: originalMessage)
        bytes += Array("\r\n--\(boundary)--\r\n".utf8)
        return bytes
    }

    /// The header section of the original (up to the blank line), capped, CRLF-terminated.
    static func headerBlock(of message: [UInt8]) -> [UInt8] {
        var end = message.count
        if message.count >= 4 {
            for index in 0...(message.count - 4)
            where message[index] == 13 && message[index + 1] == 10 && message[index + 2] == 13 && message[index + 3] == 10 {
                end = index + 2
                break
            }
        }
        var block = Array(message[0..<min(end, maxReturnedHeaderBytes)])
        // Cut at the last full line when capped.
        if end > maxReturnedHeaderBytes, let lastLF = block.lastIndex(of: 10) { block = Array(block[...lastLF]) }
        if block.last != 10 { block += [13, 10] }
        return block
    }

    /// Remote replies and addresses are untrusted: one line of printable text, bounded.
    static func clean(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7f }.prefix(900).map(Character.init))
    }

    static func validStatus(_ status: String) -> String {
        let parts = status.split(separator: ".")
        guard parts.count == 3, ["2", "4", "5"].contains(parts[0]), parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) })
        else { return "5.0.0" }
        return status
    }

    /// The RFC 3463 code in a reply like "550 5.1.1 text" when its class matches, else a generic one.
    static func status(fromReply reply: String, permanent: Bool) -> String {
        let words = reply.split(separator: " ", maxSplits: 2)
        let expectedClass: Character = permanent ? "5" : "4"
        if words.count >= 2, validStatus(String(words[1])) == String(words[1]), words[1].first == expectedClass {
            return String(words[1])
        }
        return permanent ? "5.0.0" : "4.0.0"
    }
}
