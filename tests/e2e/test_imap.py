"""IMAP against the real cluster with Python's imaplib and raw sockets: every command with the
responses that matter, mail delivered on one node and read on another, changes made on one
node seen by an IDLE session on another, CONDSTORE/QRESYNC resynchronisation, and hostile
input answered with BAD/NO while nothing stored changes.

Each test works on a user of its own (added to LDAP by the `user` fixture), so tests do not
see each other's mail."""

from __future__ import annotations

import base64
import imaplib
import re
import socket
import time
import uuid

import pytest

from test_smtp import smtp, wait_message

PASSWORD = "imap-secret"


def add_user(cluster) -> str:
    uid = "i" + uuid.uuid4().hex[:10]
    address = f"{uid}@{cluster.domain}"
    cluster.ldapmodify(
        f"dn: uid={uid},ou=people,{cluster.base}\nchangetype: add\nobjectClass: inetOrgPerson\n"
        f"objectClass: svcpkgMailUser\nuid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {address}\n"
        f"svcpkgAccountStatus: active\nuserPassword: {PASSWORD}\n")
    return address


def remove_user(cluster, address: str) -> None:
    uid = address.split("@")[0]
    cluster.ldapmodify(f"dn: uid={uid},ou=people,{cluster.base}\nchangetype: delete\n")


@pytest.fixture()
def user(cluster):
    address = add_user(cluster)
    yield address
    remove_user(cluster, address)


def imap(cluster, node) -> imaplib.IMAP4:
    return imaplib.IMAP4(cluster.node_ip(node), cluster.port("IMAP"), timeout=15)


def login(cluster, node, address) -> imaplib.IMAP4:
    client = imap(cluster, node)
    client.login(address, PASSWORD)
    return client


def deliver(cluster, address: str, subject: str, body: str = "Hello there.\r\n", node=None) -> bytes:
    with smtp(cluster, node or cluster.nodes[0]) as client:
        client.sendmail("sender@elsewhere.test", [address],
                        f"From: Sender <sender@elsewhere.test>\r\nTo: {address}\r\nSubject: {subject}\r\n"
                        f"Message-ID: <{subject}@elsewhere.test>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\n{body}".encode())
    return wait_message(cluster, address, subject)


class Raw:
    """A plain socket speaking IMAP, for what imaplib does not do (IDLE, literals, garbage)."""

    def __init__(self, cluster, node, timeout=15.0):
        self.sock = socket.create_connection((cluster.node_ip(node), cluster.port("IMAP")), timeout=timeout)
        self.buffer = b""
        self.greeting = self.line()

    def send(self, data: bytes | str) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self, timeout: float | None = None) -> bytes:
        if timeout is not None:
            self.sock.settimeout(timeout)
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; buffered {self.buffer!r}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        # A literal: read its bytes and the rest of the line.
        match = re.search(rb"\{(\d+)\}$", line)
        if match:
            size = int(match.group(1))
            while len(self.buffer) < size:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed inside a literal")
                self.buffer += chunk
            literal, self.buffer = self.buffer[:size], self.buffer[size:]
            return line + b"\r\n" + literal + self.line()
        return line

    def command(self, tag: str, text: str | bytes) -> list[bytes]:
        """Sends `tag text` and returns every line up to and including the tagged one."""
        self.send((tag + " ").encode() + (text.encode() if isinstance(text, str) else text) + b"\r\n")
        return self.until(tag)

    def until(self, tag: str) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    def login(self, address: str) -> None:
        assert self.command("L", f"LOGIN {address} {PASSWORD}")[-1].startswith(b"L OK")

    def close(self) -> None:
        self.sock.close()


def tagged(lines: list[bytes]) -> bytes:
    return lines[-1]


