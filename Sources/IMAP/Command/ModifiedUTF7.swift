/// RFC 3501 §5.1.3 modified UTF-7 for mailbox names: printable US-ASCII stands for itself
/// except `&`, written `&-`; everything else is UTF-16BE in modified base64 (`,` for `/`, no
/// padding) between `&` and `-`.
public enum ModifiedUTF7 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)

    public static func encode(_ name: String) -> [UInt8] {
        var output: [UInt8] = []
        var pending: [UInt16] = []

        func flush() {
            guard !pending.isEmpty else { return }
            output.append(UInt8(ascii: "&"))
            var bits: UInt32 = 0
            var bitCount = 0
            for unit in pending {
                bits = (bits << 16) | UInt32(unit)
                bitCount += 16
                while bitCount >= 6 {
                    bitCount -= 6
                    output.append(alphabet[Int((bits >> UInt32(bitCount)) & 0x3f)])
                }
                bits &= (1 << UInt32(bitCount)) - 1
            }
            if bitCount > 0 {
                output.append(alphabet[Int((bits << UInt32(6 - bitCount)) & 0x3f)])
            }
            output.append(UInt8(ascii: "-"))
            pending.removeAll()
        }

        for scalar in name.unicodeScalars {
            if scalar.value >= 0x20, scalar.value <= 0x7e {
                flush()
                output.append(UInt8(scalar.value))
                if scalar == "&" { output.append(UInt8(ascii: "-")) }
            } else {
                pending.append(contentsOf: scalar.utf16)
            }
        }
        flush()
        return output
    }

    /// Nil for anything but the canonical encoding of some name: 8-bit or control bytes, bad
    /// base64, unpaired surrogates, printable ASCII or `&` inside a shifted run, adjacent runs.
    /// Canonical only, so one name never has two spellings (two mailboxes that look the same).
    public static func decode(_ bytes: some Collection<UInt8>) -> String? {
        var scalars = String.UnicodeScalarView()
        var units: [UInt16] = []
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            guard byte >= 0x20, byte <= 0x7e else { return nil }
            guard byte == UInt8(ascii: "&") else {
                scalars.append(Unicode.Scalar(byte))
                continue
            }
            var bits: UInt32 = 0
            var bitCount = 0
            var sawAny = false
            units.removeAll(keepingCapacity: true)
            while true {
                guard let next = iterator.next() else { return nil }
                if next == UInt8(ascii: "-") { break }
                guard let value = alphabet.firstIndex(of: next) else { return nil }
                sawAny = true
                bits = (bits << 6) | UInt32(value)
                bitCount += 6
                if bitCount >= 16 {
                    bitCount -= 16
                    units.append(UInt16((bits >> UInt32(bitCount)) & 0xffff))
                    bits &= (1 << UInt32(bitCount)) - 1
                }
            }
            if !sawAny {
                scalars.append("&")
                continue
            }
            // Leftover bits must be fewer than 6 and zero.
            guard bitCount < 6, bits == 0, !units.isEmpty else { return nil }
            var decoded = String.UnicodeScalarView()
            var utf16 = units.makeIterator()
            var decoder = UTF16()
            decodeLoop: while true {
                switch decoder.decode(&utf16) {
                case .scalarValue(let scalar):
                    // Printable ASCII must not be base64-encoded.
                    guard scalar.value < 0x20 || scalar.value > 0x7e else { return nil }
                    decoded.append(scalar)
                case .emptyInput:
                    break decodeLoop
                case .error:
                    return nil
                }
            }
            scalars.append(contentsOf: decoded)
        }
        let name = String(scalars)
        // Adjacent shifted runs (`&AOQ-&APY-`) decode fine but are not canonical.
        guard encode(name).elementsEqual(bytes) else { return nil }
        return name
    }
}
