"""IMAP against the real cluster with real mail clients: mbsync (isync) syncing a 1,000-message
mailbox to a local Maildir and back across both nodes, and mutt driven through tmux reading,
flagging, moving and deleting on one node while the result is checked with imaplib on the other.

Each test works on a user of its own (test_imap.add_user), so nothing collides with other tests.
Plaintext LOGIN over loopback is allowed in the dev cluster (svcpkgAllowPlaintextAuthLoopback),
which is what both clients use here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from test_imap import PASSWORD, Raw, add_user, deliver, login

SYSTEM_FLAGS = {"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"}
# Maildir info letters <-> IMAP system flags, as mbsync maps them.
MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}
MAILDIR_LETTERS = {flag: letter for letter, flag in MAILDIR_FLAGS.items()}


def need(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (scripts/install-deps installs them)")


def message_id(data: bytes) -> str:
    header = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    match = re.search(rb"^Message-ID:\s*(<[^>\r\n]*>)", header, re.IGNORECASE | re.MULTILINE)
    assert match, f"no Message-ID in {header[:300]!r}"
    return match.group(1).decode()


# ---- the server side, read with imaplib / a raw socket

def uid_set(text: str) -> list[int]:
    """'3,1:2' -> [3, 1, 2]"""
    uids = []
    for part in text.split(","):
        low, _, high = part.partition(":")
        low, high = int(low), int(high or low)
        uids += list(range(low, high + 1) if low <= high else range(low, high - 1, -1))
    return uids


def multiappend(cluster, node: str, address: str, mailbox: str,
                messages: list[tuple[str, bytes]], batch: int = 200) -> None:
    """APPENDs (flags, bytes) messages with MULTIAPPEND and LITERAL+ in batches: fast (imaplib's
    one-APPEND-per-round-trip takes ~0.1 s a message)."""
    raw = Raw(cluster, node, timeout=60)
    raw.login(address)
    for number, start in enumerate(range(0, len(messages), batch)):
        tag = f"M{number}"
        parts = [f"{tag} APPEND {mailbox}".encode()]
        for flags, data in messages[start:start + batch]:
            parts.append(b" (%s) {%d+}\r\n" % (flags.encode(), len(data)) + data)
        raw.send(b"".join(parts) + b"\r\n")
        lines = raw.until(tag)
        match = re.match(rb"%s OK \[APPENDUID \d+ ([\d:,]+)\]" % tag.encode(), lines[-1])
        assert match, lines[-3:]
        # One UID per message, ascending in the order sent (RFC 3502).
        uids = uid_set(match.group(1).decode())
        assert len(uids) == len(messages[start:start + batch]) and uids == sorted(uids), lines[-1]
    raw.command("Z", "LOGOUT")
    raw.close()


def server_messages(client, mailbox: str) -> list[tuple[int, str, frozenset[str]]]:
    """[(uid, Message-ID, flags)] of a mailbox, examined read-only."""
    typ, data = client.select(mailbox, readonly=True)
    assert typ == "OK", (mailbox, data)
    if data[0] == b"0":
        return []
    typ, data = client.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    assert typ == "OK", data
    result = []
    items = list(data)
    index = 0
    while index < len(items):
        item = items[index]
        index += 1
        if not isinstance(item, tuple):
            continue
        meta, literal = item
        if index < len(items) and isinstance(items[index], bytes):
            meta += items[index]  # what follows the literal: ")" and maybe more items
            index += 1
        uid = int(re.search(rb"\bUID (\d+)", meta).group(1))
        flags = re.search(rb"\bFLAGS \(([^)]*)\)", meta).group(1).decode().split()
        result.append((uid, message_id(literal), frozenset(flags)))
    return result


def by_message_id(messages, system_only: bool = True) -> dict[str, frozenset[str]]:
    """{Message-ID: flags}, asserting that no Message-ID occurs twice."""
    counts = Counter(mid for _, mid, _ in messages)
    duplicates = {mid: n for mid, n in counts.items() if n > 1}
    assert not duplicates, f"duplicates: {sorted(duplicates.items())[:10]} ({len(duplicates)} in all)"
    return {mid: (flags & SYSTEM_FLAGS if system_only else flags) for _, mid, flags in messages}


def server_snapshot(client, mailboxes) -> dict:
    """Everything a sync could change on the server: per mailbox STATUS and (UID, FLAGS)."""
    snapshot = {}
    for mailbox in mailboxes:
        typ, data = client.status(mailbox, "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
        assert typ == "OK", data
        snapshot[mailbox] = (data[0], sorted((uid, sorted(flags)) for uid, _, flags in server_messages(client, mailbox)))
    return snapshot


# ---- the local Maildir mbsync keeps

def maildir_messages(folder: Path) -> list[tuple[Path, str, frozenset[str]]]:
    """[(file, Message-ID, flags from the ':2,' info)] of a Maildir folder's cur/ and new/."""
    result = []
    for sub in ("cur", "new"):
        for path in sorted((folder / sub).iterdir()):
            info = path.name.split(":2,", 1)[1] if ":2," in path.name else ""
            flags = frozenset(MAILDIR_FLAGS[letter] for letter in info if letter in MAILDIR_FLAGS)
            result.append((path, message_id(path.read_bytes()), flags))
    return result