def test_capabilities_login_and_authenticate(cluster, user):
    client = imap(cluster, cluster.nodes[0])
    for name in ("IMAP4REV1", "IMAP4REV2", "STARTTLS", "AUTH=PLAIN", "SASL-IR", "IDLE", "LITERAL+", "ID", "ENABLE"):
        assert name in client.capabilities, client.capabilities
    with pytest.raises(imaplib.IMAP4.error, match=r"AUTHENTICATIONFAILED"):
        client.login(user, "wrong")
    typ, data = client.login(user, PASSWORD)
    assert typ == "OK" and b"[CAPABILITY " in data[0]
    for name in (b"UIDPLUS", b"MOVE", b"CONDSTORE", b"QRESYNC", b"SPECIAL-USE", b"LIST-STATUS", b"ESEARCH", b"QUOTA"):
        assert name in data[0], data
    assert client.logout()[0] == "BYE"

    # AUTHENTICATE PLAIN with SASL-IR and without, on the other node.
    raw = Raw(cluster, cluster.nodes[1])
    assert raw.greeting.startswith(b"* OK [CAPABILITY ")
    token = base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode()
    assert tagged(raw.command("A", f"AUTHENTICATE PLAIN {token}")).startswith(b"A OK [CAPABILITY ")
    assert tagged(raw.command("B", "LOGIN x y")).startswith(b"B BAD")
    raw.close()
    raw = Raw(cluster, cluster.nodes[1])
    raw.send("A AUTHENTICATE PLAIN\r\n")
    assert raw.line() == b"+ "
    raw.send(token + "\r\n")
    assert raw.line().startswith(b"A OK")
    raw.close()
    raw = Raw(cluster, cluster.nodes[1])
    raw.send("A AUTHENTICATE PLAIN\r\n")
    assert raw.line() == b"+ "
    raw.send("*\r\n")
    assert raw.line().startswith(b"A BAD")
    assert tagged(raw.command("B", "SELECT INBOX")).startswith(b"B BAD")
    assert tagged(raw.command("C", "ID NIL"))[:4] == b"C OK"
    raw.close()


def test_deliver_on_one_node_read_on_another(cluster, user):
    subject = "m-" + uuid.uuid4().hex
    stored = deliver(cluster, user, subject, node=cluster.nodes[0])
    client = login(cluster, cluster.nodes[1], user)
    typ, data = client.select("INBOX")
    assert (typ, data) == ("OK", [b"1"])
    assert client.untagged_responses["UIDVALIDITY"] and client.untagged_responses["READ-WRITE"] == [b""]
    typ, data = client.fetch("1", "(UID RFC822.SIZE FLAGS BODY.PEEK[])")
    assert typ == "OK"
    meta, body = data[0]
    assert body == stored, "BODY[] must be the stored bytes exactly"
    assert re.search(rb"RFC822.SIZE (\d+)", meta).group(1) == str(len(stored)).encode()
    assert b"FLAGS ()" in meta
    # ENVELOPE and BODYSTRUCTURE.
    typ, data = client.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
    assert f'"{subject}" (("Sender" NIL "sender" "elsewhere.test"))'.encode() in data[0]
    assert b'BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 14 1 NIL NIL NIL NIL)' in data[0]
    # Partial fetch, then BODY[TEXT] without PEEK sets \Seen and says so.
    typ, data = client.fetch("1", "(BODY.PEEK[TEXT]<0.5>)")
    assert data[0].endswith(b'BODY[TEXT]<0> "Hello")') or data[0][1] == b"Hello"
    typ, data = client.fetch("1", "(BODY[TEXT])")
    assert data[0][1] == b"Hello there.\r\n" and b"\\Seen" in data[1]
    typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
    assert data == [b"1 (UID 1 FLAGS (\\Seen))"]
    client.logout()


