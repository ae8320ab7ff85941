#!/usr/bin/env python3
"""Reference for MailMessageTests: Dovecot's ENVELOPE and BODYSTRUCTURE of message files.

  dovecot_helper.py FILE...   prints a JSON list, one {"envelope", "bodystructure"} per file,
                              with IMAP literals rewritten as quoted strings.

Runs a throwaway `imap` process in pre-authenticated mode on a temporary Maildir (no
service, no listener). Needs dovecot-imapd installed and root (the mail user is nobody);
exits with status 77 when it cannot run.
"""
import json, os, re, shutil, subprocess, sys, tempfile

IMAP = "/usr/lib/dovecot/imap"


def requote(data):
    """IMAP response bytes with every {n} literal turned into a quoted string."""
    out = bytearray()
    i = 0
    while i < len(data):
        m = re.compile(rb"\{(\d+)\}\r\n").match(data, i)
        if m and data[i:i + 1] == b"{":
            n = int(m.group(1))
            start = m.end()
            literal = data[start:start + n]
            out += b'"' + literal.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
            i = start + n
        else:
            out.append(data[i])
            i += 1
    return bytes(out)


def item(response, name):
    start = response.find(name + b" (")
    if start < 0:
        return None
    i = start + len(name) + 1
    depth = 0
    quoted = False
    while i < len(response):
        c = response[i:i + 1]
        if quoted:
            if c == b"\\":
                i += 1
            elif c == b'"':
                quoted = False
        elif c == b'"':
            quoted = True
        elif c == b"(":
            depth += 1
        elif c == b")":
            depth -= 1
            if depth == 0:
                return response[start + len(name) + 1:i + 1].decode("utf-8", "replace")
        i += 1
    return None


def main(files):
    if not os.path.exists(IMAP) or os.geteuid() != 0:
        sys.exit(77)
    root = tempfile.mkdtemp(prefix="svcpkg-dovecot-")
    try:
        maildir = os.path.join(root, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(maildir, sub))
        os.makedirs(os.path.join(root, "home"))
        for index, path in enumerate(files):
            shutil.copy(path, os.path.join(maildir, "cur", "%d.m%d:2,S" % (1000 + index, index)))
        config = os.path.join(root, "dovecot.conf")
        with open(config, "w") as handle:
            handle.write("protocols = imap\nssl = no\nlog_path = %s/log\nbase_dir = %s/run\n"
                         "mail_uid = nobody\nmail_gid = nogroup\nfirst_valid_uid = 0\nfirst_valid_gid = 0\n"
                         "mail_location = maildir:%s\n" % (root, root, maildir))
        subprocess.run(["chown", "-R", "nobody:nogroup", root], check=True)
        os.chmod(root, 0o755)
        commands = "s select inbox\r\n" + "".join(
            "f%d fetch %d (envelope bodystructure)\r\n" % (i + 1, i + 1) for i in range(len(files))) + "z logout\r\n"
        env = dict(os.environ, USER="test", HOME=os.path.join(root, "home"), MAIL="maildir:" + maildir)
        output = subprocess.run([IMAP, "-c", config], input=commands.encode(), env=env,
                                capture_output=True, timeout=60).stdout
        output = requote(output)
        results = []
        for index in range(len(files)):
            match = re.search(rb"\r\n\* %d FETCH (.*?)\r\nf%d OK" % (index + 1, index + 1), output, re.S)
            response = match.group(1) if match else b""
            results.append({"envelope": item(response, b"ENVELOPE"), "bodystructure": item(response, b"BODYSTRUCTURE")})
        print(json.dumps(results))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
