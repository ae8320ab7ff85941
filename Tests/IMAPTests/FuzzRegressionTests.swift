import Foundation
import Testing
@testable import IMAP

/// The fuzz pipeline of fuzz/IMAPParser/FuzzEntry.swift in test form: inputs that once
/// crashed or broke an invariant are listed in `regressions` and replayed on every test run,
/// together with the whole seed corpus. (The fuzz runs so far found no crash; the list holds
/// hand-picked inputs that hit the framer's and parser's edges.)
@Suite struct FuzzRegressionTests {
    static let limits = IMAPLimits(
        maxLineLength: 512, maxLiteralSize: 256, maxAppendLiteralSize: 1024, maxCommandSize: 2048,
        maxAppendCommandSize: 4096, maxDiscardedBytes: 4096, maxTagLength: 16, maxNestingDepth: 8,
        maxSequenceSetRanges: 32, maxSearchKeys: 64, maxFetchAttributes: 16, maxListItems: 32, maxAppendMessages: 4
    )

    static let regressions: [[UInt8]] = [
        bytes("A1 LOGIN {5+}\r\n"),
        bytes("\r\n\r\n\r\n"),
        bytes("{5}\r\nhello\r\n"),
        bytes("A1 X ~{0}\r\n\r\n"),
        bytes("A1 APPEND INBOX ~{1+}\r\n") + [0] + bytes(" ~{1+}\r\n") + [0] + bytes("\r\n"),
        bytes("A1 LOGIN {4294967296}\r\nA2 NOOP\r\n"),
        bytes("A1 SEARCH " + String(repeating: "(", count: 40) + "\r\n"),
        bytes("A1 FETCH 1 BODY[" + String(repeating: "1.", count: 40) + "]\r\n"),
        bytes("A1 SEARCH " + String(repeating: "OR ", count: 40) + "\r\n"),
        bytes("A1 LOGIN " + String(repeating: "x", count: 600) + " {3+}\r\nabc\r\n"),
        bytes("A1 SELECT \"&" + String(repeating: "A", count: 1000) + "-\"\r\n"),
        bytes("A1 STATUS INBOX (" + String(repeating: "MESSAGES ", count: 40) + ")\r\n"),
        bytes("A1 APPEND INBOX {2000}\r\n"),
        bytes("A1 FETCH 1:2,3:4,5:6,7:8,9:10,11:12,13:14,15:16,17:18,19:20,21:22,23:24,25:26,27:28,29:30,31:32,33:34 UID\r\n"),
        [0xff, 0xfe, 0x7b, 0x31, 0x2b, 0x7d, 0x0d, 0x0a, 0x00],
        bytes("A1 ID (\"a\" {3}\r\n\u{7f}\u{7f}\u{7f})\r\n"),
    ]

    /// Chunked framing with rejected and accepted literals, both parser modes, every answer encoded.
    func exercise(_ input: [UInt8]) {
        for chunkSize in [1, 7, 4096] {
            for reject in [false, true] {
                var framer = IMAPCommandFramer(limits: Self.limits, literalExtension: .literalMinus)
                var offset = 0
                while offset < input.count {
                    let end = min(input.count, offset + chunkSize)
                    framer.append(input[offset..<end])
                    offset = end
                    while let event = framer.nextEvent() {
                        switch event {
                        case .frame(let frame):
                            for utf8Accept in [false, true] {
                                let result = IMAPCommandParser(limits: Self.limits, utf8Accept: utf8Accept).parse(frame)
                                if case .failure(let error) = result {
                                    #expect(!IMAPResponseEncoder().encode(error.suggestedResponse).isEmpty)
                                }
                            }
                        case .continuationRequired(let announcement):
                            #expect(announcement.size <= Self.limits.maxAppendLiteralSize)
                            if reject { framer.rejectPendingLiteral() }
                        case .error(let error):
                            #expect(!IMAPResponseEncoder().encode(error.suggestedResponse).isEmpty)
                        }
                        #expect(framer.bufferedByteCount <= Self.limits.maxAppendCommandSize + Self.limits.maxLineLength + chunkSize)
                    }
                }
            }
        }
        _ = IMAPCommandParser(limits: Self.limits).parse(input)
        if let name = ModifiedUTF7.decode(input) {
            #expect(ModifiedUTF7.encode(name) == input)
        }
    }

    @Test(arguments: regressions)
    func regression(input: [UInt8]) {
        exercise(input)
    }

    @Test func seedCorpusReplays() throws {
        let files = try FileManager.default.contentsOfDirectory(at: SeedCorpusTests.corpus, includingPropertiesForKeys: nil)
        #expect(files.count > 100)
        for file in files {
            exercise(Array(try Data(contentsOf: file)))
        }
    }
}
