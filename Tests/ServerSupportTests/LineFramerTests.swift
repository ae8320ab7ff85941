import Testing
import ServerSupport

@Suite struct LineFramerTests {
    /// Feeds `pieces` one after another and collects the events, lines shown as text.
    func events(_ pieces: [String], maxLength: Int = 10) -> [String] {
        var framer = LineFramer()
        var out: [String] = []
        for piece in pieces {
            framer.append(Array(piece.utf8))
            while let event = framer.next(maxLength: maxLength) {
                switch event {
                case .line(let bytes): out.append(String(decoding: bytes, as: UTF8.self))
                case .tooLong: out.append("<too long>")
                }
            }
        }
        return out
    }

    @Test(arguments: [
        (["STAT\r\n"], ["STAT"]),
        (["STAT\n"], ["STAT"]),
        (["ST", "AT\r", "\nNO", "OP\r\n"], ["STAT", "NOOP"]),
        (["\r\n\n"], ["", ""]),
        (["a\rb\r\n"], ["a\rb"]),
        (["A\r\nB\r\nC"], ["A", "B"]),
        (["0123456789\r\n"], ["0123456789"]),
        (["0123456789A\r\nok\r\n"], ["<too long>", "ok"]),
        (["0123456789", "A", "BCD", "EFG\r\nok\r\n"], ["<too long>", "ok"]),
        (["0123456789\r", "\nok\n"], ["0123456789", "ok"]),
    ])
    func framing(pieces: [String], expected: [String]) {
        #expect(events(pieces) == expected)
    }

    @Test func endlessLineIsNotBuffered() {
        var framer = LineFramer()
        framer.append([UInt8](repeating: 0x41, count: 100))
        #expect(framer.next(maxLength: 10) == .tooLong)
        for _ in 0..<1000 {
            framer.append([UInt8](repeating: 0x41, count: 1000))
            #expect(framer.next(maxLength: 10) == nil)
            #expect(framer.bufferedCount == 0)
        }
        framer.append(Array("tail\r\nNOOP\r\n".utf8))
        #expect(framer.next(maxLength: 10) == .line(Array("NOOP".utf8)))
    }

    @Test func manyPipelinedLinesAreSplitInOrder() {
        var framer = LineFramer()
        framer.append(Array((0..<5000).map { "NOOP \($0)\r\n" }.joined().utf8))
        var count = 0
        while case .line(let line)? = framer.next(maxLength: 20) {
            #expect(line == Array("NOOP \(count)".utf8))
            count += 1
        }
        #expect(count == 5000)
        #expect(framer.bufferedCount == 0)
    }
}
