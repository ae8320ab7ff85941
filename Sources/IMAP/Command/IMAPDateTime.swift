import MailMessage

/// A calendar date as in SEARCH (`1-Feb-1994`), validated against the Gregorian calendar.
public struct IMAPDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month),
              day >= 1, day <= Self.daysInMonth(year: year, month: month) else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// Days since 1970-01-01 (negative before).
    public var daysSince1970: Int {
        Self.daysFromCivil(year: year, month: month, day: day)
    }

    /// The date `days` after 1970-01-01.
    public init(daysSince1970 days: Int) {
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        self.year = min(max(year, 1), 9999)
        self.month = month
        self.day = day
    }

    public static func < (lhs: IMAPDate, rhs: IMAPDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    /// `1-Feb-1994`.
    public var description: String { "\(day)-\(Self.monthNames[month - 1])-\(year)" }

    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func daysInMonth(year: Int, month: Int) -> Int { CivilCalendar.daysInMonth(year: year, month: month) }

    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int { CivilCalendar.daysSince1970(year: year, month: month, day: day) }
}

/// `date-time` of APPEND and INTERNALDATE: `"17-Jul-1996 02:44:25 -0700"`.
public struct IMAPDateTime: Sendable, Hashable, CustomStringConvertible {
    public let date: IMAPDate
    public let hour: Int
    public let minute: Int
    public let second: Int
    /// Offset from UTC in minutes (`-0700` is -420).
    public let zoneMinutes: Int

    public init?(date: IMAPDate, hour: Int, minute: Int, second: Int, zoneMinutes: Int) {
        guard (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second),
              (-5999...5999).contains(zoneMinutes) else { return nil }
        self.date = date
        self.hour = hour
        self.minute = minute
        self.second = second
        self.zoneMinutes = zoneMinutes
    }

    /// The instant `seconds` after the epoch, shown in the zone `zoneMinutes` east of UTC.
    public init(secondsSince1970 seconds: Int64, zoneMinutes: Int = 0) {
        let zone = max(-5999, min(5999, zoneMinutes))
        let local = seconds + Int64(zone) * 60
        let days = local >= 0 ? local / 86_400 : (local - 86_399) / 86_400
        let secondOfDay = Int(local - days * 86_400)
        self.date = IMAPDate(daysSince1970: Int(days))
        self.hour = secondOfDay / 3600
        self.minute = secondOfDay / 60 % 60
        self.second = secondOfDay % 60
        self.zoneMinutes = zone
    }

    public var secondsSince1970: Int64 {
        Int64(date.daysSince1970) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(zoneMinutes) * 60
    }

    /// `17-Jul-1996 02:44:25 -0700` with the day padded to two characters by a space (date-day-fixed).
    public var description: String {
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let day = date.day < 10 ? " \(date.day)" : "\(date.day)"
        let sign = zoneMinutes < 0 ? "-" : "+"
        let zone = abs(zoneMinutes)
        return "\(day)-\(IMAPDate.monthNames[date.month - 1])-\(date.year) \(two(hour)):\(two(minute)):\(two(second)) \(sign)\(two(zone / 60))\(two(zone % 60))"
    }
}
