import Testing
@testable import IMAP

@Suite struct ModifiedUTF7Tests {
    @Test(arguments: [
        ("INBOX", "INBOX"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("&", "&-"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
        ("😀", "&2D3eAA-"),
        ("äöü", "&AOQA9gD8-"),
        ("a\u{7f}b", "a&AH8-b"),
        ("", ""),
    ])
    func roundTrips(name: String, encoded: String) {
        #expect(ModifiedUTF7.encode(name) == bytes(encoded))
        #expect(ModifiedUTF7.decode(bytes(encoded)) == name)
    }

    @Test(arguments: [
        "&", "&U,BTFw", "&AGE-", "&AOQ-&APY-", "&Jjo!-", "&2D3-", "&3gA-", "&AOQ=-", "a\u{e9}", "&AOQB-", "a\tb", "&AOQ/-",
    ])
    func rejectsNonCanonicalOrInvalid(encoded: String) {
        #expect(ModifiedUTF7.decode(bytes(encoded)) == nil)
    }
}

@Suite struct Base64Tests {
    @Test(arguments: [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("\0alice\0secret", "AGFsaWNlAHNlY3JldA==")])
    func roundTrips(plain: String, encoded: String) {
        #expect(IMAPBase64.encode(bytes(plain)) == encoded)
        #expect(IMAPBase64.decode(bytes(encoded)) == bytes(plain))
    }

    @Test(arguments: ["Zg", "Zm8"])
    func toleratesMissingPadding(encoded: String) {
        #expect(IMAPBase64.decode(bytes(encoded)) != nil)
    }

    @Test(arguments: ["Z", "Zg=", "Zg===", "Z===", "Zh==", "Zm9v!", "Zg==Zg==", "=", "Zm 9v"])
    func rejects(encoded: String) {
        #expect(IMAPBase64.decode(bytes(encoded)) == nil)
    }
}

@Suite struct DateTimeTests {
    @Test func epochConversions() {
        #expect(IMAPDateTime(secondsSince1970: 0).description == " 1-Jan-1970 00:00:00 +0000")
        #expect(IMAPDateTime(secondsSince1970: 837_596_665, zoneMinutes: -420).description == "17-Jul-1996 02:44:25 -0700")
        #expect(IMAPDateTime(secondsSince1970: -1).description == "31-Dec-1969 23:59:59 +0000")
        #expect(IMAPDateTime(secondsSince1970: 951_782_400).date == date(2000, 2, 29))
        for seconds: Int64 in [0, 1, 86_399, 86_400, 951_782_400, 4_102_444_800, -86_401] {
            #expect(IMAPDateTime(secondsSince1970: seconds, zoneMinutes: 330).secondsSince1970 == seconds)
        }
        #expect(date(2024, 3, 1).daysSince1970 - date(2024, 2, 28).daysSince1970 == 2)
        #expect(IMAPDate(daysSince1970: date(2038, 1, 19).daysSince1970) == date(2038, 1, 19))
        #expect(date(2024, 1, 2) > date(2023, 12, 31))
        #expect(date(1994, 2, 1).description == "1-Feb-1994")
    }
}

@Suite struct SequenceSetTests {
    @Test(arguments: [
        ([UInt32](), ""), ([5, 1, 2, 3], "1:3,5"), ([1, 1, 2], "1:2"), ([7], "7"), ([1, 3, 5], "1,3,5"),
        ([4_294_967_294, 4_294_967_295, 1], "1,4294967294:4294967295"),
    ])
    func compacting(values: [UInt32], expected: String) {
        var writer = IMAPWriter(buffer: [], utf8Accept: false)
        writer.sequenceSet(IMAPSequenceSet(compacting: values))
        #expect(writer.buffer == bytes(expected))
    }

    @Test func preservingOrderForCopyUID() {
        var writer = IMAPWriter(buffer: [], utf8Accept: false)
        writer.sequenceSet(IMAPSequenceSet(preservingOrder: [3, 4, 5, 1, 9, 10]))
        #expect(writer.buffer == bytes("3:5,1,9:10"))
    }

    @Test func resolvingStar() {
        let set = IMAPSequenceSet([IMAPSequenceRange(.number(5), .last), range(2, 2)])
        #expect(set.contains(7, largest: 10))
        #expect(set.contains(2, largest: 10))
        #expect(!set.contains(3, largest: 10))
        #expect(!set.contains(7, largest: 4) || IMAPSequenceRange(.number(5), .last).resolved(largest: 4) == 4...5)
        #expect(IMAPSequenceRange(.number(9), .number(3)).resolved(largest: 0) == 3...9)
        #expect(!IMAPSequenceSet.lastSearchResult.contains(1, largest: 1))
    }
}
