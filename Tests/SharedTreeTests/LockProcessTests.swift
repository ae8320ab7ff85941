import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import SharedTree

/// Environment variables that turn a run of this test binary into a lock worker process.
enum WorkerEnvironment {
    static let mode = "SHAREDTREE_LOCK_WORKER"
    static let directory = "SHAREDTREE_LOCK_DIR"
    static let node = "SHAREDTREE_LOCK_NODE"
    static let count = "SHAREDTREE_LOCK_COUNT"
    static let stale = "SHAREDTREE_LOCK_STALE"
    static let keeperMilliseconds = "SHAREDTREE_LOCK_KEEPER_MS"
    /// In "increment" mode: abandon the lock (as if crashed) on this iteration.
    static let abandonAt = "SHAREDTREE_LOCK_ABANDON_AT"
    /// The XCTest selector of the worker entry point.
    static let selector = "SharedTreeTests.LockWorkerProcess/testWorkerEntryPoint"
}

/// Not a test on its own: the entry point of the worker processes that `LockProcessTests`
/// starts by running this same test binary with `WorkerEnvironment.mode` set. In a normal
/// test run it returns at once.
final class LockWorkerProcess: XCTestCase {
    func testWorkerEntryPoint() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let mode = environment[WorkerEnvironment.mode] else { return }
        let directory = try XCTUnwrap(environment[WorkerEnvironment.directory])
        let node = try XCTUnwrap(environment[WorkerEnvironment.node])
        let stale = Double(environment[WorkerEnvironment.stale] ?? "") ?? 30
        let options = LockOptions(staleTimeout: stale, timeout: 120, initialBackoff: 0.001, maxBackoff: 0.02)
        switch mode {
        case "increment":
            let count = Int(environment[WorkerEnvironment.count] ?? "") ?? 1
            let abandonAt = Int(environment[WorkerEnvironment.abandonAt] ?? "") ?? -1
            var committed = 0
            for iteration in 0..<count {
                let lock = try await LockFile.acquire(name: "counter", in: directory, node: node, options: options)
                if iteration == abandonAt { continue }
                if try incrementCounterIfStillHeld(in: directory, under: lock) { committed += 1 }
                _ = try lock.release()
            }
            try AtomicFile.write(Array("\(committed)".utf8), to: directory + "/done-" + node)
        case "hold":
            let lock = try await LockFile.acquire(name: "held", in: directory, node: node, options: options)
            let interval = Int(environment[WorkerEnvironment.keeperMilliseconds] ?? "") ?? 200
            let keeper = lock.startKeeper(interval: .milliseconds(interval))
            try AtomicFile.write(Array("\(getpid())".utf8), to: directory + "/ready-" + node)
            // Hold until killed.
            try await Task.sleep(for: .seconds(120))
            keeper.cancel()
        default:
            XCTFail("unknown worker mode \(mode)")
        }
    }
}

