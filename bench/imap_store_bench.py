#!/usr/bin/env python3
"""IMAP: one message's \\Seen in a big INBOX, on a running dev cluster (no peer server yet).

    bench/imap_store_bench.py --state DIR [--maildir SRC] [--runs 21]

--maildir hard-links the files of SRC/cur and SRC's UID list (and its change log) into the
first demo user's INBOX first (SRC on the same file system, e.g. a folder left by
`svcpkg-bench-store --keep`: <root>/poll/mail/bench.test/*/user0/Maildir). Then, logged in as
that user on node 1 (the writer) and node 2 (a reader): SELECT on both, and --runs times a
`UID STORE n +FLAGS (\\Seen)` (or -FLAGS when set) on a different message each time, each
followed by a NOOP on the other node. Prints medians and ranges of the wall times.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import shlex
import statistics
import time
from pathlib import Path


def cluster_env(state: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in (state / "cluster.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            words = shlex.split(value)
            env[key] = words[0] if words else ""
    return env


def timed(call) -> tuple[float, object]:
    start = time.perf_counter()
    result = call()
    return (time.perf_counter() - start) * 1e3, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--maildir", type=Path)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    env = cluster_env(args.state)
    user, password = env["USERS"].split()[0].split(":", 1)
    nodes = env["NODES"].split()
    port = int(env["IMAP_PORT"])

    def connect(node: str) -> imaplib.IMAP4:
        client = imaplib.IMAP4(env[f"NODE_{node}_IP"], port)
        client.login(user, password)
        return client

    if args.maildir:
        first = connect(nodes[0])
        first.select("INBOX")  # makes the home
        first.logout()
        local, domain = user.split("@")
        homes = list(Path(env["SHARED_ROOT"], "mail", domain).glob(f"*/{local}/Maildir"))
        assert len(homes) == 1, homes
        target = homes[0]
        for name in os.listdir(args.maildir / "cur"):
            os.link(args.maildir / "cur" / name, target / "cur" / name)
        for name in ("svcpkg-uidlist", "svcpkg-uidlist.log"):
            if (args.maildir / name).exists():
                (target / name).write_bytes((args.maildir / name).read_bytes())

    writer, reader = connect(nodes[0]), connect(nodes[1 % len(nodes)])
    ms, answer = timed(lambda: writer.select("INBOX"))
    count = int(answer[1][0])
    print(f"writer SELECT ({count} messages): {ms:.0f} ms")
    ms, _ = timed(lambda: reader.select("INBOX"))
    print(f"reader SELECT: {ms:.0f} ms")
    _, data = writer.uid("SEARCH", None, "ALL")
    uids = data[0].split()
    stores: list[float] = []
    noops: list[float] = []
    for run in range(args.runs):
        uid = uids[(run * 4999) % len(uids)].decode()
        _, flags = writer.uid("FETCH", uid, "(FLAGS)")
        operation = "-FLAGS" if b"\\Seen" in flags[0] else "+FLAGS"
        ms, answer = timed(lambda: writer.uid("STORE", uid, operation, "(\\Seen)"))
        assert answer[0] == "OK", answer
        stores.append(ms)
        ms, _ = timed(reader.noop)
        noops.append(ms)
    print(f"UID STORE one \\Seen: median {statistics.median(stores):.1f} ms ({min(stores):.1f}-{max(stores):.1f}) over {args.runs}")
    print(f"NOOP on the other node after it: median {statistics.median(noops):.1f} ms ({min(noops):.1f}-{max(noops):.1f})")
    time.sleep(1.5)
    ms, _ = timed(reader.noop)
    print(f"NOOP on the other node 1.5 s later: {ms:.1f} ms")
    writer.logout()
    reader.logout()


if __name__ == "__main__":
    main()
