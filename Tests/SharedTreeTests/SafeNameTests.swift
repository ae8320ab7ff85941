import XCTest

@testable import SharedTree

final class SafeNameTests: XCTestCase {
    /// Rejected by every kind.
    let hostileForAll = [
        "", ".", "..", "../etc", "a/b", "/abs", "a\u{0}b", "a\u{1}b", "tab\there", "new\nline",
        "cr\rx", "del\u{7F}x", "c1\u{85}x", "a..b", "..hidden",
    ]

    func testEveryKindRejectsPathTricksAndControlCharacters() {
        let kinds: [SafeName.Kind] = [.node, .localPart, .domain, .folder, .fileName]
        for kind in kinds {
            for name in hostileForAll {
                XCTAssertFalse(SafeName.isValid(name, kind: kind), "\(kind) accepted \(name.debugDescription)")
                do {
                    _ = try SafeName(name, kind: kind)
                    XCTFail("\(kind) accepted \(name.debugDescription)")
                } catch {
                    guard case .invalidName(let reportedKind, let reportedName, let reason) = error else {
                        return XCTFail("unexpected \(error)")
                    }
                    XCTAssertEqual(reportedKind, kind.description)
                    XCTAssertEqual(reportedName, name)
                    XCTAssertFalse(reason.isEmpty)
                    XCTAssertFalse(error.description.contains("\n"), "one-line message for \(name.debugDescription)")
                }
            }
            let longest = kind == .domain
                ? [63, 63, 63, 61].map { String(repeating: "a", count: $0) }.joined(separator: ".")
                : String(repeating: "a", count: kind.maxBytes)
            XCTAssertTrue(SafeName.isValid(longest, kind: kind), "\(kind) at its limit")
            XCTAssertFalse(SafeName.isValid(longest + "a", kind: kind), "\(kind) over its limit")
        }
    }

    func testNodeNames() {
        for good in ["a", "node-1", "node_2.example", "N0DE", "a.b-c_d"] {
            XCTAssertTrue(SafeName.isValid(good, kind: .node), good)
        }
        for bad in [".a", "a b", "a:b", "é", "a@b", "a\\b"] {
            XCTAssertFalse(SafeName.isValid(bad, kind: .node), bad)
        }
    }

    func testLocalParts() {
        for good in ["john", "john.doe", "o'brien", "a+tag", "x_y-z", "!#$%&'*+-=?^_`{|}~", "UPPER", "-lead"] {
            XCTAssertTrue(SafeName.isValid(good, kind: .localPart), good)
        }
        for bad in [".john", "john.", "jo hn", "jo\"hn", "a@b", "a,b", "a\\b", "a(b)", "ü", "a:b", "a;b", "<a>"] {
            XCTAssertFalse(SafeName.isValid(bad, kind: .localPart), bad)
        }
    }

    func testDomains() throws {
        XCTAssertEqual(try SafeName("Example.COM", kind: .domain).value, "example.com")
        for good in ["example.com", "a.b.c.d", "xn--bcher-kva.example", "localhost", "1-2.example", String(repeating: "a", count: 63) + ".com"] {
            XCTAssertTrue(SafeName.isValid(good, kind: .domain), good)
        }
        let longLabel = String(repeating: "a", count: 64) + ".com"
        for bad in ["example.com.", ".example.com", "exa mple.com", "-a.com", "a-.com", "a_b.com", "bücher.example", "a..com", "a@b.com", longLabel, "[127.0.0.1]"] {
            XCTAssertFalse(SafeName.isValid(bad, kind: .domain), bad)
        }
        let tooLong = Array(repeating: String(repeating: "a", count: 60), count: 5).joined(separator: ".")
        XCTAssertFalse(SafeName.isValid(tooLong, kind: .domain))
    }

    func testFolders() {
        for good in ["INBOX", "Sent", "Archive.2024", "Entwürfe", "Work.Projects.Q3", "a b", "&AOQ-"] {
            XCTAssertTrue(SafeName.isValid(good, kind: .folder), good)
        }
        for bad in [".Sent", "Sent.", "a..b", "a\\b", "a/b", "x\u{2}y"] {
            XCTAssertFalse(SafeName.isValid(bad, kind: .folder), bad)
        }
        // The limit is in UTF-8 bytes: 67 three-byte characters are 201 bytes.
        XCTAssertFalse(SafeName.isValid(String(repeating: "€", count: 67), kind: .folder))
        XCTAssertTrue(SafeName.isValid(String(repeating: "€", count: 66), kind: .folder))
    }

    func testFileNames() {
        XCTAssertTrue(SafeName.isValid("uidlist", kind: .fileName))
        XCTAssertTrue(SafeName.isValid("a.b-c", kind: .fileName))
        XCTAssertFalse(SafeName.isValid(".hidden", kind: .fileName))
    }

    func testMessagesNameKindNameAndReason() {
        XCTAssertEqual(
            SharedTreeError.invalidName(kind: "user local part", name: "a/b", reason: "it contains \"/\"").description,
            "invalid user local part \"a/b\": it contains \"/\""
        )
        do {
            _ = try SafeName(String(repeating: "x", count: 65), kind: .localPart)
            XCTFail("accepted")
        } catch {
            XCTAssertTrue(error.description.contains("65 bytes long, the limit is 64"), error.description)
        }
    }
}
