import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The flag change log of a folder, file `svcpkg-uidlist.log` beside its UID list: what
/// `MailStore.store` changed (flags, keywords, MODSEQ) since the list was last written
/// whole, so a one-message change costs one append instead of rewriting (and every reader
/// re-parsing) a list of 100,000 entries. Appended only under the folder lock.
///
/// Format:
/// ```
/// svcpkg-uidlog 1 logid=<n>\n
/// +<body length> <FNV-1a 64 of the body, 16 lowercase hex digits>\n<body>
/// +...
/// ```
/// The header's `logid` names the list the log belongs to: the UID list's header carries
/// the same `logid=<n>`, a new random number each time the list is written whole. A body is
/// one line per message changed, `<uid> <modseq> <flag letters or -> [<keyword> ...]\n`,
/// giving the message's whole state after the change. One `store` is one record.
///
/// Rules:
/// - The state of the folder is the list with the log's records applied in order; a record
///   line applies only when its MODSEQ is above the entry's, so a record that is already in
///   the list changes nothing.
/// - A record that is cut short or fails its checksum (a writer died during the append)
///   ends the log for readers: it and everything after it are ignored. A writer that finds
///   such a tail does not append after it; it writes the list whole instead.
/// - A log whose `logid` is not the list's is stale (the list was written whole after it,
///   with its records folded in) and is ignored, once a second look at the list shows the
///   list did not change meanwhile. Writing the list whole removes the log afterwards.
/// - The log is written whole (temp + rename) when it is created, then appended with one
///   `write` per record; appends are not fsynced, as flag commits of the list are not.
/// - Past `maxChanges` lines (or `maxAppendBytes`) the next `store` writes the list whole; so does
///   every sync that gives out UIDs or records expunges.
enum UIDListLog {
    static let fileName = "svcpkg-uidlist.log"
    static let magic = "svcpkg-uidlog"
    static let version = 1
    /// Lines in the log before the next store folds them into the list.
    static let maxChanges = 10_000
    /// The largest log read (a full log plus one record of `maxChangesPerRecord` lines of
    /// 64 keywords); a bigger one is not ours and is ignored.
    static let maxBytes = 16 << 20
    /// The most message lines one record carries; a bigger STORE writes the list whole.
    static let maxChangesPerRecord = 1_000
    /// A log this long is folded into the list by the next store.
    static let maxAppendBytes = 1 << 20

    /// One message's state after a change.
    struct Change: Sendable, Equatable {
        var uid: UInt32
        var modSeq: UInt64
        var info: MaildirInfo
        /// Sorted, no duplicates.
        var keywords: [String]
    }

    /// What reading the log found.
    struct Contents: Sendable, Equatable {
        var logID: UInt64
        /// The records that read whole, in order, flattened.
        var changes: [Change] = []
        /// Whole records read.
        var records: Int = 0
        /// Bytes up to the end of the last whole record (the header when none).
        var validLength: Int
        /// True when bytes follow the last whole record (a torn append, or an append in
        /// progress when read without the lock).
        var torn: Bool = false
    }

    static func header(logID: UInt64) -> [UInt8] {
        Array("\(magic) \(version) logid=\(logID)\n".utf8)
    }

