import Testing

@testable import MailMessage

/// RFC 2047 encoded words and the charsets behind them.
@Suite struct EncodedWordsTests {
    @Test(arguments: [
        ("plain text", "plain text"),
        ("=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=", "Grüße aus München"),
        ("=?utf-8?b?SsO8cmdlbg==?=", "Jürgen"),
        ("=?utf-8?B?SsO8cmdlbg?=", "Jürgen"),
        ("=?iso-8859-1?q?Andr=E9?= Pirard", "André Pirard"),
        // §6.2: white space between adjacent encoded words is dropped; around text it stays.
        ("=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        ("=?utf-8?q?a?=\t \t=?utf-8?q?b?=", "ab"),
        ("=?utf-8?q?a?= x =?utf-8?q?b?=", "a x b"),
        ("=?utf-8?q?a_?= plain", "a  plain"),
        // a character split across two words (bytes joined before conversion)
        ("=?utf-8?b?ww==?= =?utf-8?b?qQ==?=", "é"),
        ("=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "é"),
        // charsets
        ("=?KOI8-R?B?7cnIwcnM?=", "Михаил"),
        ("=?koi8-u?q?=A6?=", "і"),
        ("=?windows-1251?B?zejq7uvg6Q==?=", "Николай"),
        ("=?ISO-8859-15?Q?=A4uro?=", "€uro"),
        ("=?iso-8859-2?q?=B1?=", "ą"),
        ("=?iso-8859-7?q?=E1?=", "α"),
        ("=?windows-1252?q?=80?=", "€"),
        ("=?cp1250?q?=8A?=", "Š"),
        ("=?us-ascii?q?plain?=", "plain"),
        ("=?utf-8*en?q?lang?=", "lang"),
        ("=?shift_jis?b?k/qWe4zq?=", "日本語"),
        ("=?iso-2022-jp?b?GyRCRnxLXDhsGyhC?=", "日本語"),
        // unknown charset, malformed words: kept as written
        ("=?x-unknown?q?abc?=", "=?x-unknown?q?abc?="),
        ("=?utf-8?x?abc?=", "=?utf-8?x?abc?="),
        ("=?utf-8?q?unterminated", "=?utf-8?q?unterminated"),
        ("=??q?abc?=", "=??q?abc?="),
        // invalid escapes stay
        ("=?utf-8?q?100=%?=", "100=%"),
    ])
    func decode(_ raw: String, _ expected: String) {
        #expect(EncodedWords.decode(Array(raw.utf8)) == expected)
    }

    @Test func eightBitHeaderText() {
        #expect(EncodedWords.decode([0x43, 0x61, 0x66, 0xc3, 0xa9]) == "Café")
        // not UTF-8: Windows-1252
        #expect(EncodedWords.decode([0x43, 0x61, 0x66, 0xe9]) == "Café")
    }

    @Test(arguments: [
        ("ISO-8859-1", [0xe9], "é"), ("latin1", [0xe9], "é"), ("iso8859-15", [0xa4], "€"), ("ISO_8859-5", [0xb0], "А"),
        ("iso-8859-9", [0xfd], "ı"), ("iso-8859-13", [0xe6], "ę"), ("iso-8859-16", [0xa4], "€"),
        ("windows-1250", [0x9a], "š"), ("windows-1253", [0xe1], "α"), ("windows-1254", [0xf0], "ğ"),
        ("windows-1255", [0xf9], "ש"), ("windows-1256", [0xc7], "ا"), ("windows-1257", [0xe0], "ą"), ("windows-1258", [0xe3], "ă"),
        ("KOI8-R", [0xc1], "а"), ("koi8-u", [0xa4], "є"), ("UTF-8", [0xe2, 0x82, 0xac], "€"), ("utf8", [0x41], "A"),
        ("us-ascii", [0x41], "A"), ("shift_jis", [0x93, 0xfa], "日"),
    ])
    func charsets(_ name: String, _ bytes: [UInt8], _ expected: String) {
        #expect(Charset.decode(bytes, charset: name) == expected)
    }

    @Test func unknownCharset() {
        #expect(Charset.decode([0x41], charset: "x-mac-klingon") == nil)
        #expect(!Charset.isKnown("x-mac-klingon"))
        #expect(Charset.isKnown("Windows-1252"))
    }
}
