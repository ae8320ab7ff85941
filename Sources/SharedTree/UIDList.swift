/// The per-folder UID list, file `svcpkg-uidlist` in the folder directory. Written only with
/// `AtomicFile` under the folder lock (`svcpkg-uidlist.lock`, `LockFile`); read by anyone
/// at any time (a rename replaces it whole).
///
/// Format (text, one record per line, fields separated by one space):
/// ```
/// svcpkg-uidlist 1 uidvalidity=<n> uidnext=<n> highestmodseq=<n> expungefloor=<n>
/// <uid> <modseq> <flag letters or -> <size> <virtual size or -> <base name> [<keyword> ...]
/// x <uid>[-<uid>] <modseq>
/// ```
/// Message lines are in ascending UID order; `<base name>` is the Maildir file name before
/// `:2,`, with bytes up to space, DEL and `%` written as `%XX`. The flag letters repeat
/// what the file name says (the file name is the truth; the copy lets readers without the
/// lock build a snapshot, and lets `sync` notice flags changed by mutt and give them a
/// MODSEQ). `x` lines are the expunge log for QRESYNC (RFC 7162 §3.2.5): every expunge
/// with a MODSEQ above `expungefloor` is listed; older ones were trimmed to keep the log
/// bounded.
struct UIDList: Sendable, Equatable {
    static let fileName = "svcpkg-uidlist"
    static let magic = "svcpkg-uidlist"
    static let version = 1
    /// The largest list read: about 100 bytes a message, so over two million messages.
    static let maxBytes = 256 << 20
    /// Expunged UIDs kept for VANISHED answers.
    static let maxExpungeRecords = 10_000

    struct Entry: Sendable, Equatable {
        var uid: UInt32
        var modSeq: UInt64
        var info: MaildirInfo
        var size: Int
        var virtualSize: Int?
        var base: String
        /// Sorted, no duplicates.
        var keywords: [String]
    }

    struct ExpungeRecord: Sendable, Equatable {
        var uid: UInt32
        var modSeq: UInt64
    }

    var uidValidity: UInt32
    var uidNext: UInt32
    var highestModSeq: UInt64
    /// Every expunge with a MODSEQ above this is in `expunged`.
    var expungeFloor: UInt64
    var entries: [Entry]
    /// In the order recorded (ascending MODSEQ).
    var expunged: [ExpungeRecord]

    init(uidValidity: UInt32) {
        self.uidValidity = uidValidity
        self.uidNext = 1
        self.highestModSeq = 1
        self.expungeFloor = 0
        self.entries = []
        self.expunged = []
    }

    // MARK: - Expunge log

    mutating func recordExpunged(_ uids: [UInt32], modSeq: UInt64) {
        expunged += uids.sorted().map { ExpungeRecord(uid: $0, modSeq: modSeq) }
        guard expunged.count > Self.maxExpungeRecords else { return }
        // Drop whole MODSEQ groups from the old end, so "complete above the floor" stays exact.
        var cut = expunged.count - Self.maxExpungeRecords
        let floor = expunged[cut - 1].modSeq
        while cut < expunged.count && expunged[cut].modSeq == floor { cut += 1 }
        expunged.removeFirst(cut)
        expungeFloor = max(expungeFloor, floor)
    }

    // MARK: - Encoding

    func encoded() -> [UInt8] {
        var out = "\(Self.magic) \(Self.version) uidvalidity=\(uidValidity) uidnext=\(uidNext) highestmodseq=\(highestModSeq) expungefloor=\(expungeFloor)\n"
        out.reserveCapacity(64 + entries.count * 100 + expunged.count * 16)
        for entry in entries {
            let letters = entry.info.letters
            out += "\(entry.uid) \(entry.modSeq) \(letters.isEmpty ? "-" : letters) \(entry.size) "
            out += entry.virtualSize.map(String.init) ?? "-"
            out += " " + Self.escapeBase(entry.base)
            for keyword in entry.keywords { out += " " + keyword }
            out += "\n"
        }
        var index = 0
        while index < expunged.count {
            let first = expunged[index]
            var last = first.uid
            var next = index + 1
            while next < expunged.count, expunged[next].modSeq == first.modSeq, expunged[next].uid == last &+ 1 {
                last = expunged[next].uid
                next += 1
            }
            out += last == first.uid ? "x \(first.uid) \(first.modSeq)\n" : "x \(first.uid)-\(last) \(first.modSeq)\n"
            index = next
        }
        return Array(out.utf8)
    }

