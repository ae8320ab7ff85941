#!/usr/bin/env python3
"""dkimpy as an independent DKIM implementation for MailAuthTests.

  dkimpy_helper.py verify RECORD_FILE            < message   -> prints "pass" or "fail"
  dkimpy_helper.py sign KEY_FILE SELECTOR DOMAIN CANON ALGO [--length]  < message
                                                 -> writes the signed message

verify gives dkimpy the DNS TXT record through its dnsfunc argument (no network) and
prints the name it asked for on stderr. sign takes a PKCS#1 PEM RSA key, or a PKCS#8 PEM
Ed25519 key (converted to the base64 seed dkimpy wants); CANON is e.g. relaxed/simple.
"""
import base64
import sys

import dkim


def main():
    command = sys.argv[1]
    message = sys.stdin.buffer.read()
    if command == "verify":
        with open(sys.argv[2], "rb") as f:
            record = f.read().strip()

        def dnsfunc(name, timeout=5):
            sys.stderr.write("query %s\n" % (name.decode() if isinstance(name, bytes) else name))
            return record

        ok = dkim.verify(message, dnsfunc=dnsfunc)
        print("pass" if ok else "fail")
    elif command == "sign":
        key_file, selector, domain, canon, algo = sys.argv[2:7]
        length = "--length" in sys.argv[7:]
        with open(key_file, "rb") as f:
            key = f.read()
        if algo == "ed25519-sha256":
            der = base64.b64decode(b"".join(l for l in key.splitlines() if not l.startswith(b"-----")))
            key = base64.b64encode(der[-32:])
        header, body = canon.split("/")
        signature = dkim.sign(
            message,
            selector.encode(),
            domain.encode(),
            key,
            canonicalize=(header.encode(), body.encode()),
            signature_algorithm=algo.encode(),
            include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
            length=length,
        )
        sys.stdout.buffer.write(signature + message)
    else:
        sys.exit("unknown command %s" % command)


if __name__ == "__main__":
    main()