def test_multipart_structure_and_sections(cluster, user):
    client = login(cluster, cluster.nodes[0], user)
    message = (b"From: a@b.test\r\nTo: c@d.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
               b"caf=C3=A9\r\n--XX\r\nContent-Type: application/octet-stream; name=\"x.bin\"\r\n"
               b"Content-Disposition: attachment; filename=\"x.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               b"AAECAw==\r\n--XX--\r\n")
    typ, data = client.append("INBOX", None, None, message)
    assert typ == "OK" and data[0].startswith(b"[APPENDUID ")
    client.select("INBOX")
    typ, data = client.fetch("1", "(BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[2.MIME] BINARY.PEEK[2] BINARY.SIZE[1])")
    flat = b"".join(part if isinstance(part, bytes) else b"".join(part) for part in data)
    assert b'("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 9 0 NIL NIL NIL NIL)' in flat
    assert b'("APPLICATION" "OCTET-STREAM" ("NAME" "x.bin") NIL NIL "BASE64" 8 NIL ("ATTACHMENT" ("FILENAME" "x.bin")) NIL NIL)' in flat
    assert b' "MIXED" ("BOUNDARY" "XX") NIL NIL NIL)' in flat
    assert b"caf=C3=A9" in flat and b"Content-Disposition: attachment" in flat
    assert b"BINARY[2] ~{4}\x00\x01\x02\x03" in flat
    assert b"BINARY.SIZE[1] 5" in flat
    client.logout()


def test_folders_list_status_and_subscriptions(cluster, user):
    client = login(cluster, cluster.nodes[0], user)
    typ, data = client.list()
    names = {line.split(b' "/" ')[1]: line for line in data}
    for name, use in ((b'"Sent"', b"\\Sent"), (b'"Trash"', b"\\Trash"), (b'"Drafts"', b"\\Drafts"), (b'"Junk"', b"\\Junk")):
        assert use in names[name], data
    assert client.create("Projects/2026")[0] == "OK"
    assert client.create("Projects")[1][0].startswith(b"[ALREADYEXISTS]")
    typ, data = client.list('""', "Projects/%")
    assert data == [b'(\\HasNoChildren) "/" "Projects/2026"']
    typ, data = client.list('""', "%")
    assert b'(\\HasChildren) "/" "Projects"' in data
    assert client.create("Caf\u00e9".encode("utf-7").replace(b"+", b"&").decode())[0] == "OK"
    typ, data = client.list('""', "Caf*")
    assert data == [b'(\\HasNoChildren) "/" "Caf&AOk-"']
    assert client.rename("Projects", "Old")[0] == "OK"
    typ, data = client.list('""', "Old*")
    assert sorted(data) == [b'(\\HasChildren) "/" "Old"', b'(\\HasNoChildren) "/" "Old/2026"']
    assert client.subscribe("Old/2026")[0] == "OK"
    assert b'() "/" "Old/2026"' in client.lsub('""', "*")[1]
    typ, data = client._simple_command("LIST", '(SUBSCRIBED) "" "*"')
    typ, data = client._untagged_response(typ, data, "LIST")
    assert any(b"\\Subscribed" in line and b'"Old/2026"' in line for line in data), data
    typ, data = client._simple_command("LIST", '"" "*" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT))')
    assert typ == "OK"
    status = client.untagged_responses.pop("STATUS", [])
    assert any(line.startswith(b'"Old" (MESSAGES 0 UIDNEXT 1)') for line in status), status
    assert client.delete("Old")[1][0].startswith(b"[HASCHILDREN]")
    assert client.delete("Old/2026")[0] == "OK" and client.delete("Old")[0] == "OK"
    assert client.select("Old")[0] == "NO"
    assert client.delete("INBOX")[0] == "NO"
    # Path tricks and bad names are refused, nothing created.
    for name in ('"../x"', '"a//b"', '"INBOX/sub"', '"."'):
        assert client._simple_command("CREATE", name)[0] == "NO", name
    typ, data = client.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ)")
    assert re.match(rb'"INBOX" \(MESSAGES 0 UIDNEXT 1 UIDVALIDITY \d+ UNSEEN 0 DELETED 0 SIZE 0 HIGHESTMODSEQ \d+\)', data[0]), data
    typ, data = client.namespace()
    assert data == [b'(("" "/")) NIL NIL']
    client.logout()


