import Logging
import NIOConcurrencyHelpers

/// The process-wide log level, changed live when `svcpkgLogLevel` changes in LDAP.
public enum NodeLogLevel {
    static let current = NIOLockedValueBox<Logger.Level>(.info)

    public static func set(_ level: Logger.Level) { current.withLockedValue { $0 = level } }
    public static var level: Logger.Level { current.withLockedValue { $0 } }

    public static func parse(_ text: String) -> Logger.Level {
        switch text {
        case "trace": return .trace
        case "debug": return .debug
        case "notice": return .notice
        case "warning": return .warning
        case "error": return .error
        case "critical": return .critical
        default: return .info
        }
    }

    /// Bootstraps swift-log once per process: lines on stderr, level from `NodeLogLevel`.
    public static func bootstrap() {
        LoggingSystem.bootstrap { label in DynamicLevelLogHandler(base: StreamLogHandler.standardError(label: label)) }
    }
}

/// Forwards to `StreamLogHandler` but takes its level from `NodeLogLevel`, so an LDAP change
/// applies to every logger at once without a restart.
struct DynamicLevelLogHandler: LogHandler {
    var base: StreamLogHandler

    var logLevel: Logger.Level {
        get { NodeLogLevel.level }
        set { }  // the level belongs to LDAP, not to individual loggers
    }

    var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        base.log(event: event)
    }
}
