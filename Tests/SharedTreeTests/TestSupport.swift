import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@testable import SharedTree

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(_ label: String = "sharedtree") throws {
        var template = Array("/tmp/\(label).XXXXXX".utf8CString)
        guard let result = mkdtemp(&template) else {
            throw SharedTreeError.io(operation: "mkdtemp", path: "/tmp", code: errno)
        }
        path = String(cString: result)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Sets a file's mtime (and atime) to `secondsAgo` before the local clock; on a local disk
/// the local clock is the "file server" clock.
func setModificationTime(_ path: String, secondsAgo: Double) throws {
    let when = Date().timeIntervalSince1970 - secondsAgo
    let seconds = floor(when)
    let micros = Int((when - seconds) * 1_000_000)
    var times = [
        timeval(tv_sec: Int(seconds), tv_usec: micros),
        timeval(tv_sec: Int(seconds), tv_usec: micros),
    ]
    guard utimes(path, &times) == 0 else {
        throw SharedTreeError.io(operation: "utimes", path: path, code: errno)
    }
}

func modificationTime(_ path: String) throws -> Date {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    guard let date = attributes[.modificationDate] as? Date else {
        throw SharedTreeError.malformedFile(path: path, reason: "no modification date")
    }
    return date
}

func fileMode(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? Int) ?? -1
}

func listing(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
}

func writeText(_ text: String, to path: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

/// Asserts that `body` throws a `SharedTreeError` and returns it for further checks.
@discardableResult
func assertThrowsSharedTreeError<T>(
    _ body: () throws(SharedTreeError) -> T,
    file: StaticString = #filePath,
    line: UInt = #line
) -> SharedTreeError? {
    do {
        let value = try body()
        XCTFail("expected a SharedTreeError, got \(value)", file: file, line: line)
        return nil
    } catch {
        return error
    }
}