    /// Parses a list; `path` is for the error message. Order and uniqueness are not
    /// checked here (`sync` repairs them, `checkConsistency` reports them).
    static func decode(_ bytes: [UInt8], path: String) throws(SharedTreeError) -> UIDList {
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)[...]
        guard let header = lines.popFirst() else {
            throw .malformedFile(path: path, reason: "it is empty")
        }
        let headerFields = header.split(separator: UInt8(ascii: " "))
        guard headerFields.count >= 2, String(decoding: headerFields[0], as: UTF8.self) == magic else {
            throw .malformedFile(path: path, reason: "the first line does not start with \"\(magic)\"")
        }
        guard String(decoding: headerFields[1], as: UTF8.self) == String(version) else {
            throw .malformedFile(path: path, reason: "unknown version \(String(decoding: headerFields[1], as: UTF8.self)) (this svcpkg reads version \(version))")
        }
        var values: [String: UInt64] = [:]
        for field in headerFields.dropFirst(2) {
            let text = String(decoding: field, as: UTF8.self)
            guard let equals = text.firstIndex(of: "="), let value = UInt64(text[text.index(after: equals)...]) else {
                throw .malformedFile(path: path, reason: "bad header field \(quoted(text))")
            }
            values[String(text[..<equals])] = value
        }
        guard let validity = values["uidvalidity"].flatMap(UInt32.init(exactly:)), validity > 0,
            let next = values["uidnext"].flatMap(UInt32.init(exactly:)),
            let highest = values["highestmodseq"]
        else {
            throw .malformedFile(path: path, reason: "the header lacks uidvalidity, uidnext or highestmodseq")
        }
        var list = UIDList(uidValidity: validity)
        list.uidNext = next
        list.highestModSeq = highest
        list.expungeFloor = values["expungefloor"] ?? 0
        var lineNumber = 1
        for line in lines {
            lineNumber += 1
            let fields = line.split(separator: UInt8(ascii: " "))
            if fields.first.map({ $0.elementsEqual([UInt8(ascii: "x")]) }) == true {
                guard fields.count == 3, let modSeq = UInt64(String(decoding: fields[2], as: UTF8.self)) else {
                    throw .malformedFile(path: path, reason: "line \(lineNumber): bad expunge record")
                }
                let range = String(decoding: fields[1], as: UTF8.self)
                let bounds = range.split(separator: "-").map { UInt32($0) }
                guard bounds.count == 1 || bounds.count == 2, let first = bounds[0], let last = bounds[bounds.count - 1], first <= last,
                    last - first < UInt32(maxExpungeRecords * 2)
                else {
                    throw .malformedFile(path: path, reason: "line \(lineNumber): bad expunge range \(quoted(range))")
                }
                for uid in first...last { list.expunged.append(ExpungeRecord(uid: uid, modSeq: modSeq)) }
                continue
            }
            guard fields.count >= 6,
                let uid = number(fields[0]).flatMap(UInt32.init(exactly:)),
                let modSeq = number(fields[1]),
                let size = number(fields[3]).flatMap(Int.init(exactly:))
            else {
                throw .malformedFile(path: path, reason: "line \(lineNumber): bad message record")
            }
            let isDash = fields[4].elementsEqual([UInt8(ascii: "-")])
            guard let base = unescapeBase(String(decoding: fields[5], as: UTF8.self)), isDash || number(fields[4]) != nil else {
                throw .malformedFile(path: path, reason: "line \(lineNumber): bad file name or size")
            }
            let info = fields[2].elementsEqual([UInt8(ascii: "-")]) ? MaildirInfo() : MaildirInfo(letters: Substring(String(decoding: fields[2], as: UTF8.self)).utf8)
            var keywords: [String] = []
            if fields.count > 6 {
                keywords = Array(Set(fields.dropFirst(6).map { String(decoding: $0, as: UTF8.self) })).sorted()
            }
            list.entries.append(Entry(
                uid: uid, modSeq: modSeq, info: info, size: size, virtualSize: isDash ? nil : number(fields[4]).flatMap(Int.init(exactly:)),
                base: base, keywords: keywords))
        }
        return list
    }

    /// A decimal number of at most 19 digits.
    static func number(_ digits: ArraySlice<UInt8>) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 19 else { return nil }
        var value: UInt64 = 0
        for byte in digits {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            value = value * 10 + UInt64(byte - 0x30)
        }
        return value
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    static func escapeBase(_ base: String) -> String {
        guard base.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "%") }) else { return base }
        var out: [UInt8] = []
        for byte in base.utf8 {
            if byte <= 0x20 || byte == 0x7F || byte == UInt8(ascii: "%") {
                out += [UInt8(ascii: "%"), hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func unescapeBase(_ text: String) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return text }
        return MailFolderName.unescape(text)
    }
}

/// IMAP keywords (RFC 9051 §9 `flag-keyword`: an atom).
enum Keywords {
    /// The longest keyword accepted, in bytes.
    static let maxBytes = 100
    /// The most keywords one message may carry.
    static let maxPerMessage = 64

    static func validate(_ keyword: String) throws(MailStoreError) {
        let bytes = Array(keyword.utf8)
        if bytes.isEmpty { throw .invalidKeyword(keyword: keyword, reason: "it is empty") }
        if bytes.count > maxBytes { throw .invalidKeyword(keyword: keyword, reason: "it is longer than \(maxBytes) bytes") }
        if bytes.first == UInt8(ascii: "\\") {
            throw .invalidKeyword(keyword: keyword, reason: "system flags start with \"\\\"; keywords cannot")
        }
        let specials = Array("(){%*\"\\]".utf8)
        if let bad = bytes.first(where: { $0 <= 0x20 || $0 >= 0x7F || specials.contains($0) }) {
            throw .invalidKeyword(keyword: keyword, reason: "byte 0x\(String(bad, radix: 16)) is not an atom character (RFC 9051 §9)")
        }
    }
}