def test_append_store_copy_move_expunge(cluster, user):
    client = login(cluster, cluster.nodes[0], user)
    for number in range(1, 6):
        typ, data = client.append("INBOX", "(\\Flagged $Work)" if number == 2 else None,
                                  imaplib.Time2Internaldate(1700000000 + number), f"Subject: n{number}\r\n\r\nbody {number}\r\n".encode())
        assert typ == "OK"
        assert re.match(rb"\[APPENDUID \d+ %d\]" % number, data[0]), data
    client.select("INBOX")
    typ, data = client.fetch("2", "(FLAGS INTERNALDATE)")
    assert b"FLAGS (\\Flagged $Work)" in data[0]
    assert b'INTERNALDATE "14-Nov-2023 22:13:22 +0000"' in data[0]
    typ, data = client.store("1:3", "+FLAGS", "(\\Seen)")
    assert sorted(data) == [b"1 (FLAGS (\\Seen))", b"2 (FLAGS (\\Flagged \\Seen $Work))", b"3 (FLAGS (\\Seen))"]
    typ, data = client.store("2", "-FLAGS.SILENT", "($Work)")
    assert typ == "OK" and data == [None]
    typ, data = client.copy("1:2", "Archive")
    assert re.match(rb"\[COPYUID \d+ 1:2 1:2\]", data[0]), data
    raw = Raw(cluster, cluster.nodes[1])
    raw.login(user)
    raw.command("S", "SELECT Trash")
    trash_validity = re.search(rb"UIDVALIDITY (\d+)", b"\n".join(raw.command("S2", "STATUS Trash (UIDVALIDITY)"))).group(1)
    raw.command("S3", "SELECT INBOX")
    lines = raw.command("M", "MOVE 4 Trash")
    assert lines == [b"* OK [COPYUID " + trash_validity + b" 4 1] Moved", b"* 4 EXPUNGE", b"M OK MOVE completed"], lines
    raw.close()
    client.noop()
    assert client.untagged_responses.pop("EXPUNGE") == [b"4"]
    typ, data = client.uid("MOVE", "5", "Trash")
    assert typ == "OK" and client.untagged_responses.pop("EXPUNGE") == [b"4"]
    typ, data = client.store("1", "+FLAGS", "(\\Deleted)")
    typ, data = client.expunge()
    assert data == [b"1"]
    typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
    assert data == [b"1 (UID 2 FLAGS (\\Flagged \\Seen))", b"2 (UID 3 FLAGS (\\Seen))"]
    assert client.status("Archive", "(MESSAGES)")[1] == [b'"Archive" (MESSAGES 2)']
    assert client.status("Trash", "(MESSAGES)")[1] == [b'"Trash" (MESSAGES 2)']
    assert client.copy("1", "Nowhere")[1][0].startswith(b"[TRYCREATE]")
    assert client.append("Nowhere", None, None, b"Subject: x\r\n\r\nx\r\n")[1][0].startswith(b"[TRYCREATE]")
    # UID EXPUNGE removes only the named UIDs.
    client.store("1:2", "+FLAGS", "(\\Deleted)")
    typ, data = client.uid("EXPUNGE", "3")
    assert typ == "OK" and client.untagged_responses.pop("EXPUNGE") == [b"2"]
    # CLOSE expunges silently; UNSELECT would not.
    assert client.close()[0] == "OK"
    assert client.status("INBOX", "(MESSAGES)")[1] == [b'"INBOX" (MESSAGES 0)']
    client.logout()


def test_search_and_esearch(cluster, user):
    client = login(cluster, cluster.nodes[1], user)
    bodies = ["apples and pears", "Bananas", "cherries"]
    for index, body in enumerate(bodies):
        client.append("INBOX", "(\\Seen)" if index == 0 else None, imaplib.Time2Internaldate(1700000000 + index * 86400),
                      f"From: p{index}@fruit.test\r\nSubject: fruit {index}\r\nDate: {13 + index} Nov 2023 10:00:00 +0000\r\n"
                      f"X-Kind: k{index}\r\n\r\n{body}\r\n".encode())
    client.select("INBOX")
    assert client.search(None, "ALL") == ("OK", [b"1 2 3"])
    assert client.search(None, "UNSEEN") == ("OK", [b"2 3"])
    assert client.search(None, "BODY", "bananas") == ("OK", [b"2"])
    assert client.search(None, "TEXT", "p2@fruit") == ("OK", [b"3"])
    # The node's full-text index answered those; it follows new and expunged messages, and
    # decodes what it indexes (quoted-printable UTF-8 here).
    client.append("INBOX", None, None, b"Subject: more\r\nContent-Type: text/plain; charset=utf-8\r\n"
                  b"Content-Transfer-Encoding: quoted-printable\r\n\r\nBANANAS from Z=C3=BCrich\r\n")
    assert client.search(None, "BODY", "bananas") == ("OK", [b"2 4"])
    needle = "Z\u00fcRICH".encode()
    raw = Raw(cluster, cluster.nodes[0])
    raw.login(user)
    raw.command("S", "SELECT INBOX")
    assert raw.command("U", b"SEARCH CHARSET UTF-8 BODY {%d+}\r\n%s" % (len(needle), needle)) == [b"* SEARCH 4", b"U OK SEARCH completed"]
    raw.close()
    client.store("4", "+FLAGS", "(\\Deleted)")
    client.expunge()
    assert client.search(None, "BODY", "bananas") == ("OK", [b"2"])
    assert client.search(None, "FROM", "p1") == ("OK", [b"2"])
    assert client.search(None, "HEADER", "X-Kind", "k2") == ("OK", [b"3"])
    assert client.search(None, "OR", "SUBJECT", '"fruit 0"', "SUBJECT", '"fruit 2"') == ("OK", [b"1 3"])
    assert client.search(None, "NOT", "SEEN", "SENTSINCE", "14-Nov-2023") == ("OK", [b"2 3"])
    assert client.search(None, "SENTBEFORE", "14-Nov-2023") == ("OK", [b"1"])
    assert client.search(None, "2:*", "LARGER", "10") == ("OK", [b"2 3"])
    assert client.uid("SEARCH", "UID", "2:3") == ("OK", [b"2 3"])
    assert client.search(None, "BEFORE", "15-Nov-2023") == ("OK", [b"1"])
    raw = Raw(cluster, cluster.nodes[0])
    raw.login(user)
    raw.command("S", "SELECT INBOX")
    assert raw.command("E", "SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN") == [b'* ESEARCH (TAG "E") MIN 2 MAX 3 ALL 2:3 COUNT 2', b"E OK SEARCH completed"]
    assert raw.command("F", "UID SEARCH RETURN (SAVE) FROM p1")[-1] == b"F OK SEARCH completed"
    lines = raw.command("G", "FETCH $ (UID)")
    assert lines[0] == b"* 2 FETCH (UID 2)"
    assert raw.command("H", "SEARCH CHARSET KOI8-R BODY x")[-1].startswith(b"H NO [BADCHARSET")
    raw.close()
    client.logout()


