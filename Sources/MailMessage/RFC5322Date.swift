import Foundation

/// RFC 5322 §3.3 date-time, formatted without a DateFormatter per call.
public enum RFC5322Date {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func string(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let weekday = days[Int(parts.tm_wday) % 7]
        let month = months[Int(parts.tm_mon) % 12]
        return "\(weekday), \(two(parts.tm_mday)) \(month) \(parts.tm_year + 1900) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) +0000"
    }
}

/// The date of an RFC 5322 `Date:` field, as days since 1970 (RFC 9051 SENTBEFORE, SENTON,
/// SENTSINCE ignore time and zone). Tolerant: `[Day,] D Mon YYYY ...`, two-digit years.
public enum RFC5322DateDay {
    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    public static func parse(_ text: String) -> Int? {
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," || $0 == "\r" || $0 == "\n" }).map(String.init)
        if let first = words.first, Int(first) == nil { words.removeFirst() }
        guard words.count >= 3, let day = Int(words[0]), let monthIndex = months.firstIndex(of: String(words[1].prefix(3)).lowercased()),
            var year = Int(words[2])
        else { return nil }
        if year < 50 { year += 2000 } else if year < 1000 { year += 1900 }
        guard (1...9999).contains(year), day >= 1, day <= CivilCalendar.daysInMonth(year: year, month: monthIndex + 1) else { return nil }
        return CivilCalendar.daysSince1970(year: year, month: monthIndex + 1, day: day)
    }
}

/// Date and time of an RFC 5322 `Date:` field (obsolete forms tolerated); nil when unreadable.
public enum RFC5322DateTime {
    public static func parse(_ text: String) -> Date? {
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," || $0 == "\r" || $0 == "\n" }).map(String.init)
        if let first = words.first, Int(first) == nil { words.removeFirst() }
        guard words.count >= 4, let days = RFC5322DateDay.parse(words[0...2].joined(separator: " ")) else { return nil }
        let time = words[3].split(separator: ":").compactMap { Int($0) }
        guard time.count >= 2, (0..<24).contains(time[0]), (0..<60).contains(time[1]) else { return nil }
        var seconds = days * 86400 + time[0] * 3600 + time[1] * 60 + (time.count > 2 ? min(60, max(0, time[2])) : 0)
        if words.count > 4 {
            let zone = words[4]
            if let sign = zone.first, sign == "+" || sign == "-", zone.count == 5, let value = Int(zone.dropFirst()) {
                let offset = (value / 100) * 3600 + (value % 100) * 60
                seconds -= sign == "+" ? offset : -offset
            }
        }
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }
}

/// Days of the proleptic Gregorian calendar (IMAP dates and RFC 5322 dates share it).
public enum CivilCalendar {
    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 (negative before); Howard Hinnant's days_from_civil.
    public static func daysSince1970(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let mp = (month + 9) % 12
        let dayOfYear = (153 * mp + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