def maildir_snapshot(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.glob("*/*/*") if path.parent.name in ("cur", "new", "tmp"))


def set_maildir_flags(path: Path, flags: set[str]) -> Path:
    """Renames a message file to carry these flags (moving it to cur/, as a reader would)."""
    base = path.name.split(":2,", 1)[0]
    info = "".join(sorted(MAILDIR_LETTERS[flag] for flag in flags))
    target = path.parent.parent / "cur" / f"{base}:2,{info}"
    path.rename(target)
    return target


def write_maildir_message(folder: Path, data: bytes, flags: set[str] | None = None) -> None:
    """Delivers a message into a local Maildir folder (tmp/ then rename), in new/ without
    flags or in cur/ with them."""
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    name = f"{time.time_ns()}.P{os.getpid()}Q{uuid.uuid4().hex[:8]}.testhost"
    temp = folder / "tmp" / name
    temp.write_bytes(data)
    if flags is None:
        temp.rename(folder / "new" / name)
    else:
        info = "".join(sorted(MAILDIR_LETTERS[flag] for flag in flags))
        temp.rename(folder / "cur" / f"{name}:2,{info}")


def mbsync(cluster, node: str, address: str, work: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """One `mbsync -a` of every folder (Patterns *) against `node`, both ways, expunging both
    sides, with the sync state kept in the Maildir (so runs against different nodes continue
    each other)."""
    config = work / f"mbsyncrc-{node}"
    maildir = work / "mail"
    maildir.mkdir(exist_ok=True)
    config.write_text(
        f"IMAPAccount account\nHost {cluster.node_ip(node)}\nPort {cluster.port('IMAP')}\n"
        f"User {address}\nPass {PASSWORD}\nSSLType None\nAuthMechs LOGIN\nTimeout 20\n\n"
        "IMAPStore far\nAccount account\n\n"
        f"MaildirStore near\nPath {maildir}/\nInbox {maildir}/INBOX\nSubFolders Verbatim\n\n"
        "Channel sync\nFar :far:\nNear :near:\nPatterns *\nCreate Both\nExpunge Both\n"
        "SyncState *\nSync All\n")
    started = time.monotonic()
    proc = subprocess.run(["mbsync", "-c", str(config), "-a"], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=dict(os.environ, HOME=str(work)))
    elapsed = time.monotonic() - started
    output = proc.stdout + proc.stderr
    print(f"mbsync against {node}: {elapsed:.1f} s, exit {proc.returncode}")
    assert proc.returncode == 0, f"mbsync against {node} failed ({proc.returncode}):\n{output[-4000:]}"
    # Allowed: the plaintext warning (loopback, dev cluster) and notices ("no UIDVALIDITY, creating new").
    unexpected = [line for line in output.splitlines() if line.strip() and " notice: " not in line
                  and "Password is being sent in the clear" not in line]
    assert not unexpected, f"mbsync against {node} said:\n" + "\n".join(unexpected[:40])
    return proc


def sync_message(index: int, tag: str, body: str = "") -> bytes:
    # Every 100th message is larger (about 40 KB), the rest small.
    body = body or (f"Message number {index}.\r\n" + ("0123456789abcdef" * 4 + "\r\n") * (600 if index % 100 == 0 else 1))
    return (f"From: Sync Test <sync@elsewhere.test>\r\nTo: someone@example.test\r\nSubject: sync {index}\r\n"
            f"Message-ID: <sync-{index}.{tag}@client.test>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\n{body}").encode()


def initial_flags(index: int) -> set[str]:
    flags = set()
    if index % 2 == 0:
        flags.add("\\Seen")
    if index % 7 == 0:
        flags.add("\\Flagged")
    if index % 11 == 0:
        flags.add("\\Answered")
    if index % 97 == 0:
        flags.add("\\Draft")
    return flags


def test_mbsync_syncs_1000_messages_down_and_up_across_nodes(cluster, tmp_path):
    need("mbsync")
    test_started = time.monotonic()
    first, second = cluster.nodes[0], cluster.nodes[1]
    address = add_user(cluster)
    tag = uuid.uuid4().hex[:8]
    mid = lambda index: f"<sync-{index}.{tag}@client.test>"
    maildir = tmp_path / "mail"
    folders = ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]

    # The server side: five messages through the MX port, 1,000 APPENDed (MULTIAPPEND) with
    # flags and a keyword on some, 20 in Archive.
    expected: dict[str, set[str]] = {}
    for number in range(5):
        subject = f"smtp-{number}-{tag}"
        deliver(cluster, address, subject, node=second)
        expected[f"<{subject}@elsewhere.test>"] = set()
    started = time.monotonic()
    batch = []
    for index in range(1000):
        flags = initial_flags(index)
        keyword = {"$Label1"} if index % 13 == 0 else set()
        batch.append((" ".join(sorted(flags | keyword)), sync_message(index, tag)))
        expected[mid(index)] = flags
    multiappend(cluster, first, address, "INBOX", batch)
    archive = {f"<archive-{n}.{tag}@client.test>": ({"\\Seen"} if n % 2 else set()) for n in range(20)}
    multiappend(cluster, first, address, "Archive",
                [(" ".join(flags), f"Subject: archived {n}\r\nMessage-ID: {m}\r\n\r\nold\r\n".encode())
                 for n, (m, flags) in enumerate(archive.items())])
    print(f"1,000 messages appended in {time.monotonic() - started:.1f} s")

    # Run 1, against the first node: everything comes down, nothing is duplicated.
    mbsync(cluster, first, address, tmp_path)
    client = login(cluster, second, address)
    assert by_message_id(server_messages(client, "INBOX")) == expected
    local = by_message_id(maildir_messages(maildir / "INBOX"))
    assert len(local) == 1005
    assert local == expected, "flags after the first sync differ: " + repr(
        sorted((m, sorted(expected.get(m, ())), sorted(f)) for m, f in local.items() if expected.get(m) != f)[:10])
    assert by_message_id(maildir_messages(maildir / "Archive")) == archive
    for folder in folders:
        assert (maildir / folder / "cur").is_dir(), f"{folder} not created locally"

    # Local changes: flag, read, unread, delete (rm and the T flag), new messages (some already
    # flagged), and a new folder.
    files = {m: path for path, m, _ in maildir_messages(maildir / "INBOX")}
    for index in range(100, 120):                 # flagged locally
        set_maildir_flags(files[mid(index)], expected[mid(index)] | {"\\Flagged"})
        expected[mid(index)] |= {"\\Flagged"}
    for index in range(201, 221, 2):              # read locally (odd: unseen so far)
        set_maildir_flags(files[mid(index)], expected[mid(index)] | {"\\Seen"})
        expected[mid(index)] |= {"\\Seen"}
    for index in range(300, 320, 2):              # marked unread locally
        set_maildir_flags(files[mid(index)], expected[mid(index)] - {"\\Seen"})
        expected[mid(index)] -= {"\\Seen"}
    for index in range(400, 415):                 # removed locally
        files[mid(index)].unlink()
        del expected[mid(index)]
    for index in range(500, 505):                 # trashed locally: \Deleted, then expunged
        set_maildir_flags(files[mid(index)], expected[mid(index)] | {"\\Deleted"})
        del expected[mid(index)]
    for number in range(10):
        flags = None if number < 7 else ({"\\Seen"} if number < 9 else {"\\Seen", "\\Flagged"})
        write_maildir_message(maildir / "INBOX", sync_message(2000 + number, tag, f"Written locally {number}.\r\n"), flags)
        expected[mid(2000 + number)] = set(flags or ())
    local_folder = {f"<local-{n}.{tag}@client.test>": set() for n in range(3)}
    for m in local_folder:
        write_maildir_message(maildir / "Local", f"Subject: local\r\nMessage-ID: {m}\r\n\r\nlocal\r\n".encode())

    # Meanwhile on the server (through the second node): new mail, a flag, an unread, expunges.
    uids = {m: uid for uid, m, _ in server_messages(client, "INBOX")}
    client.select("INBOX")
    for number in range(5):
        data = sync_message(3000 + number, tag, f"Arrived on the server {number}.\r\n")
        assert client.append("INBOX", "(\\Seen)" if number == 4 else None, None, data)[0] == "OK"
        expected[mid(3000 + number)] = {"\\Seen"} if number == 4 else set()
    for index in range(601, 606):
        assert client.uid("STORE", str(uids[mid(index)]), "+FLAGS", "(\\Flagged)")[0] == "OK"
        expected[mid(index)] |= {"\\Flagged"}
    for index in (800, 802):
        assert client.uid("STORE", str(uids[mid(index)]), "-FLAGS", "(\\Seen)")[0] == "OK"
        expected[mid(index)] -= {"\\Seen"}
    doomed = ",".join(str(uids[mid(index)]) for index in range(700, 705))
    assert client.uid("STORE", doomed, "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert client.expunge()[0] == "OK"
    for index in range(700, 705):
        del expected[mid(index)]
    client.logout()

    # Run 2, against the second node: both sides' changes cross, nothing is duplicated.
    mbsync(cluster, second, address, tmp_path)
    client = login(cluster, first, address)
    server = by_message_id(server_messages(client, "INBOX"))
    local = by_message_id(maildir_messages(maildir / "INBOX"))
    diff = lambda got: sorted((m, sorted(expected.get(m, ["(absent)"])), sorted(got.get(m, ["(absent)"])))
                              for m in set(expected) | set(got) if expected.get(m) != got.get(m))
    assert server == expected, f"server after the second sync (message, expected, got): {diff(server)[:10]}"
    assert local == expected, f"Maildir after the second sync (message, expected, got): {diff(local)[:10]}"
    assert len(server) == 1005 - 15 - 5 + 10 + 5 - 5 == 995
    assert by_message_id(server_messages(client, "Local")) == local_folder, "new local folder pushed up"
    assert by_message_id(server_messages(client, "Archive")) == archive
    # mbsync changes system flags with +FLAGS/-FLAGS: the keyword it does not know stays.
    full = {m: flags for _, m, flags in server_messages(client, "INBOX")}
    labelled = [mid(i) for i in range(0, 1000, 13) if mid(i) in full]
    assert labelled and all("$Label1" in full[m] for m in labelled), [m for m in labelled if "$Label1" not in full[m]]
    # A message written locally went up byte for byte, apart from the X-TUID header mbsync
    # adds to what it uploads (its way to find a message again when APPENDUID is missing).
    client.select("INBOX", readonly=True)
    typ, data = client.uid("SEARCH", "HEADER", "Message-ID", mid(2003))
    assert typ == "OK" and len(data[0].split()) == 1, data
    typ, data = client.uid("FETCH", data[0].decode(), "(BODY.PEEK[])")
    uploaded = re.sub(rb"(?m)^X-TUID: [^\r\n]*\r\n", b"", data[0][1], count=1)
    assert uploaded == sync_message(2003, tag, "Written locally 3.\r\n"), data

    # Run 3, against the first node again: nothing left to do, nothing changes on either side.
    all_folders = folders + ["Local"]
    before_server, before_local = server_snapshot(client, all_folders), maildir_snapshot(maildir)
    client.logout()
    mbsync(cluster, first, address, tmp_path)
    client = login(cluster, second, address)
    assert server_snapshot(client, all_folders) == before_server, "the third sync changed the server"
    assert maildir_snapshot(maildir) == before_local, "the third sync changed the Maildir"
    client.logout()
    elapsed = time.monotonic() - test_started
    print(f"mbsync test: {elapsed:.1f} s")


# ---- mutt in tmux

class Tmux:
    """A private tmux server (its own socket) running one program in a 160x50 window."""

    def __init__(self, home: Path):
        self.socket = f"svcpkg-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        self.env.update(HOME=str(home), TERM="xterm", LANG="C.UTF-8")

    def tmux(self, *args, capture=False, timeout=10) -> subprocess.CompletedProcess:
        # The tmux server forks off and must not inherit our pipes: only capture short-lived calls.
        return subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], env=self.env,
                              stdin=subprocess.DEVNULL, timeout=timeout,
                              stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                              stderr=subprocess.STDOUT if capture else subprocess.DEVNULL, text=True)

    def start(self, command: str) -> None:
        assert self.tmux("new-session", "-d", "-x", "160", "-y", "50", command).returncode == 0

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", capture=True).stdout

    def keys(self, *keys: str) -> None:
        assert self.tmux("send-keys", *keys).returncode == 0

    def literal(self, text: str) -> None:
        assert self.tmux("send-keys", "-l", text).returncode == 0

    def wait(self, predicate, what: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; screen:\n{screen}")
            time.sleep(0.1)

    def running(self) -> bool:
        return self.tmux("has-session").returncode == 0

    def kill(self) -> None:
        self.tmux("kill-server")
        # tmux leaves its socket behind when the last session ends by itself.
        directory = Path(self.env.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"
        (directory / self.socket).unlink(missing_ok=True)


def index_line(screen: str, subject: str) -> str | None:
    """The index line `[->]   N [ZZZ] subject` of a subject (`->`: mutt's arrow_cursor on
    the current message), or None."""
    for line in screen.splitlines():
        if re.match(rf"^(->)?\s*\d+ \[.{{3}}\] {re.escape(subject)}\s*$", line):
            return line
    return None


def status_flags(line: str) -> str:
    """The three %Z characters of an index line."""
    return line.split("[", 1)[1][:3]


def test_mutt_reads_flags_moves_and_deletes_over_imap(cluster, tmp_path):
    need("mutt", "tmux")
    test_started = time.monotonic()
    first, second = cluster.nodes[0], cluster.nodes[1]
    address = add_user(cluster)
    tag = uuid.uuid4().hex[:8]
    subjects = {name: f"{name}-{tag}" for name in ("alpha", "beta", "gamma", "delta", "epsilon")}
    stored = {}
    for name in ("alpha", "beta", "gamma", "delta"):
        stored[name] = deliver(cluster, address, subjects[name], body=f"This is {name}.\r\n", node=first)

    url = f"imap://{cluster.node_ip(first)}:{cluster.port('IMAP')}/"
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(
        f'set imap_user="{address}"\nset imap_pass="{PASSWORD}"\nset ssl_starttls=no\nset ssl_force_tls=no\n'
        f'set folder="{url}"\nset spoolfile="+INBOX"\nset header_cache=""\nset message_cachedir=""\n'
        'set mark_old=no\nset delete=yes\nset move=no\nset confirmappend=no\nset confirmcreate=no\n'
        'set quit=yes\nset wait_key=no\nset record=""\nset imap_check_subscribed=no\nset sort=date-received\n'
        'set index_format="%4C [%Z] %s"\nset arrow_cursor=yes\nset pager_index_lines=0\nset mail_check=1\n'
        'set timeout=1\n')
    tmux = Tmux(tmp_path)
    try:
        tmux.start(f"mutt -n -F {muttrc} -f {url}INBOX")
        screen = tmux.wait(lambda s: all(index_line(s, subjects[n]) for n in ("alpha", "beta", "gamma", "delta")),
                           "the INBOX index")
        assert "Msgs:4 New:4" in screen, screen

        def select(name: str) -> None:
            tmux.keys("/")
            tmux.wait(lambda s: "Search for:" in s, "the search prompt")
            tmux.keys("C-u")
            tmux.literal(f"~s {subjects[name]}")
            tmux.keys("Enter")
            tmux.wait(lambda s: (line := index_line(s, subjects[name])) and line.startswith("->"),
                      f"the cursor on {name}")

        # Read alpha in the pager, back to the index.
        select("alpha")
        tmux.keys("Enter")
        screen = tmux.wait(lambda s: "This is alpha." in s, "alpha in the pager")
        assert f"Subject: {subjects['alpha']}" in screen
        tmux.keys("i")
        tmux.wait(lambda s: (line := index_line(s, subjects["alpha"])) and status_flags(line) == "   ", "alpha read")
        # Flag beta.
        select("beta")
        tmux.keys("F")
        tmux.wait(lambda s: (line := index_line(s, subjects["beta"])) and status_flags(line) == "N !", "beta flagged")
        # Save gamma to Archive (mutt: copy, then mark deleted).
        select("gamma")
        tmux.keys("s")
        tmux.wait(lambda s: "Save to mailbox" in s, "the save prompt")
        tmux.keys("C-u")
        tmux.literal("=Archive")
        tmux.keys("Enter")
        tmux.wait(lambda s: (line := index_line(s, subjects["gamma"])) and "D" in status_flags(line), "gamma saved")
        # Delete delta, then sync: the deleted ones are expunged.
        select("delta")
        tmux.keys("d")
        tmux.wait(lambda s: (line := index_line(s, subjects["delta"])) and "D" in status_flags(line), "delta deleted")
        tmux.keys("$")
        screen = tmux.wait(lambda s: "Msgs:2 " in s and index_line(s, subjects["gamma"]) is None
                           and index_line(s, subjects["delta"]) is None, "the sync")
        assert "2 kept, 2 deleted" in screen, screen

        # Mail delivered through the other node shows up in the open mailbox.
        stored["epsilon"] = deliver(cluster, address, subjects["epsilon"], body="This is epsilon.\r\n", node=second)
        tmux.wait(lambda s: index_line(s, subjects["epsilon"]) is not None, "epsilon arriving", timeout=20)
        tmux.keys("q")
        deadline = time.monotonic() + 15
        while tmux.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not tmux.running(), "mutt did not quit: " + tmux.screen()
    finally:
        tmux.kill()

    # What the other node sees.
    client = login(cluster, second, address)
    inbox = server_messages(client, "INBOX")
    assert sorted((m, sorted(flags)) for _, m, flags in inbox) == sorted([
        (f"<{subjects['alpha']}@elsewhere.test>", ["\\Seen"]),
        (f"<{subjects['beta']}@elsewhere.test>", ["\\Flagged"]),
        (f"<{subjects['epsilon']}@elsewhere.test>", []),
    ]), inbox
    archive = server_messages(client, "Archive")
    assert [(m, sorted(flags)) for _, m, flags in archive] == [(f"<{subjects['gamma']}@elsewhere.test>", [])], archive
    client.select("Archive", readonly=True)
    typ, data = client.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == stored["gamma"], "the archived copy is the delivered message byte for byte"
    assert server_messages(client, "Trash") == []
    client.logout()
    elapsed = time.monotonic() - test_started
    print(f"mutt test: {elapsed:.1f} s")