    static func record(_ changes: [Change]) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(changes.count * 24)
        for change in changes {
            appendDecimal(UInt64(change.uid), to: &body)
            body.append(UInt8(ascii: " "))
            appendDecimal(change.modSeq, to: &body)
            body.append(UInt8(ascii: " "))
            let letters = change.info.letters
            if letters.isEmpty { body.append(UInt8(ascii: "-")) } else { body += letters.utf8 }
            for keyword in change.keywords {
                body.append(UInt8(ascii: " "))
                body += keyword.utf8
            }
            body.append(UInt8(ascii: "\n"))
        }
        var out = Array("+\(body.count) ".utf8)
        let hash = fnv1a64(body[...])
        for shift in stride(from: 60, through: 0, by: -4) {
            out.append(hexDigits[Int((hash >> UInt64(shift)) & 0xF)])
        }
        out.append(UInt8(ascii: "\n"))
        return out + body
    }

    /// The header's log id and length; nil when the header is not whole or not ours.
    static func parseHeader(_ bytes: ArraySlice<UInt8>) -> (logID: UInt64, length: Int)? {
        guard let newline = bytes.prefix(128).firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let fields = bytes[bytes.startIndex..<newline].split(separator: UInt8(ascii: " "))
        guard fields.count >= 3, fields[0].elementsEqual(magic.utf8), fields[1].elementsEqual(String(version).utf8) else { return nil }
        var logID: UInt64?
        for field in fields.dropFirst(2) where field.starts(with: "logid=".utf8) {
            logID = UInt64(String(decoding: field.dropFirst("logid=".utf8.count), as: UTF8.self))
        }
        guard let logID else { return nil }
        return (logID, newline + 1 - bytes.startIndex)
    }

    /// Parses a whole log.
    static func parse(_ bytes: [UInt8]) -> Contents? {
        guard let header = parseHeader(bytes[...]) else { return nil }
        var contents = Contents(logID: header.logID, validLength: header.length)
        parseRecords(bytes[header.length...], into: &contents)
        return contents
    }

    /// Reads records from `bytes` (which start at `contents.validLength` of the file) until
    /// the end or the first record that is not whole, adding to `contents`.
    static func parseRecords(_ bytes: ArraySlice<UInt8>, into contents: inout Contents) {
        var offset = bytes.startIndex
        contents.torn = false
        while offset < bytes.endIndex {
            guard let (changes, length) = parseRecord(bytes[offset...]) else {
                contents.torn = true
                return
            }
            contents.changes += changes
            contents.records += 1
            contents.validLength += length
            offset += length
        }
    }

    /// One record at the start of `bytes`: its lines and its length; nil when it is not whole.
    static func parseRecord(_ bytes: ArraySlice<UInt8>) -> ([Change], Int)? {
        guard bytes.first == UInt8(ascii: "+"), let newline = bytes.prefix(40).firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let fields = bytes[(bytes.startIndex + 1)..<newline].split(separator: UInt8(ascii: " "))
        guard fields.count == 2, fields[1].count == 16, let length = UIDList.number(fields[0]).flatMap(Int.init(exactly:)),
            length <= maxBytes, bytes.endIndex - (newline + 1) >= length
        else { return nil }
        let body = bytes[(newline + 1)..<(newline + 1 + length)]
        guard body.last == UInt8(ascii: "\n"), hex(fields[1]) == fnv1a64(body) else { return nil }
        var changes: [Change] = []
        for line in body.split(separator: UInt8(ascii: "\n")) {
            let parts = line.split(separator: UInt8(ascii: " "))
            guard parts.count >= 3, let uid = UIDList.number(parts[0]).flatMap(UInt32.init(exactly:)), let modSeq = UIDList.number(parts[1]) else { return nil }
            let info = parts[2].elementsEqual([UInt8(ascii: "-")]) ? MaildirInfo() : MaildirInfo(letters: Substring(String(decoding: parts[2], as: UTF8.self)).utf8)
            var keywords: [String] = []
            if parts.count > 3 { keywords = Array(Set(parts.dropFirst(3).map { String(decoding: $0, as: UTF8.self) })).sorted() }
            changes.append(Change(uid: uid, modSeq: modSeq, info: info, keywords: keywords))
        }
        return (changes, newline + 1 + length - bytes.startIndex)
    }

    static func fnv1a64(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    private static func hex(_ digits: ArraySlice<UInt8>) -> UInt64? {
        var value: UInt64 = 0
        for byte in digits {
            guard let digit = hexDigits.firstIndex(of: byte) else { return nil }
            value = value << 4 | UInt64(digit)
        }
        return value
    }

    static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        if value == 0 {
            out.append(UInt8(ascii: "0"))
            return
        }
        var digits: [UInt8] = []
        var rest = value
        while rest > 0 {
            digits.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        }
        out += digits.reversed()
    }

    /// A random log id (never 0, which means "none"; at most 19 digits).
    static func newLogID() -> UInt64 {
        UInt64.random(in: 1...UInt64(Int64.max))
    }
}

extension UIDList {
    /// The index of the entry with `uid`, by binary search (entries ascending by UID).
    func index(ofUID uid: UInt32) -> Int? {
        var low = 0
        var high = entries.count - 1
        while low <= high {
            let middle = (low + high) / 2
            let candidate = entries[middle].uid
            if candidate == uid { return middle }
            if candidate < uid { low = middle + 1 } else { high = middle - 1 }
        }
        return nil
    }
}
