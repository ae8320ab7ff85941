import MailMessage

/// ENVELOPE and BODYSTRUCTURE kept between sessions (the node-local message cache): message
/// files never change under a UID, so a summary keyed by folder, UIDVALIDITY and UID is good
/// for ever, and FETCH ENVELOPE or BODYSTRUCTURE of a cached message reads no file. Blocking:
/// call it on the file threads. Errors are the cache's; a FETCH then parses the files.
public protocol IMAPSummaryCache: Sendable {
    func summaries(user: String, folder: String, uidValidity: UInt32, uids: [UInt32]) throws -> [UInt32: ParsedSummary]
    func storeSummaries(user: String, folder: String, uidValidity: UInt32, _ summaries: [UInt32: ParsedSummary]) throws
}