def idle_lines(raw: Raw, wanted, timeout: float) -> tuple[list[bytes], float]:
    """Reads untagged lines during IDLE until `wanted(lines)` is true; returns them and the time it took."""
    start = time.monotonic()
    lines = []
    while not wanted(lines):
        remaining = timeout - (time.monotonic() - start)
        assert remaining > 0, f"IDLE saw only {lines}"
        lines.append(raw.line(timeout=remaining))
    return lines, time.monotonic() - start


def test_idle_sees_changes_from_another_node(cluster, user):
    deliver(cluster, user, "first-" + uuid.uuid4().hex)
    watcher = Raw(cluster, cluster.nodes[0])
    watcher.login(user)
    watcher.command("S", "SELECT INBOX")
    watcher.send("I IDLE\r\n")
    assert watcher.line() == b"+ idling"
    other = login(cluster, cluster.nodes[1], user)
    other.select("INBOX")
    latencies = {}

    other.append("INBOX", None, None, b"Subject: appended elsewhere\r\n\r\nx\r\n")
    lines, latencies["append"] = idle_lines(watcher, lambda ls: b"* 2 EXISTS" in ls, 10)
    other.store("1", "+FLAGS", "(\\Flagged)")
    lines, latencies["store"] = idle_lines(watcher, lambda ls: any(l.startswith(b"* 1 FETCH (FLAGS (\\Flagged") for l in ls), 10)
    other.store("1", "+FLAGS", "(\\Deleted)")
    other.expunge()
    lines, latencies["expunge"] = idle_lines(watcher, lambda ls: b"* 1 EXPUNGE" in ls, 10)
    deliver(cluster, user, "third-" + uuid.uuid4().hex, node=cluster.nodes[1])
    lines, latencies["delivery"] = idle_lines(watcher, lambda ls: b"* 2 EXISTS" in ls, 10)
    watcher.send("DONE\r\n")
    assert watcher.line() == b"I OK IDLE terminated"
    # Sequence numbers stayed right for this session: message 1 is now the appended one.
    lines = watcher.command("F", "FETCH 1:* (UID)")
    assert lines[:2] == [b"* 1 FETCH (UID 2)", b"* 2 FETCH (UID 3)"]
    print("IDLE latencies (s):", {k: round(v, 2) for k, v in latencies.items()})
    assert all(v < 5 for v in latencies.values()), latencies
    watcher.close()
    other.logout()


