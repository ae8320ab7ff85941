import Testing
@testable import POP3

@Suite struct POP3MessageEncoderTests {
    /// Encodes `input` cut at the given offsets and returns the bytes plus the terminator.
    static func encode(_ input: [UInt8], limit: Int?, cuts: [Int]) -> (output: [UInt8], completeEarly: Bool) {
        var encoder = POP3MessageEncoder(bodyLineLimit: limit)
        var output: [UInt8] = []
        var start = 0
        var completeEarly = false
        for end in cuts + [input.count] where end >= start {
            encoder.encode(input[start..<end], into: &output)
            start = end
            if encoder.isComplete {
                completeEarly = true
                break
            }
        }
        output += encoder.finish()
        return (output, completeEarly)
    }

    /// Every way of cutting the input in two and three pieces, and byte by byte, must give the
    /// same bytes as one piece: chunk boundaries fall in the middle of lines and of CRLF.
    static func check(_ input: String, limit: Int? = nil, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let bytes = Array(input.utf8)
        let want = Array(expected.utf8)
        var cuttings: [[Int]] = [[], Array(0...bytes.count)]
        for first in 0...bytes.count {
            cuttings.append([first])
            for second in first...bytes.count where bytes.count <= 40 { cuttings.append([first, second]) }
        }
        for cuts in cuttings {
            let (output, _) = encode(bytes, limit: limit, cuts: cuts)
            if output != want {
                Issue.record(
                    "cut at \(cuts): \(String(decoding: output, as: UTF8.self).debugDescription) != \(expected.debugDescription)",
                    sourceLocation: sourceLocation)
                return
            }
        }
    }

    @Test(arguments: [
        ("", ".\r\n"),
        ("a\r\n", "a\r\n.\r\n"),
        ("a", "a\r\n.\r\n"),
        ("a\n", "a\r\n.\r\n"),
        ("a\nb\n\nc", "a\r\nb\r\n\r\nc\r\n.\r\n"),
        (".\r\n", "..\r\n.\r\n"),
        ("..x\n.\n", "...x\r\n..\r\n.\r\n"),
        ("Subject: x\r\n\r\n.\r\nbody\r\n.end", "Subject: x\r\n\r\n..\r\nbody\r\n..end\r\n.\r\n"),
        ("a.b\r\n x.\r\n", "a.b\r\n x.\r\n.\r\n"),
        ("bare\rcr\r\n", "bare\rcr\r\n.\r\n"),
        ("ends with cr\r", "ends with cr\r\n.\r\n"),
        ("\r\r\n", "\r\r\n.\r\n"),
        ("\n\n", "\r\n\r\n.\r\n"),
    ])
    func retrEncoding(input: String, expected: String) {
        Self.check(input, expected)
    }

    static let message = "From: a\r\nSubject: b\r\n\r\nline 1\r\n.line 2\nline 3\r\n"

    @Test(arguments: [
        (0, "From: a\r\nSubject: b\r\n\r\n.\r\n"),
        (1, "From: a\r\nSubject: b\r\n\r\nline 1\r\n.\r\n"),
        (2, "From: a\r\nSubject: b\r\n\r\nline 1\r\n..line 2\r\n.\r\n"),
        (3, "From: a\r\nSubject: b\r\n\r\nline 1\r\n..line 2\r\nline 3\r\n.\r\n"),
        (100, "From: a\r\nSubject: b\r\n\r\nline 1\r\n..line 2\r\nline 3\r\n.\r\n"),
    ])
    func topEncoding(lines: Int, expected: String) {
        Self.check(Self.message, limit: lines, expected)
    }

    @Test func topEdgeCases() {
        // No empty line: all header, whatever the limit.
        Self.check("From: a\nSubject: b", limit: 0, "From: a\r\nSubject: b\r\n.\r\n")
        // The empty line may be a bare LF, and the message may start with it.
        Self.check("From: a\n\nbody\n", limit: 0, "From: a\r\n\r\n.\r\n")
        Self.check("\r\nbody 1\r\nbody 2\r\n", limit: 1, "\r\nbody 1\r\n.\r\n")
        // A last body line without line end is still one line.
        Self.check("H: 1\r\n\r\nonly", limit: 5, "H: 1\r\n\r\nonly\r\n.\r\n")
        // A line holding only a bare CR before LF is empty too (its CR was the line end's).
        Self.check("H: 1\r\n\r\nx\r\n", limit: 0, "H: 1\r\n\r\n.\r\n")
    }

    @Test func topStopsReadingOnceComplete() {
        let (output, early) = Self.encode(Array((Self.message + String(repeating: "more\r\n", count: 1000)).utf8), limit: 1, cuts: [30, 60])
        #expect(early)
        #expect(output == Array("From: a\r\nSubject: b\r\n\r\nline 1\r\n.\r\n".utf8))
    }

    @Test func largeMessageInChunksMatchesOnePiece() {
        var text = ""
        for index in 0..<5000 { text += (index % 7 == 0 ? "." : "") + "line \(index)" + (index % 3 == 0 ? "\n" : "\r\n") }
        let bytes = Array(text.utf8)
        let whole = Self.encode(bytes, limit: nil, cuts: []).output
        let chunked = Self.encode(bytes, limit: nil, cuts: Array(stride(from: 0, to: bytes.count, by: 4093))).output
        #expect(whole == chunked)
        #expect(String(decoding: whole, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false).count == 5002)
        #expect(zip(whole, whole.dropFirst()).allSatisfy { $1 != 0x0a || $0 == 0x0d }, "every LF follows a CR")
    }
}
