import Foundation
import Testing
@testable import IMAP

/// The fuzz seed corpus is written-out client traffic (Thunderbird, mutt, iOS Mail, Outlook);
/// every session in it must frame and parse the way a real session would see it.
@Suite struct SeedCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz/IMAPParser/corpus")

    static let sessions = [
        "thunderbird-session", "mutt-session", "ios-mail-session", "outlook-session", "literal-plus-multiappend",
        "search-sort-thread", "store-copy-expunge", "list-status-quota",
    ]

    @Test(arguments: sessions)
    func sessionParses(name: String) throws {
        let data = try Data(contentsOf: Self.corpus.appendingPathComponent(name))
        var framer = IMAPCommandFramer()
        var parser = IMAPCommandParser()
        framer.append(data)
        var commands = 0
        var expectingLine = false
        while let event = framer.nextEvent() {
            switch event {
            case .continuationRequired:
                continue
            case .error(let error):
                Issue.record("\(name): framing error \(error)")
            case .frame(let frame):
                if expectingLine {
                    // The line after AUTHENTICATE without initial response, or IDLE's DONE.
                    #expect(parser.parseIdleDone(frame) || parser.parseAuthenticationResponse(frame) != .invalid)
                    expectingLine = false
                    continue
                }
                switch parser.parse(frame) {
                case .success(let command):
                    commands += 1
                    switch command.kind {
                    case .idle, .authenticate(_, nil): expectingLine = true
                    case .enable(let capabilities) where capabilities.contains("UTF8=ACCEPT"): parser.utf8Accept = true
                    case .unknown(let name): Issue.record("unknown command \(name)")
                    default: break
                    }
                case .failure(let error):
                    Issue.record("\(name): \(String(decoding: frame.bytes.prefix(80), as: UTF8.self)): \(error)")
                }
            }
        }
        #expect(commands >= 4)
        #expect(framer.bufferedByteCount == 0)
    }
}
