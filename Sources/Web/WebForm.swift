import Foundation

/// A file sent with a multipart/form-data form.
public struct UploadedFile: Sendable, Equatable {
    public var field: String
    public var filename: String
    public var contentType: String
    public var data: [UInt8]
}

/// The fields of a submitted form (application/x-www-form-urlencoded or multipart/form-data)
/// or of a query string. Input is hostile: the caller bounds the body size, this bounds the
/// number of fields and files.
public struct WebForm: Sendable, Equatable {
    public static let maxFields = 1000
    public static let maxFiles = 50

    public var fields: [Field]
    public var files: [UploadedFile]

    public struct Field: Sendable, Equatable {
        public var name: String
        public var value: String
    }

    public init(fields: [Field] = [], files: [UploadedFile] = []) {
        self.fields = fields
        self.files = files
    }

    public func first(_ name: String) -> String? { fields.first { $0.name == name }?.value }
    public func all(_ name: String) -> [String] { fields.filter { $0.name == name }.map(\.value) }

    public enum ParseError: Error, Equatable {
        case malformed(String)
    }

    /// `a=1&b=x+y%21` (WHATWG URL-encoded form: `+` is a space).
    public static func urlEncoded(_ text: Substring) -> WebForm {
        var form = WebForm()
        for pair in text.split(separator: "&", omittingEmptySubsequences: true).prefix(maxFields) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ value: Substring) -> String {
                let spaced = value.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            form.fields.append(Field(name: decode(parts[0]), value: parts.count > 1 ? decode(parts[1]) : ""))
        }
        return form
    }

    /// RFC 7578 multipart/form-data with the boundary from the Content-Type.
    public static func multipart(_ body: [UInt8], contentType: String) throws(ParseError) -> WebForm {
        guard let boundary = parameter("boundary", in: contentType), !boundary.isEmpty, boundary.utf8.count <= 200 else {
            throw .malformed("multipart/form-data without a boundary")
        }
        let delimiter = Array("--\(boundary)".utf8)
        var form = WebForm()
        var position = 0
        guard let first = find(delimiter, in: body, from: 0) else { throw .malformed("no boundary line in the body") }
        position = first + delimiter.count
        while true {
            // After a delimiter: `--` ends the body, else CRLF and a part.
            if position + 2 <= body.count, body[position] == 0x2d, body[position + 1] == 0x2d { break }
            guard let lineEnd = find([0x0d, 0x0a], in: body, from: position) else { throw .malformed("a part does not start") }
            let partStart = lineEnd + 2
            guard let next = find([0x0d, 0x0a] + delimiter, in: body, from: partStart) else {
                throw .malformed("a part does not end with the boundary")
            }
            try form.add(part: body[partStart..<next])
            guard form.fields.count <= maxFields, form.files.count <= maxFiles else { throw .malformed("too many fields or files") }
            position = next + 2 + delimiter.count
        }
        return form
    }

    private mutating func add(part: ArraySlice<UInt8>) throws(ParseError) {
        guard let headerEnd = Self.find([0x0d, 0x0a, 0x0d, 0x0a], in: part, from: part.startIndex) else {
            throw .malformed("a part has no header")
        }
        let header = String(decoding: part[part.startIndex..<headerEnd], as: UTF8.self)
        let content = Array(part[(headerEnd + 4)...])
        var disposition = ""
        var type = "application/octet-stream"
        for line in header.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name == "content-disposition" { disposition = value }
            if name == "content-type" { type = value }
        }
        guard let name = Self.parameter("name", in: disposition) else { throw .malformed("a part has no field name") }
        if let filename = Self.parameter("filename", in: disposition) {
            // An empty file input sends a part with an empty file name: no file.
            guard !filename.isEmpty || !content.isEmpty else { return }
            files.append(UploadedFile(field: name, filename: filename, contentType: type, data: content))
        } else {
            fields.append(Field(name: name, value: String(decoding: content, as: UTF8.self)))
        }
    }

    /// A `name=value` or `name="value"` parameter of a header value (browsers send quoted
    /// values with `"` escaped as `%22`, RFC 7578 §4.2).
    static func parameter(_ name: String, in value: String) -> String? {
        for piece in value.split(separator: ";").dropFirst() {
            let parts = piece.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces).lowercased() == name else { continue }
            var text = parts[1].trimmingCharacters(in: .whitespaces)
            if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 {
                text = String(text.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "%22", with: "\"")
            }
            return text
        }
        return nil
    }

    static func find<C: RandomAccessCollection<UInt8>>(_ needle: [UInt8], in haystack: C, from start: C.Index) -> C.Index? where C.Index == Int {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        let last = haystack.endIndex - needle.count
        var index = start
        let first = needle[0]
        while index <= last {
            if haystack[index] == first {
                var matched = true
                for offset in 1..<needle.count where haystack[index + offset] != needle[offset] {
                    matched = false
                    break
                }
                if matched { return index }
            }
            index += 1
        }
        return nil
    }
}

/// Percent-encoding for query values we put into links.
enum URLQuery {
    static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    static func encode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }
}
