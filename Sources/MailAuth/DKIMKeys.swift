import Crypto
import Foundation
import _CryptoExtras

/// RFC 6376 §3.3 with RFC 8301 (no rsa-sha1) and RFC 8463 (Ed25519).
public enum DKIMAlgorithm: String, Sendable, Equatable {
    case rsaSHA256 = "rsa-sha256"
    case ed25519SHA256 = "ed25519-sha256"

    /// The key record's k= for this algorithm.
    var keyType: String {
        switch self {
        case .rsaSHA256: "rsa"
        case .ed25519SHA256: "ed25519"
        }
    }
}

/// Why a signing key could not be loaded, for the operator who configured it.
public enum DKIMKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    case noPEMBlock
    case unsupportedPEMType(String)
    case malformedKey(String)
    case rsaKeyTooSmall(bits: Int)

    public var description: String {
        switch self {
        case .noPEMBlock: "no PEM block (-----BEGIN ...-----) in the DKIM key"
        case .unsupportedPEMType(let label):
            "DKIM key PEM type \"\(label)\" is not supported: use an unencrypted PKCS#8 \"PRIVATE KEY\" (RSA or Ed25519) or PKCS#1 \"RSA PRIVATE KEY\""
        case .malformedKey(let why): "DKIM key cannot be read: \(why)"
        case .rsaKeyTooSmall(let bits): "DKIM RSA key has \(bits) bits; RFC 8301 requires at least 1024 (2048 recommended)"
        }
    }
}

/// A private key for DKIM signing, RSA or Ed25519, loaded from PEM.
public struct DKIMSigningKey: Sendable {
    enum Backing: Sendable {
        case rsa(_RSA.Signing.PrivateKey)
        /// The 32-byte seed: swift-crypto 3.x does not mark Curve25519 keys Sendable, so the
        /// key object is made when needed.
        case ed25519(seed: [UInt8])
    }

    let backing: Backing

    public var algorithm: DKIMAlgorithm {
        switch backing {
        case .rsa: .rsaSHA256
        case .ed25519: .ed25519SHA256
        }
    }

    /// RSA keys of 1024 bits or more (RFC 8301 §3.2: signers MUST use at least 1024, SHOULD
    /// use 2048) as PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY"; Ed25519 keys as PKCS#8
    /// "PRIVATE KEY" (what `openssl genpkey -algorithm ed25519` writes). The type is detected.
    public init(pem: String) throws(DKIMKeyError) {
        guard let block = PEM.firstBlock(in: pem) else { throw .noPEMBlock }
        switch block.label {
        case "RSA PRIVATE KEY":
            backing = .rsa(try Self.rsaKey(der: block.der))
        case "PRIVATE KEY":
            switch PKCS8.algorithm(of: block.der) {
            case .rsa:
                backing = .rsa(try Self.rsaKey(der: block.der))
            case .ed25519(let seed):
                guard (try? Curve25519.Signing.PrivateKey(rawRepresentation: seed)) != nil else {
                    throw .malformedKey("Ed25519 private key is not usable")
                }
                backing = .ed25519(seed: seed)
            case .other(let oid):
                throw .malformedKey("PKCS#8 key algorithm \(oid) is neither rsaEncryption nor Ed25519")
            case .malformed(let why):
                throw .malformedKey(why)
            }
        default:
            throw .unsupportedPEMType(block.label)
        }
    }

    private static func rsaKey(der: [UInt8]) throws(DKIMKeyError) -> _RSA.Signing.PrivateKey {
        let key: _RSA.Signing.PrivateKey
        do {
            key = try _RSA.Signing.PrivateKey(unsafeDERRepresentation: der)
        } catch {
            throw .malformedKey("RSA private key: \(error) (or smaller than 1024 bits)")
        }
        guard key.keySizeInBits >= 1024 else { throw .rsaKeyTooSmall(bits: key.keySizeInBits) }
        return key
    }

    /// The TXT record to publish at `<selector>._domainkey.<domain>` (RFC 6376 §3.6.1):
    /// `v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>` or `v=DKIM1; k=ed25519; p=<base64 of
    /// the 32-byte key>` (RFC 8463 §4). A 2048-bit RSA record is longer than 255 octets: the
    /// DNS operator splits it into several character-strings of one TXT record.
    public func publicKeyRecord() -> String {
        switch backing {
        case .rsa(let key):
            "v=DKIM1; k=rsa; p=" + key.publicKey.derRepresentation.base64EncodedString()
        case .ed25519(let seed):
            "v=DKIM1; k=ed25519; p="
                + ((try? Curve25519.Signing.PrivateKey(rawRepresentation: seed))?.publicKey.rawRepresentation.base64EncodedString() ?? "")
        }
    }

