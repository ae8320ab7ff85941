#!/usr/bin/env python3
"""Independent reference for MailMessageTests: Python's `email` package.

  email_helper.py tree FILE   prints one JSON object: the part tree as Python's parser sees it
                              (content type, decoded parameters, file name, decoded payload in
                              hex), and the decoded Subject/From/To/Cc/Reply-To.
  email_helper.py tables      regenerates Sources/MailMessage/CharsetTables.swift on stdout.
"""
import email, email.policy, email.utils, json, sys


def params(part):
    result = []
    for name, value in (part.get_params(header="content-type") or [])[1:]:
        result.append([name.lower(), email.utils.collapse_rfc2231_value(value)])
    return result


def node(part):
    entry = {"type": part.get_content_type(), "params": params(part)}
    if part.is_multipart():
        entry["parts"] = [node(p) for p in part.get_payload()]
    else:
        payload = part.get_payload(decode=True)
        entry["payload"] = payload.hex() if isinstance(payload, bytes) else None
        filename = part.get_filename()
        entry["filename"] = filename
    return entry


def addresses(message, name):
    value = message.get(name)
    if value is None:
        return None
    return [[a.display_name, a.username, a.domain] for a in value.addresses]


def tree(path):
    with open(path, "rb") as handle:
        message = email.message_from_bytes(handle.read(), policy=email.policy.default)
    subject = message.get("subject")
    result = {
        "subject": None if subject is None else str(subject),
        "from": addresses(message, "from"),
        "to": addresses(message, "to"),
        "cc": addresses(message, "cc"),
        "reply-to": addresses(message, "reply-to"),
        "root": node(message),
    }
    print(json.dumps(result))


TABLES = [("iso-8859-2", "iso8859_2"), ("iso-8859-3", "iso8859_3"), ("iso-8859-4", "iso8859_4"), ("iso-8859-5", "iso8859_5"),
          ("iso-8859-6", "iso8859_6"), ("iso-8859-7", "iso8859_7"), ("iso-8859-8", "iso8859_8"), ("iso-8859-9", "iso8859_9"),
          ("iso-8859-10", "iso8859_10"), ("iso-8859-11", "iso8859_11"), ("iso-8859-13", "iso8859_13"), ("iso-8859-14", "iso8859_14"),
          ("iso-8859-15", "iso8859_15"), ("iso-8859-16", "iso8859_16"),
          ("windows-1250", "cp1250"), ("windows-1251", "cp1251"), ("windows-1252", "cp1252"), ("windows-1253", "cp1253"),
          ("windows-1254", "cp1254"), ("windows-1255", "cp1255"), ("windows-1256", "cp1256"), ("windows-1257", "cp1257"),
          ("windows-1258", "cp1258"), ("koi8-r", "koi8_r"), ("koi8-u", "koi8_u"), ("ibm866", "cp866")]


def tables():
    out = ["// Generated from Python's codecs (one-to-one byte tables, undefined bytes as U+FFFD):",
           "// the upper half (0x80...0xFF) of each single-byte charset; the lower half is US-ASCII.",
           "// Regenerate with the script in Tests/MailMessageTests/email_helper.py (`tables` command).",
           "", "extension SingleByteCharset {", "    static let upperHalves: [String: String] = ["]
    for iana, codec in TABLES:
        text = []
        for byte in range(128, 256):
            try:
                char = bytes([byte]).decode(codec)
            except UnicodeDecodeError:
                char = "\ufffd"
            point = ord(char)
            printable = point >= 0xa0 and char not in '"\\' and not 0x300 <= point <= 0x36f and point not in (0xad, 0xfffd) \
                and not 0x591 <= point <= 0x5c7 and not 0x64b <= point <= 0x65f and point not in (0x200c, 0x200d, 0x200e, 0x200f)
            text.append(char if printable else "\\u{%X}" % point)
        out.append('        "%s": "%s",' % (iana, "".join(text)))
    out += ["    ]", "}"]
    print("\n".join(out))


if __name__ == "__main__":
    if sys.argv[1] == "tree":
        tree(sys.argv[2])
    elif sys.argv[1] == "tables":
        tables()
