// Shared-tree store benchmark (issue 3): deliveries per second into one mailbox and into
// 1,000 mailboxes from 1 and 3 processes (each process stands for a node), and the cost of
// a change poll and of a no-change sync on a 100,000-message folder.
//
//   swift run -c release svcpkg-bench-store [--root DIR] [--messages N] [--poll-messages N]
//
// Workers are real processes: this binary re-runs itself with `worker ...` arguments.
import Foundation
import SharedTree

let arguments = CommandLine.arguments

func option(_ name: String, _ fallback: String) -> String {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return fallback }
    return arguments[index + 1]
}

func message(_ index: Int, size: Int = 2048) -> [UInt8] {
    let header = "From: bench@remote.test\r\nTo: user@bench.test\r\nSubject: message \(index)\r\nMessage-ID: <\(index).\(getpid())@bench>\r\n\r\n"
    let line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
    var body = ""
    while header.utf8.count + body.utf8.count < size { body += line }
    return Array((header + body).utf8)
}

func store(root: String, mailbox: Int, node: String) throws -> MailStore {
    MailStore(layout: SharedTreeLayout(root: root), user: try MailUser(localPart: "user\(mailbox)", domain: "bench.test"), node: node)
}

// worker ROOT NODE COUNT MAILBOXES FIRST: delivers COUNT messages round-robin over MAILBOXES.
if arguments.count > 1 && arguments[1] == "worker" {
    let root = arguments[2], node = arguments[3]
    let count = Int(arguments[4]) ?? 0, mailboxes = Int(arguments[5]) ?? 1, first = Int(arguments[6]) ?? 0
    let stores = try (0..<mailboxes).map { try store(root: root, mailbox: $0, node: node) }
    for index in 0..<count {
        try stores[(first + index) % mailboxes].deliver(message(first + index))
    }
    exit(0)
}

let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
let base = option("--root", NSTemporaryDirectory() + "svcpkg-bench-\(getpid())")
let total = Int(option("--messages", "9000")) ?? 9000
let pollMessages = Int(option("--poll-messages", "100000")) ?? 100_000

func freshRoot(_ name: String) throws -> String {
    let root = base + "/" + name
    try? FileManager.default.removeItem(atPath: root)
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    try SharedTreeLayout(root: root).createSkeleton()
    return root
}

func deliveries(processes: Int, mailboxes: Int) throws -> Double {
    let root = try freshRoot("deliver-\(processes)p-\(mailboxes)m")
    let perProcess = total / processes
    let start = Date()
    let workers = try (0..<processes).map { index -> Process in
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["worker", root, "n\(index + 1)", "\(perProcess)", "\(mailboxes)", "\(index * perProcess)"]
        try process.run()
        return process
    }
    for worker in workers {
        worker.waitUntilExit()
        guard worker.terminationStatus == 0 else { throw NSError(domain: "bench", code: Int(worker.terminationStatus)) }
    }
    let seconds = Date().timeIntervalSince(start)
    // Every delivery must be there: sync each mailbox and count.
    var found = 0
    for mailbox in 0..<mailboxes { found += try store(root: root, mailbox: mailbox, node: "check").sync(.inbox).messages.count }
    precondition(found == perProcess * processes, "lost deliveries: \(found) of \(perProcess * processes)")
    return Double(perProcess * processes) / seconds
}

print("svcpkg store benchmark: \(total) messages of 2 KiB per delivery run, root \(base)")
func row(_ label: String, _ value: String) { print(label.padding(toLength: 46, withPad: " ", startingAt: 0) + value) }
row("case", "result")
for (processes, mailboxes) in [(1, 1), (3, 1), (1, 1000), (3, 1000)] {
    let rate = try deliveries(processes: processes, mailboxes: mailboxes)
    row("deliver: \(processes) process(es) -> \(mailboxes) mailbox(es)", String(format: "%.0f msg/s", rate))
}

// Change poll on a large folder: build it once (deliver + one sync), then time polls.
let pollRoot = try freshRoot("poll")
let big = try store(root: pollRoot, mailbox: 0, node: "n1")
let built = Date()
for index in 0..<pollMessages { try big.deliver(message(index, size: 512)) }
let firstSync = Date()
let firstSnapshot = try big.sync(.inbox)
let syncSeconds = Date().timeIntervalSince(firstSync)
precondition(firstSnapshot.messages.count == pollMessages)
// A token taken within 1 s of a change counts as "maybe changed again in the same tick"
// (as Dovecot treats directory mtimes), so settle, then take the snapshot polls compare with.
Thread.sleep(forTimeInterval: 1.2)
let snapshot = try big.sync(.inbox)
row("build \(pollMessages)-message folder", String(format: "%.1f s (deliver) + %.1f s (first sync, UIDs)", firstSync.timeIntervalSince(built), syncSeconds))
let polls = 10_000
var start = Date()
var changed = 0
for _ in 0..<polls where snapshot.token.needsSync(current: try big.changeToken(.inbox)) { changed += 1 }
precondition(changed == 0, "a poll without changes said 'sync'")
row("change poll (no change), \(pollMessages) msgs", String(format: "%.1f µs", Date().timeIntervalSince(start) / Double(polls) * 1e6))
try big.deliver(message(pollMessages))
start = Date()
let noticed = snapshot.token.needsSync(current: try big.changeToken(.inbox))
row("change poll after a delivery", String(format: "%.1f µs (noticed: %@)", Date().timeIntervalSince(start) * 1e6, noticed ? "yes" : "NO"))
start = Date()
let resynced = try big.sync(.inbox)
row("sync picking up 1 new of \(resynced.messages.count)", String(format: "%.1f ms", Date().timeIntervalSince(start) * 1e3))
try? FileManager.default.removeItem(atPath: base)