def test_condstore_and_qresync_resync(cluster, user):
    client = login(cluster, cluster.nodes[0], user)
    for number in range(1, 7):
        client.append("INBOX", None, None, f"Subject: q{number}\r\n\r\nx\r\n".encode())
    raw = Raw(cluster, cluster.nodes[1])
    raw.login(user)
    assert raw.command("E", "ENABLE QRESYNC")[0] == b"* ENABLED QRESYNC"
    lines = raw.command("S", "SELECT INBOX")
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", b"\n".join(lines)).group(1))
    modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(lines)).group(1))
    raw.command("U", "UNSELECT")
    # Changes while the client is away: two expunged, one flagged.
    client.select("INBOX")
    client.store("2,4", "+FLAGS", "(\\Deleted)")
    client.expunge()
    client.store("1", "+FLAGS", "(\\Flagged)")
    lines = raw.command("Q", f"SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:6))")
    assert b"* VANISHED (EARLIER) 2,4" in lines, lines
    flagged = [l for l in lines if b"FETCH" in l]
    assert len(flagged) == 1 and flagged[0].startswith(b"* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ (")
    # CHANGEDSINCE and VANISHED on UID FETCH, UNCHANGEDSINCE on STORE.
    lines = raw.command("F", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert lines[0] == b"* VANISHED (EARLIER) 2,4"
    lines = raw.command("T", "UID STORE 3 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)")
    assert lines[-1].startswith(b"T OK [MODIFIED 3]"), lines
    lines = raw.command("V", f"UID STORE 3 (UNCHANGEDSINCE {modseq + 100}) +FLAGS (\\Seen)")
    assert lines[-1] == b"V OK STORE completed" and b"\\Seen" in lines[0] and b"MODSEQ" in lines[0]
    raw.close()
    client.logout()


def test_hostile_input_gets_bad_and_changes_nothing(cluster, user):
    stored = deliver(cluster, user, "keep-" + uuid.uuid4().hex)
    raw = Raw(cluster, cluster.nodes[0])
    raw.login(user)
    raw.command("S", "SELECT INBOX")
    assert raw.command("a", "FETCH 1 (FLAGS")[-1].startswith(b"a BAD")
    assert raw.command("b", "FETCH 1:9 FLAGS")[-1].startswith(b"b BAD")
    assert raw.command("c", "FETCH 0 FLAGS")[-1].startswith(b"c BAD")
    assert raw.command("d", "FETCH x FLAGS")[-1].startswith(b"d BAD")
    assert raw.command("e", b"NOOP\x00")[-1].startswith(b"e BAD")
    assert raw.command("f", "SEARCH " + "NOT " * 200 + "ALL")[-1].startswith(b"f BAD")
    assert raw.command("g", "SEARCH " + "(" * 100 + "ALL" + ")" * 100)[-1].startswith(b"g BAD")
    assert raw.command("h", "FROBNICATE")[-1].startswith(b"h BAD")
    assert raw.command("i", "STORE 1 +FLAGS (\\Recent \\Bogus")[-1].startswith(b"i BAD")
    # A 100 MB synchronising literal is refused before any of it is sent.
    raw.send("j APPEND INBOX {104857600}\r\n")
    assert raw.line().startswith(b"j BAD [TOOBIG]")
    # A literal that lies about its size: the literal takes the announced bytes, and what is
    # left of the line makes the command malformed.
    raw.send("k STATUS {5}\r\n")
    assert raw.line() == b"+ Ready for literal data"
    raw.send("ab\r\nc NOOP\r\n")
    assert raw.line().startswith(b"k BAD")
    assert raw.command("k2", "NOOP")[-1] == b"k2 OK NOOP completed"
    raw.close()
    raw = Raw(cluster, cluster.nodes[0])
    # An over-long line is refused and the session goes on.
    raw.send("l NOOP " + "x" * 200_000 + "\r\n")
    assert raw.line().startswith(b"l BAD [TOOBIG]")
    raw.login(user)
    lines = raw.command("S", "SELECT INBOX")
    assert b"* 1 EXISTS" in lines
    lines = raw.command("m", "FETCH 1 BODY.PEEK[]")
    assert lines[0].endswith(stored + b")"), "the stored message is unchanged"
    assert raw.command("n", "NOOP")[-1] == b"n OK NOOP completed"
    raw.close()
    # The node is still healthy.
    status, health = cluster.healthz(cluster.nodes[0])
    assert status == 200 and health["status"] in ("ok", "degraded")


def test_plaintext_login_refused_without_tls_off_loopback_setting(cluster, user):
    # The dev cluster allows plaintext on loopback; with the setting off, LOGIN needs TLS.
    cluster.ldapmodify(f"dn: cn=cluster,ou=svcpkg,{cluster.base}\nchangetype: modify\n"
                       "replace: svcpkgAllowPlaintextAuthLoopback\nsvcpkgAllowPlaintextAuthLoopback: FALSE\n")
    try:
        def refused():
            client = imap(cluster, cluster.nodes[0])
            try:
                return "LOGINDISABLED" in client.capabilities
            finally:
                client.shutdown()
        cluster.wait_for(refused, timeout=10, what="LOGINDISABLED")
        raw = Raw(cluster, cluster.nodes[0])
        assert raw.command("L", f"LOGIN {user} {PASSWORD}")[-1].startswith(b"L NO [PRIVACYREQUIRED]")
        raw.close()
    finally:
        cluster.ldapmodify(f"dn: cn=cluster,ou=svcpkg,{cluster.base}\nchangetype: modify\n"
                           "replace: svcpkgAllowPlaintextAuthLoopback\nsvcpkgAllowPlaintextAuthLoopback: TRUE\n")
        cluster.wait_for(lambda: "AUTH=PLAIN" in imap(cluster, cluster.nodes[0]).capabilities, timeout=10, what="plaintext back")


def test_starttls_and_implicit_tls(cluster, user):
    import ssl
    subject = "tls-" + uuid.uuid4().hex
    deliver(cluster, user, subject)
    context = ssl.create_default_context(cafile=str(cluster.state / "tls" / "cert.pem"))
    context.check_hostname = False
    client = imap(cluster, cluster.nodes[1])
    assert "STARTTLS" in client.capabilities
    assert client.starttls(ssl_context=context)[0] == "OK"
    assert "STARTTLS" not in client.capabilities and "AUTH=PLAIN" in client.capabilities
    client.login(user, PASSWORD)
    client.select("INBOX")
    assert subject.encode() in client.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1]
    client.logout()
    secure = imaplib.IMAP4_SSL(cluster.node_ip(cluster.nodes[0]), cluster.port("IMAPS"), ssl_context=context, timeout=15)
    assert "STARTTLS" not in secure.capabilities
    secure.login(user, PASSWORD)
    assert secure.select("INBOX") == ("OK", [b"1"])
    secure.logout()


