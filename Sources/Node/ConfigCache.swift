import Directory
import Foundation
import SharedTree

/// The last good config on the node's local disk, so a node keeps serving when LDAP is away.
public struct ConfigCache: Sendable {
    public struct Contents: Codable, Sendable {
        public var savedAt: Date
        public var entries: ConfigEntries
        public var effective: EffectiveConfig
    }

    public let directory: String
    public init(directory: String) { self.directory = directory }

    public var path: String { directory + "/config-cache.json" }

    public func load() -> Contents? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try? decoder.decode(Contents.self, from: data)
    }

    /// Through `AtomicFile` (temp + fsync + rename + directory fsync), so a crash leaves
    /// either the old or the new cache.
    public func save(_ contents: Contents) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(contents)), to: path, mode: 0o600)
    }
}