    /// Signs the SHA-256 of `data`: RSASSA-PKCS1-v1_5 for rsa-sha256 (RFC 6376 §3.3.1),
    /// PureEdDSA over the 32-byte hash for ed25519-sha256 (RFC 8463 §3).
    func sign(_ data: [UInt8]) throws -> [UInt8] {
        let digest = SHA256.hash(data: data)
        switch backing {
        case .rsa(let key):
            return Array(try key.signature(for: digest, padding: .insecurePKCS1v1_5).rawRepresentation)
        case .ed25519(let seed):
            return Array(try Curve25519.Signing.PrivateKey(rawRepresentation: seed).signature(for: Data(digest)))
        }
    }
}

/// A public key from a DKIM key record, ready to check signatures.
enum DKIMPublicKey {
    case rsa(_RSA.Signing.PublicKey)
    case ed25519(Curve25519.Signing.PublicKey)

    var algorithm: DKIMAlgorithm {
        switch self {
        case .rsa: .rsaSHA256
        case .ed25519: .ed25519SHA256
        }
    }

    func isValidSignature(_ signature: [UInt8], forSHA256Of data: [UInt8]) -> Bool {
        let digest = SHA256.hash(data: data)
        switch self {
        case .rsa(let key):
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: digest, padding: .insecurePKCS1v1_5)
        case .ed25519(let key):
            return key.isValidSignature(signature, for: Data(digest))
        }
    }
}

/// PEM (RFC 7468) framing, just enough for key files.
enum PEM {
    struct Block {
        var label: String
        var der: [UInt8]
    }

    static func firstBlock(in text: String) -> Block? {
        guard text.utf8.count <= 64 * 1024 else { return nil }
        var label: String?
        var body = ""
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if let current = label {
                if line == "-----END \(current)-----" {
                    guard let der = Data(base64Encoded: body) else { return nil }
                    return Block(label: current, der: Array(der))
                }
                // RFC 1421 encapsulated headers (encrypted keys) have a colon: not base64.
                if line.contains(":") { return Block(label: "ENCRYPTED " + current, der: []) }
                body += line
            } else if line.hasPrefix("-----BEGIN "), line.hasSuffix("-----") {
                label = String(line.dropFirst(11).dropLast(5))
            }
        }
        return nil
    }
}

/// The algorithm of a PKCS#8 PrivateKeyInfo (RFC 5208, RFC 8410 for Ed25519).
enum PKCS8 {
    enum Algorithm: Equatable {
        case rsa
        case ed25519(seed: [UInt8])
        case other(String)
        case malformed(String)
    }

    private static let rsaEncryption: [UInt8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]
    private static let ed25519: [UInt8] = [0x2b, 0x65, 0x70]

    static func algorithm(of der: [UInt8]) -> Algorithm {
        var outer = DERReader(der[...])
        guard let info = outer.read(tag: 0x30) else { return .malformed("not a DER SEQUENCE") }
        var fields = DERReader(info)
        guard fields.read(tag: 0x02) != nil, let algorithmIdentifier = fields.read(tag: 0x30),
            let privateKey = fields.read(tag: 0x04)
        else { return .malformed("not a PKCS#8 PrivateKeyInfo") }
        var identifier = DERReader(algorithmIdentifier)
        guard let oid = identifier.read(tag: 0x06) else { return .malformed("no algorithm OID") }
        if Array(oid) == rsaEncryption { return .rsa }
        if Array(oid) == ed25519 {
            // RFC 8410 §7: the privateKey OCTET STRING wraps CurvePrivateKey, itself an
            // OCTET STRING of the 32-byte seed.
            var inner = DERReader(privateKey)
            guard let seed = inner.read(tag: 0x04), seed.count == 32 else { return .malformed("Ed25519 key is not 32 bytes") }
            return .ed25519(seed: Array(seed))
        }
        return .other(oid.map { String($0, radix: 16) }.joined(separator: " "))
    }
}

/// Reads definite-length DER TLVs from a byte slice; nil on anything unexpected.
struct DERReader {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    mutating func read(tag expected: UInt8) -> ArraySlice<UInt8>? {
        guard let tag = bytes.first, tag == expected else { return nil }
        var index = bytes.startIndex + 1
        guard index < bytes.endIndex else { return nil }
        var length = Int(bytes[index])
        index += 1
        if length & 0x80 != 0 {
            let count = length & 0x7f
            guard count >= 1, count <= 3, index + count <= bytes.endIndex else { return nil }
            length = 0
            for _ in 0..<count {
                length = length << 8 | Int(bytes[index])
                index += 1
            }
        }
        guard length <= bytes.endIndex - index else { return nil }
        let value = bytes[index..<(index + length)]
        bytes = bytes[(index + length)...]
        return value
    }
}