def test_plaintext_injected_after_starttls_is_discarded(cluster, user):
    """CVE-2011-0411: a command pipelined in plaintext after STARTTLS must not run inside TLS."""
    import ssl
    context = ssl.create_default_context(cafile=str(cluster.state / "tls" / "cert.pem"))
    context.check_hostname = False
    raw = Raw(cluster, cluster.nodes[0])
    raw.send(f"S STARTTLS\r\nX LOGIN {user} {PASSWORD}\r\n")
    assert raw.line() == b"S OK Begin TLS negotiation now"
    assert raw.buffer == b""
    tls = context.wrap_socket(raw.sock, server_hostname="example.test")
    tls.sendall(b"C CAPABILITY\r\n")
    answer = b""
    while not answer.endswith(b"\r\n") or b"C OK" not in answer:
        chunk = tls.recv(4096)
        assert chunk, answer
        answer += chunk
    assert answer.startswith(b"* CAPABILITY ") and b"X OK" not in answer and b"AUTH=PLAIN" in answer, answer
    tls.close()


def test_compress_deflate(cluster, user):
    import zlib
    subject = "z-" + uuid.uuid4().hex
    stored = deliver(cluster, user, subject, body="compress me " * 500 + "\r\n")
    raw = Raw(cluster, cluster.nodes[1])
    assert tagged(raw.command("C0", "COMPRESS DEFLATE")).startswith(b"C0 BAD")  # not before login
    raw.login(user)
    assert raw.command("C", "COMPRESS DEFLATE") == [b"C OK DEFLATE active"]
    deflate = zlib.compressobj(wbits=-15)
    inflate = zlib.decompressobj(wbits=-15)

    def command(tag: str, text: str) -> bytes:
        raw.sock.sendall(deflate.compress(f"{tag} {text}\r\n".encode()) + deflate.flush(zlib.Z_SYNC_FLUSH))
        received = b""
        while f"\r\n{tag} ".encode() not in b"\r\n" + received:
            chunk = raw.sock.recv(65536)
            assert chunk, received
            received += inflate.decompress(chunk)
        return received

    assert b"* 1 EXISTS" in command("S", "SELECT INBOX")
    answer = command("F", "FETCH 1 BODY.PEEK[]")
    assert stored in answer and answer.endswith(b"F OK FETCH completed\r\n")
    assert command("D", "COMPRESS DEFLATE").endswith(b"D NO [COMPRESSIONACTIVE] Compression is already active\r\n")
    assert command("L", "LOGOUT").endswith(b"L OK LOGOUT completed\r\n")
    raw.close()


