import Testing
@testable import IMAP

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

extension IMAPCommandFramer {
    /// Every event available now.
    mutating func drain() -> [IMAPFramingEvent] {
        var events: [IMAPFramingEvent] = []
        while let event = nextEvent() {
            events.append(event)
        }
        return events
    }

    mutating func feed(_ text: String) -> [IMAPFramingEvent] {
        append(bytes(text))
        return drain()
    }
}

func frame(_ text: String, tag: String?, append: Bool = false) -> IMAPFramingEvent {
    .frame(IMAPFrame(bytes: bytes(text), tag: tag, isAppend: append))
}

@Suite struct IMAPCommandFramerTests {
    @Test func framesSimpleAndPipelinedCommands() {
        var framer = IMAPCommandFramer()
        #expect(framer.feed("a1 NOOP\r\na2 CAPABILITY\r\na3 LOG") == [
            frame("a1 NOOP\r\n", tag: "a1"), frame("a2 CAPABILITY\r\n", tag: "a2"),
        ])
        #expect(framer.feed("OUT\r\n") == [frame("a3 LOGOUT\r\n", tag: "a3")])
        #expect(framer.bufferedByteCount == 0)
    }

    @Test func acceptsBareLineFeedAndByteByByteInput() {
        var framer = IMAPCommandFramer()
        var events: [IMAPFramingEvent] = []
        for byte in bytes("x LOGIN {5}\r\nalice {6+}\r\nsecret\nx2 NOOP\n") {
            framer.append([byte])
            events += framer.drain()
        }
        #expect(events == [
            .continuationRequired(IMAPLiteralAnnouncement(tag: "x", size: 5, isBinary: false, isAppend: false)),
            frame("x LOGIN {5}\r\nalice {6+}\r\nsecret\n", tag: "x"),
            frame("x2 NOOP\n", tag: "x2"),
        ])
    }

    @Test func synchronizingLiteralsAskForContinuationOneAtATime() {
        var framer = IMAPCommandFramer()
        #expect(framer.feed("A1 LOGIN {5}\r\n") == [
            .continuationRequired(IMAPLiteralAnnouncement(tag: "A1", size: 5, isBinary: false, isAppend: false)),
        ])
        #expect(framer.feed("alice {6}\r\n") == [
            .continuationRequired(IMAPLiteralAnnouncement(tag: "A1", size: 6, isBinary: false, isAppend: false)),
        ])
        #expect(framer.feed("sec") == [])
        #expect(framer.feed("ret\r\n") == [frame("A1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n", tag: "A1")])
    }

    @Test func literalDataMayContainLineBreaksAndBraces() {
        var framer = IMAPCommandFramer()
        let message = "Subject: x {3}\r\n\r\nbody }\r\n"
        #expect(framer.feed("A1 APPEND INBOX {\(message.utf8.count)+}\r\n\(message)\r\n") == [
            frame("A1 APPEND INBOX {\(message.utf8.count)+}\r\n\(message)\r\n", tag: "A1", append: true),
        ])
    }

    @Test func zeroLengthAndBinaryLiterals() {
        var framer = IMAPCommandFramer()
        #expect(framer.feed("A1 LOGIN {0}\r\n") == [
            .continuationRequired(IMAPLiteralAnnouncement(tag: "A1", size: 0, isBinary: false, isAppend: false)),
        ])
        #expect(framer.feed(" x\r\n") == [frame("A1 LOGIN {0}\r\n x\r\n", tag: "A1")])
        #expect(framer.feed("A2 append INBOX ~{3}\r\n") == [
            .continuationRequired(IMAPLiteralAnnouncement(tag: "A2", size: 3, isBinary: true, isAppend: true)),
        ])
        framer.append([0, 1, 2, 13, 10])
        #expect(framer.drain() == [.frame(IMAPFrame(bytes: bytes("A2 append INBOX ~{3}\r\n") + [0, 1, 2, 13, 10], tag: "A2", isAppend: true))])
    }

    @Test func oversizedSynchronizingLiteralIsRefusedWithoutBuffering() {
        var framer = IMAPCommandFramer()
        let events = framer.feed("A1 APPEND INBOX {100000000}\r\n")
        #expect(events == [.error(IMAPFramingError(
            tag: "A1", kind: .literalTooLarge(size: 100_000_000, limit: 50 * 1_048_576), disposition: .commandDiscarded
        ))])
        if case .error(let error) = events.first {
            #expect(IMAPResponseEncoder().encode(error.suggestedResponse)
                == bytes("A1 BAD [TOOBIG] Literal of 100000000 octets exceeds the limit of 52428800\r\n"))
        }
        #expect(framer.bufferedByteCount == 0)
        // The client got no "+", so it sends its next command.
        #expect(framer.feed("A2 NOOP\r\n") == [frame("A2 NOOP\r\n", tag: "A2")])
    }

    @Test func nonAppendLiteralsHaveTheSmallerLimit() {
        var framer = IMAPCommandFramer()
        #expect(framer.feed("A1 LOGIN {70000}\r\n") == [.error(IMAPFramingError(
            tag: "A1", kind: .literalTooLarge(size: 70000, limit: 65536), disposition: .commandDiscarded
        ))])
        #expect(framer.feed("A2 APPEND INBOX {70000}\r\n") == [
            .continuationRequired(IMAPLiteralAnnouncement(tag: "A2", size: 70000, isBinary: false, isAppend: true)),
        ])
    }

    @Test func oversizedNonSynchronizingLiteralClosesTheConnection() {
        var framer = IMAPCommandFramer()
        let events = framer.feed("A1 APPEND INBOX {100000000+}\r\nFrom: x\r\n")
        #expect(events == [.error(IMAPFramingError(
            tag: "A1", kind: .nonSynchronizingLiteralTooLarge(size: 100_000_000, limit: 50 * 1_048_576), disposition: .closeConnection
        ))])
        #expect(framer.isClosed)
        #expect(framer.feed("A2 NOOP\r\n") == [])
        #expect(framer.bufferedByteCount == 0)
        if case .error(let error) = events.first {
            #expect(IMAPResponseEncoder().encode(error.suggestedResponse).starts(with: bytes("* BYE [TOOBIG] ")))
        }
    }

    @Test(arguments: [
        (IMAPLiteralExtension.literalMinus, 4096, true),
        (.literalMinus, 4097, false),
        (.none, 4097, false),
        (.literalPlus, 4097, true),
        (.literalPlus, 65536, true),
        (.literalPlus, 65537, false),
    ])
    func literalMinusAndPlusLimits(literalExtension: IMAPLiteralExtension, size: Int, accepted: Bool) {
        var framer = IMAPCommandFramer(literalExtension: literalExtension)
        let events = framer.feed("A1 LOGIN {\(size)+}\r\n")
        #expect(events.isEmpty == accepted)
        #expect(framer.isClosed == !accepted)
    }

    @Test func literalSizesThatOverflowAreRefused() {
        var framer = IMAPCommandFramer()
        #expect(framer.feed("A1 LOGIN {99999999999999999999999}\r\n") == [.error(IMAPFramingError(
            tag: "A1", kind: .literalTooLarge(size: nil, limit: 65536), disposition: .commandDiscarded
        ))])
        #expect(framer.feed("A2 LOGIN {99999999999999999999999+}\r\n") == [.error(IMAPFramingError(
            tag: "A2", kind: .nonSynchronizingLiteralTooLarge(size: nil, limit: 65536), disposition: .closeConnection
        ))])
    }

    @Test func overlongLineIsReportedAtOnceAndSkipped() {
        var framer = IMAPCommandFramer(limits: IMAPLimits(maxLineLength: 100))
        let events = framer.feed("T7 SEARCH " + String(repeating: "1,", count: 100))
        #expect(events == [.error(IMAPFramingError(tag: "T7", kind: .lineTooLong(limit: 100), disposition: .commandDiscarded))])
        #expect(framer.bufferedByteCount == 0)
        #expect(framer.feed(String(repeating: "2,", count: 1000)) == [])
        #expect(framer.feed("3\r\nT8 NOOP\r\n") == [frame("T8 NOOP\r\n", tag: "T8")])
    }

    @Test func overlongLineEndingInNonSynchronizingLiteralCloses() {
        var framer = IMAPCommandFramer(limits: IMAPLimits(maxLineLength: 100))
        let events = framer.feed("T7 LOGIN " + String(repeating: "a", count: 200) + " {5+}\r\nA2 NOOP\r\n")
        #expect(events == [
            .error(IMAPFramingError(tag: "T7", kind: .lineTooLong(limit: 100), disposition: .commandDiscarded)),
            .error(IMAPFramingError(tag: "T7", kind: .lineTooLong(limit: 100), disposition: .closeConnection)),
        ])
        #expect(framer.isClosed)
    }

    @Test func endlessLineWithoutNewlineIsCutOff() {
        var framer = IMAPCommandFramer(limits: IMAPLimits(maxLineLength: 1000, maxDiscardedBytes: 10_000))
        var events: [IMAPFramingEvent] = []
        for _ in 0..<20 {
            framer.append(Array(repeating: UInt8(ascii: "x"), count: 1000))
            events += framer.drain()
            #expect(framer.bufferedByteCount <= 1000)
        }
        #expect(events == [
            .error(IMAPFramingError(tag: nil, kind: .lineTooLong(limit: 1000), disposition: .commandDiscarded)),
            .error(IMAPFramingError(tag: nil, kind: .discardLimitExceeded(limit: 10_000), disposition: .closeConnection)),
        ])
    }

    @Test func wholeCommandSizeIsBounded() {
        var framer = IMAPCommandFramer(limits: IMAPLimits(maxCommandSize: 200))
        // Small non-synchronising literals add up; the one that crosses the limit closes.
        let line = "A1 SEARCH TEXT {50+}\r\n" + String(repeating: "y", count: 50) + " TEXT {50+}\r\n"
            + String(repeating: "y", count: 50) + " TEXT {50+}\r\n" + String(repeating: "y", count: 50) + " TEXT {50+}\r\n"
        let events = framer.feed(line)
        #expect(events == [.error(IMAPFramingError(tag: "A1", kind: .commandTooLarge(limit: 200), disposition: .closeConnection))])

        var syncFramer = IMAPCommandFramer(limits: IMAPLimits(maxCommandSize: 200))
        #expect(syncFramer.feed("A1 SEARCH TEXT {150}\r\n").count == 1)
        #expect(syncFramer.feed(String(repeating: "y", count: 150) + " TEXT {50}\r\n") == [
            .error(IMAPFramingError(tag: "A1", kind: .commandTooLarge(limit: 200), disposition: .commandDiscarded)),
        ])
        #expect(syncFramer.feed("A2 NOOP\r\n") == [frame("A2 NOOP\r\n", tag: "A2")])
    }

    @Test func serverMayRefuseAnAnnouncedLiteral() {
        var framer = IMAPCommandFramer()
        #expect(framer.feed("A1 APPEND INBOX {5000}\r\n").count == 1)
        framer.rejectPendingLiteral()  // e.g. after answering NO [OVERQUOTA]
        #expect(framer.feed("A2 NOOP\r\n") == [frame("A2 NOOP\r\n", tag: "A2")])
        // Only right after the announcement.
        framer.rejectPendingLiteral()
        #expect(framer.feed("A3 NOOP\r\n") == [frame("A3 NOOP\r\n", tag: "A3")])
    }

    @Test(arguments: [
        ("+ foo\r\n", nil as String?), ("* OK\r\n", nil), ("A1\r\n", nil), ("\r\n", nil),
        ("A{1 NOOP\r\n", nil), ("A%1 NOOP\r\n", nil), (" A1 NOOP\r\n", nil), ("ab]c NOOP\r\n", "ab]c"),
    ])
    func tagIsOnlyReportedWhenWellFormed(line: String, tag: String?) {
        var framer = IMAPCommandFramer()
        #expect(framer.feed(line) == [frame(line, tag: tag)])
    }

    @Test func nulAndEightBitBytesPassTheFramerForTheParserToJudge() {
        var framer = IMAPCommandFramer()
        framer.append([0x41, 0x20, 0x00, 0xff, 0x0d, 0x0a])
        #expect(framer.drain() == [.frame(IMAPFrame(bytes: [0x41, 0x20, 0x00, 0xff, 0x0d, 0x0a], tag: "A", isAppend: false))])
    }

    @Test(arguments: [
        ("{5}", IMAPCommandFramer.LiteralMarker(size: 5, nonSynchronizing: false, binary: false)),
        ("x {5+}", IMAPCommandFramer.LiteralMarker(size: 5, nonSynchronizing: true, binary: false)),
        ("x ~{0012}", IMAPCommandFramer.LiteralMarker(size: 12, nonSynchronizing: false, binary: true)),
        ("x ~{7+}", IMAPCommandFramer.LiteralMarker(size: 7, nonSynchronizing: true, binary: true)),
        ("{18446744073709551616}", IMAPCommandFramer.LiteralMarker(size: nil, nonSynchronizing: false, binary: false)),
    ])
    func literalMarkers(line: String, expected: IMAPCommandFramer.LiteralMarker) {
        #expect(IMAPCommandFramer.literalMarker(atEndOf: bytes(line)[...]) == expected)
    }

    @Test(arguments: ["{}", "{+}", "x {5 }", "x {a}", "x 5}", "x {5}}", "x {-5}", "x {5++}", "\"{5}\""])
    func notLiteralMarkers(line: String) {
        #expect(IMAPCommandFramer.literalMarker(atEndOf: bytes(line)[...]) == nil)
    }
}