final class LockProcessTests: XCTestCase {
    private func spawnWorker(_ mode: String, directory: String, node: String, extra: [String: String] = [:]) throws -> Process {
        #if os(Linux)
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        #else
        throw XCTSkip("worker processes re-run the test binary through /proc/self/exe")
        #endif
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [WorkerEnvironment.selector]
        var environment = ProcessInfo.processInfo.environment
        environment[WorkerEnvironment.mode] = mode
        environment[WorkerEnvironment.directory] = directory
        environment[WorkerEnvironment.node] = node
        environment.merge(extra) { $1 }
        process.environment = environment
        let log = directory + "/../" + PathUtil.lastComponent(of: directory) + "-" + node + ".log"
        guard FileManager.default.createFile(atPath: log, contents: nil) else {
            throw SharedTreeError.io(operation: "create", path: log, code: errno)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    private func workerLog(_ directory: String, _ node: String) -> String {
        let log = directory + "/../" + PathUtil.lastComponent(of: directory) + "-" + node + ".log"
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? "(no log)"
        return String(text.suffix(3000))
    }

    private func removeLogs(_ directory: String, nodes: [String]) {
        for node in nodes {
            try? FileManager.default.removeItem(atPath: directory + "/../" + PathUtil.lastComponent(of: directory) + "-" + node + ".log")
        }
    }

    /// Separate processes plus threads of this one increment one counter under the lock.
    func testProcessesAndThreadsNeverLoseAnIncrement() throws {
        let temp = try TemporaryDirectory()
        let nodes = (1...4).map { "proc-\($0)" }
        defer {
            removeLogs(temp.path, nodes: nodes)
            temp.remove()
        }
        let perWorker = 25
        let workers = try nodes.map { node in
            try spawnWorker("increment", directory: temp.path, node: node, extra: [WorkerEnvironment.count: "\(perWorker)"])
        }
        let options = LockOptions(staleTimeout: 30, timeout: 120, initialBackoff: 0.001, maxBackoff: 0.02)
        let failures = runThreads(2) { index in
            for _ in 0..<perWorker {
                let lock = try LockFile.acquire(name: "counter", in: temp.path, node: "thread-\(index)", options: options)
                try incrementCounter(in: temp.path, under: lock)
                guard try lock.release() else {
                    throw MutualExclusionViolation(description: "lock lost before release")
                }
            }
        }
        XCTAssertEqual(failures, [])
        for (worker, node) in zip(workers, nodes) {
            worker.waitUntilExit()
            XCTAssertEqual(worker.terminationStatus, 0, "worker \(node) failed:\n\(workerLog(temp.path, node))")
        }
        XCTAssertEqual(try readCounter(in: temp.path), (nodes.count + 2) * perWorker)
        XCTAssertEqual(try lockResidue(temp.path), [])
    }

    /// Holders in threads and processes that "crash" (abandon the lock without releasing
    /// it) while others wait: their locks go stale and are broken under contention, and
    /// every committed increment is still counted exactly once.
    func testAbandonedLocksUnderContentionLoseNoIncrement() throws {
        let temp = try TemporaryDirectory()
        let nodes = (1...3).map { "proc-\($0)" }
        defer {
            removeLogs(temp.path, nodes: nodes)
            temp.remove()
        }
        let perWorker = 8
        let stale = 0.5
        let workers = try nodes.enumerated().map { index, node in
            try spawnWorker("increment", directory: temp.path, node: node, extra: [
                WorkerEnvironment.count: "\(perWorker)", WorkerEnvironment.stale: "\(stale)",
                WorkerEnvironment.abandonAt: "\(index + 2)",
            ])
        }
        let options = LockOptions(staleTimeout: stale, timeout: 120, initialBackoff: 0.001, maxBackoff: 0.02)
        let committed = Counter()
        let failures = runThreads(2) { index in
            for iteration in 0..<perWorker {
                let lock = try LockFile.acquire(name: "counter", in: temp.path, node: "thread-\(index)", options: options)
                if iteration == index + 4 { continue }
                if try incrementCounterIfStillHeld(in: temp.path, under: lock) { committed.add(1) }
                _ = try lock.release()
            }
        }
        XCTAssertEqual(failures, [])
        var total = committed.value
        for (worker, node) in zip(workers, nodes) {
            worker.waitUntilExit()
            XCTAssertEqual(worker.terminationStatus, 0, "worker \(node) failed:\n\(workerLog(temp.path, node))")
            let done = try AtomicFile.read(temp.file("done-" + node), maxBytes: 16)
            total += Int(String(decoding: done, as: UTF8.self)) ?? -1000
        }
        XCTAssertGreaterThan(total, 0)
        XCTAssertEqual(try readCounter(in: temp.path), total, "every committed increment counted once")
        // The last abandoned lock may still be there (nobody came after it); nothing else is.
        let residue = try lockResidue(temp.path)
        XCTAssertLessThanOrEqual(residue.count, 2, "\(residue)")
        XCTAssertTrue(residue.allSatisfy { $0 == "counter.lock" || $0.hasPrefix("counter.lock.tmp.") }, "\(residue)")
    }

    /// A holder that is SIGKILLed stops touching its lock; another process may break it
    /// once, and only once, it is older than the stale timeout.
    func testKilledHolderIsBrokenOnlyAfterTheStaleTimeout() throws {
        let temp = try TemporaryDirectory()
        defer {
            removeLogs(temp.path, nodes: ["holder"])
            temp.remove()
        }
        let stale = 1.5
        let holder = try spawnWorker("hold", directory: temp.path, node: "holder", extra: [
            WorkerEnvironment.stale: "\(stale)", WorkerEnvironment.keeperMilliseconds: "200",
        ])
        defer {
            if holder.isRunning { kill(holder.processIdentifier, SIGKILL) }
        }
        let ready = temp.file("ready-holder")
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: ready) {
            XCTAssertTrue(holder.isRunning, "holder exited early:\n\(workerLog(temp.path, "holder"))")
            guard holder.isRunning, Date() < deadline else { return XCTFail("holder never got ready") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let options = LockOptions(staleTimeout: stale, timeout: 15, initialBackoff: 0.005, maxBackoff: 0.1)

        // Alive, the keeper keeps the lock fresh well past the stale timeout.
        Thread.sleep(forTimeInterval: stale + 1)
        XCTAssertNil(try LockFile.tryAcquire(name: "held", in: temp.path, node: "taker", options: options))
        let alive = try XCTUnwrap(LockFile.holder(name: "held", in: temp.path))
        XCTAssertEqual(alive.node, "holder")
        XCTAssertEqual(alive.pid, holder.processIdentifier)

        XCTAssertEqual(kill(holder.processIdentifier, SIGKILL), 0)
        holder.waitUntilExit()
        let lastTouch = try modificationTime(temp.file("held.lock"))
        XCTAssertNil(try LockFile.tryAcquire(name: "held", in: temp.path, node: "taker", options: options), "not broken right after the kill")

        let lock = try LockFile.acquire(name: "held", in: temp.path, node: "taker", options: options)
        let acquiredAt = Date()
        XCTAssertGreaterThan(acquiredAt.timeIntervalSince(lastTouch), stale, "broken only once older than the stale timeout")
        XCTAssertLessThan(acquiredAt.timeIntervalSince(lastTouch), stale + 3, "and soon after")
        XCTAssertEqual(try readRecord(lock.path).node, "taker")
        XCTAssertTrue(try lock.release())
        XCTAssertEqual(try lockResidue(temp.path), [], "the dead holder's unique file is cleaned up too")
    }
}