def test_connections_per_user_limit(cluster, user):
    node = cluster.nodes[0]
    dn = f"cn={node},ou=nodes,ou=svcpkg,{cluster.base}"
    cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\nreplace: svcpkgMaxConnectionsPerUser\nsvcpkgMaxConnectionsPerUser: 2\n")
    first, second = Raw(cluster, node), Raw(cluster, node)
    try:
        first.login(user)
        second.login(user)

        def login_answer() -> bytes:
            attempt = Raw(cluster, node)
            try:
                return attempt.command("L", f"LOGIN {user} {PASSWORD}")[-1]
            finally:
                attempt.close()

        cluster.wait_for(lambda: login_answer().startswith(b"L NO [LIMIT]"), timeout=10, what="a third login refused")
        # The sessions that are in keep working, and the other node keeps its own count.
        assert first.command("N", "NOOP")[-1] == b"N OK NOOP completed"
        other = Raw(cluster, cluster.nodes[1])
        other.login(user)
        other.close()
        # A session that ends frees its slot.
        first.close()
        cluster.wait_for(lambda: login_answer().startswith(b"L OK"), timeout=10, what="a login after one session ended")
    finally:
        first.close()
        second.close()
        cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\ndelete: svcpkgMaxConnectionsPerUser\n")


def test_imapclient_session_with_quota_sort_thread_and_examine(cluster, user):
    """The same server through IMAPClient (another widely used client library), on the other
    node: quota from LDAP, SORT, THREAD, EXAMINE's read-only state, UNSELECT, CHECK, ID, ENABLE."""
    imapclient = pytest.importorskip("imapclient")
    uid = user.split("@")[0]
    cluster.ldapmodify(f"dn: uid={uid},ou=people,{cluster.base}\nchangetype: modify\n"
                       "replace: svcpkgQuotaBytes\nsvcpkgQuotaBytes: 2048000\n")
    client = imapclient.IMAPClient(cluster.node_ip(cluster.nodes[1]), port=cluster.port("IMAP"), ssl=False, timeout=15)
    client.login(user, PASSWORD)
    assert client.id_({"name": "test"}) == ((b"name", b"svcpkg", b"vendor", b"Service Package"),)
    assert client.enable("CONDSTORE") == [b"CONDSTORE"]
    threads = [
        ("Hello", "zed@x.test", "3 Jan 2024 10:00:00 +0000", "<a@x>", ""),
        ("Re: hello", "amy@x.test", "1 Jan 2024 10:00:00 +0000", "<b@x>", "In-Reply-To: <a@x>\r\n"),
        ("[list] other", "bob@x.test", "2 Jan 2024 10:00:00 +0000", "<c@x>", ""),
    ]
    for subject, sender, date, mid, extra in threads:
        client.append("INBOX", f"Subject: {subject}\r\nFrom: {sender}\r\nDate: {date}\r\nMessage-ID: {mid}\r\n{extra}\r\nbody\r\n".encode())
    quota = client.get_quota_root("INBOX")
    assert quota[0].mailbox == "INBOX" and quota[0].quota_roots == [""]
    assert quota[1][0].resource == "STORAGE" and quota[1][0].limit == 2000 and 0 <= quota[1][0].usage < 10
    client.select_folder("INBOX")
    assert client.sort(["DATE"]) == [2, 3, 1]
    assert client.sort(["REVERSE", "ARRIVAL"]) == [3, 2, 1]
    assert client.thread("REFERENCES") == ((3,), (1, 2))
    assert client.thread("ORDEREDSUBJECT") == ((2, 1), (3,))
    assert client.unselect_folder() is not None
    info = client.select_folder("INBOX", readonly=True)
    assert info[b"READ-ONLY"] == [b""]
    with pytest.raises(imapclient.exceptions.IMAPClientError, match="read-only"):
        client.add_flags([1], [b"\\Flagged"])
    fetched = client.fetch([1], ["BODY[]"])
    assert b"\\Seen" not in client.get_flags([1])[1], "EXAMINE must not set \\Seen"
    assert fetched[1][b"BODY[]"].startswith(b"Subject: Hello")
    client.noop()
    assert client._imap.check()[0] == "OK"
    # Over quota: APPEND is refused and nothing is stored.
    with pytest.raises(imapclient.exceptions.IMAPClientError, match="OVERQUOTA"):
        client.append("INBOX", b"Subject: big\r\n\r\n" + b"x" * 3_000_000)
    assert client.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 3
    client.logout()
