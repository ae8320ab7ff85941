import Directory
import Foundation
import Logging
import MailAuth
import NIOConcurrencyHelpers

/// DKIM signing of outgoing mail (RFC 6376) with the key and selector of the author's
/// domain from LDAP (svcpkgDkimSelector, svcpkgDkimKeyFile). Keys are read from disk once
/// and again when the file changes, so an operator rotates a key by replacing the file.
final class DKIMSigningService: Sendable {
    private struct LoadedKey {
        var path: String
        var modified: Date
        var key: DKIMSigningKey
    }

    private let keys = NIOLockedValueBox<[String: LoadedKey]>([:])
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// The message with a DKIM-Signature prepended when its From domain is one of ours with a
    /// key; unchanged otherwise (and when signing fails, which is logged: mail still goes out).
    /// Blocking (reads the key file): call on the file thread pool.
    func sign(_ message: [UInt8], domains: [String: MailDomain], now: Date = Date()) -> [UInt8] {
        guard let author = AuthorDomain.of(message), let domain = domains[author],
            let selector = domain.dkimSelector, let path = domain.dkimKeyFile
        else { return message }
        do {
            let key = try loadKey(path)
            let header = try DKIMSigner(domain: author, selector: selector, key: key).signatureHeader(for: message, now: now)
            return Array(header.utf8) + message
        } catch {
            logger.error("DKIM signing failed; sending unsigned", metadata: ["domain": "\(author)", "key": "\(path)", "error": "\(error)"])
            return message
        }
    }

    private func loadKey(_ path: String) throws -> DKIMSigningKey {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        let modified = attributes[.modificationDate] as? Date ?? .distantPast
        if let cached = keys.withLockedValue({ $0[path] }), cached.modified == modified { return cached.key }
        guard let size = attributes[.size] as? Int, size < 64 * 1024 else { throw DKIMKeyFileError.tooLarge(path) }
        let pem = try String(contentsOfFile: path, encoding: .utf8)
        let key = try DKIMSigningKey(pem: pem)
        keys.withLockedValue { $0[path] = LoadedKey(path: path, modified: modified, key: key) }
        return key
    }

    enum DKIMKeyFileError: Error, CustomStringConvertible {
        case tooLarge(String)
        var description: String {
            switch self {
            case .tooLarge(let path): return "\(path) is larger than 64 KiB: not a PEM key"
            }
        }
    }
}

/// The domain of the message's single From address (RFC 5322 §3.6.2), lowercased; nil when
/// there is no From, several, or no parsable address.
enum AuthorDomain {
    static func of(_ message: [UInt8]) -> String? {
        var values: [String] = []
        var current: String?
        var index = 0
        var lineStart = 0
        let limit = min(message.count, 256 * 1024)
        while index < limit {
            guard message[index] == 10 else { index += 1; continue }
            var line = message[lineStart..<index]
            if line.last == 13 { line = line.dropLast() }
            lineStart = index + 1
            index += 1
            if line.isEmpty { break }  // end of the header section
            let text = String(decoding: line, as: UTF8.self)
            if text.first == " " || text.first == "\t" {
                current? += text
                continue
            }
            if let value = current { values.append(value); current = nil }
            if text.lowercased().hasPrefix("from:") { current = String(text.dropFirst(5)) }
        }
        if let value = current { values.append(value) }
        guard values.count == 1, let value = values.first else { return nil }
        // The address is in <...> when there is a display name, else the whole value.
        var address = value
        if let open = value.lastIndex(of: "<"), let close = value.lastIndex(of: ">"), open < close {
            address = String(value[value.index(after: open)..<close])
        }
        address = address.trimmingCharacters(in: .whitespaces)
        guard let at = address.lastIndex(of: "@") else { return nil }
        let domain = address[address.index(after: at)...].trimmingCharacters(in: .whitespaces).lowercased()
        guard !domain.isEmpty, domain.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) else { return nil }
        return domain
    }
}
