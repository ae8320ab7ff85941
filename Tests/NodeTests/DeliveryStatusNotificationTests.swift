import Foundation
import MailMessage
import Testing
@testable import Node

@Suite struct DeliveryStatusNotificationTests {
    let original = Array("From: a@example.test\r\nTo: x@remote.test\r\nSubject: hello\r\n\r\nbody line\r\n".utf8)

    func dsn(_ diagnostic: String = "smtp; 550 5.1.1 no such user") -> DeliveryStatusNotification {
        DeliveryStatusNotification(
            reportingMTA: "n1.example.test", originalSender: "a@example.test", queueID: "q1",
            arrivalDate: Date(timeIntervalSince1970: 0),
            recipients: [.init(address: "x@remote.test", status: "5.1.1", diagnostic: diagnostic, remoteMTA: "mx.remote.test")],
            originalMessage: original)
    }

    @Test func rendersAMultipartReportWithHeadersOnly() throws {
        let text = try #require(String(bytes: dsn().render(now: Date(timeIntervalSince1970: 86400), boundary: "B"), encoding: .utf8))
        #expect(text.hasPrefix("From: Mail Delivery System <MAILER-DAEMON@n1.example.test>\r\nTo: <a@example.test>\r\n"))
        #expect(text.contains("Auto-Submitted: auto-replied\r\n"))
        #expect(text.contains("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B\"\r\n"))
        #expect(text.contains("Reporting-MTA: dns; n1.example.test\r\n"))
        #expect(text.contains("Arrival-Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"))
        #expect(text.contains("Final-Recipient: rfc822; x@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.remote.test\r\n"))
        #expect(text.contains("Last-Attempt-Date: Fri, 02 Jan 1970 00:00:00 +0000\r\n"))
        #expect(text.contains("Subject: hello\r\n"))
        #expect(!text.contains("body line"), "only the headers are returned")
        #expect(text.hasSuffix("\r\n--B--\r\n"))
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "CRLF line ends only")
    }

    @Test func remoteTextCannotInjectHeaders() throws {
        let text = try #require(String(bytes: dsn("smtp; 550 bad\r\nX-Injected: yes").render(boundary: "B"), encoding: .utf8))
        #expect(!text.contains("\r\nX-Injected"))
    }

    @Test func nullSenderAndDaemonsGetNoBounce() {
        #expect(!DeliveryStatusNotification.isBounceable(sender: ""))
        #expect(!DeliveryStatusNotification.isBounceable(sender: "MAILER-DAEMON@remote.test"))
        #expect(DeliveryStatusNotification.isBounceable(sender: "a@example.test"))
    }

    @Test(arguments: [
        ("550 5.1.1 no such user", true, "5.1.1"), ("550 no code", true, "5.0.0"), ("451 4.3.0 later", false, "4.3.0"),
        ("550 4.3.0 mismatched class", true, "5.0.0"), ("554 5.7.999x junk", true, "5.0.0"),
    ])
    func statusFromReply(reply: String, permanent: Bool, expected: String) {
        #expect(DeliveryStatusNotification.status(fromReply: reply, permanent: permanent) == expected)
    }

    @Test func dateFormat() {
        #expect(RFC5322Date.string(Date(timeIntervalSince1970: 1_700_000_000)) == "Tue, 14 Nov 2023 22:13:20 +0000")
    }
}

@Suite struct SMTPLimitsTests {
    @Test func tokenBucketRefills() {
        let limiter = RateLimiter()
        let start = Date(timeIntervalSince1970: 1000)
        #expect((0..<3).allSatisfy { _ in limiter.take("ip", rate: 3, period: 60, now: start) })
        #expect(!limiter.take("ip", rate: 3, period: 60, now: start))
        #expect(limiter.take("other", rate: 3, period: 60, now: start), "keys are independent")
        #expect(limiter.take("ip", rate: 3, period: 60, now: start.addingTimeInterval(20)), "one token back after period/rate")
        #expect(!limiter.take("ip", rate: 3, period: 60, now: start.addingTimeInterval(20)))
        #expect(limiter.take("ip", rate: 0, period: 60, now: start), "0 = unlimited")
    }

    @Test func connectionCounter() {
        let counter = ConnectionCounter()
        #expect(counter.open("a", limit: 2) && counter.open("a", limit: 2))
        #expect(!counter.open("a", limit: 2))
        counter.close("a")
        #expect(counter.open("a", limit: 2))
        #expect(counter.count("a") == 2)
    }
}
