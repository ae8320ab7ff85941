import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import SharedTree

/// The same Maildir opened by mutt: it shows our messages with our flags, and the flags it
/// sets are seen by our next sync. mutt runs in a private tmux server (its own socket),
/// which this test starts and stops.
final class MailStoreMuttTests: XCTestCase {
    /// Runs a command with posix_spawn and waitpid, its output going to a file that is
    /// read back. (Foundation's `Process` learns of the exit through a descriptor that the
    /// tmux server, forked by the client, would inherit and keep open.)
    private func run(_ arguments: [String], environment: [String: String] = [:], capture: Bool = false) throws -> (status: Int32, output: String) {
        let outputPath = NSTemporaryDirectory() + "svcpkg-mutt-output-\(getpid())"
        defer { unlink(outputPath) }
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, capture ? outputPath : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, nil, argv, envp)
        guard result == 0 else { throw SharedTreeError.io(operation: "posix_spawn", path: arguments[0], code: result) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = capture ? ((try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "") : ""
        // WIFEXITED / WEXITSTATUS
        return ((status & 0x7F) == 0 ? (status >> 8) & 0xFF : -1, output)
    }

    private func installed(_ tool: String) -> Bool {
        (try? run(["sh", "-c", "command -v \(tool)"], capture: true).status) == 0
    }

    func testMuttSeesOurMessagesAndFlagsAndWeSeeItsChanges() throws {
        guard installed("mutt"), installed("tmux") else { throw XCTSkip("mutt or tmux is not installed") }
        let fixture = try MailStoreFixture()
        defer { fixture.remove() }
        let store = fixture.store()
        for subject in ["one", "two", "three"] { try store.deliver(message(subject)) }
        let synced = try store.sync(.inbox)
        let uid = { (subject: String) -> UInt32 in
            synced.messages.first { message in
                (try? store.readMessage(message, in: .inbox)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self).contains("Subject: \(subject)\n") } ?? false
            }?.uid ?? 0
        }
        _ = try store.store(.inbox, uids: [uid("two")], .add, flags: [.seen, .flagged])
        _ = try store.store(.inbox, uids: [uid("three")], .add, flags: [.answered, .seen, .deleted])
        try store.deliver(message("four"))  // stays in new/: mutt shows it as new

        let maildir = store.maildirDirectory
        let socket = "svcpkg-mutt-\(getpid())"
        let environment = ["HOME": fixture.temp.path, "TERM": "xterm"]
        let socket2 = socket + "-b"
        defer {
            _ = try? run(["tmux", "-L", socket, "kill-server"], environment: environment)
            _ = try? run(["tmux", "-L", socket2, "kill-server"], environment: environment)
        }
        let settings = "set folder=\(maildir) mark_old=no delete=no quit=yes maildir_trash=yes"

        // 1. Read-only: what mutt shows.
        let show = "mutt -n -F /dev/null -R -f \(maildir) -e '\(settings)' -e 'set index_format=\"%4C [%Z] %s\"'"
        XCTAssertEqual(try run(["tmux", "-L", socket, "-f", "/dev/null", "new-session", "-d", "-x", "150", "-y", "30", show], environment: environment).status, 0)
        var screen = ""
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            screen = try run(["tmux", "-L", socket, "capture-pane", "-p"], environment: environment, capture: true).output
            if screen.contains("Msgs:4") { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTAssertTrue(screen.contains("Msgs:4 New:1 Old:1 Del:1 Flag:1"), screen)
        let lines = screen.split(separator: "\n").map(String.init)
        func line(_ subject: String) -> String { lines.first { $0.hasSuffix("] \(subject)") || $0.contains("] \(subject) ") } ?? "(missing \(subject))" }
        XCTAssertTrue(line("one").contains("[O  ]"), "unread, in cur/: \(line("one"))")
        XCTAssertTrue(line("two").contains("[  !]"), "seen and flagged: \(line("two"))")
        XCTAssertTrue(line("three").contains("[rD ]"), "replied, seen, deleted: \(line("three"))")
        XCTAssertTrue(line("four").contains("[N  ]"), "new: \(line("four"))")
        _ = try run(["tmux", "-L", socket, "kill-server"], environment: environment)

        // 2. mutt flags "one" and quits; our next sync sees it with a new MODSEQ.
        let flag = "mutt -n -F /dev/null -f \(maildir) -e '\(settings)' -e 'push \"<tag-pattern>~s one<enter><tag-prefix><flag-message><sync-mailbox><quit>\"'"
        XCTAssertEqual(try run(["tmux", "-L", socket2, "-f", "/dev/null", "new-session", "-d", "-x", "150", "-y", "30", flag], environment: environment).status, 0)
        let exitDeadline = Date().addingTimeInterval(15)
        while Date() < exitDeadline, try run(["tmux", "-L", socket2, "has-session"], environment: environment).status == 0 {
            Thread.sleep(forTimeInterval: 0.1)
        }
        let after = try store.sync(.inbox)
        XCTAssertEqual(after.messages.count, 4)
        let one = try XCTUnwrap(after.message(uid: uid("one")))
        XCTAssertEqual(one.flags, [.flagged])
        XCTAssertGreaterThan(one.modSeq, synced.highestModSeq)
        XCTAssertEqual(after.message(uid: uid("three"))?.flags, [.answered, .seen, .deleted])
        XCTAssertEqual(try store.checkConsistency(), [])
    }
}
