#!/usr/bin/env python3
"""Web-mail on a 100,000-message mailbox, through HAProxy's HTTP port of a fresh dev cluster.

    bench/web_bench.py --bin PATH [--messages 100000] [--requests 200] [--clients 50] [--seconds 20] [--nodes 2]
                       [--thread-size 4]

1. --messages messages (2-4 KiB, as bench/imap_bench.py writes them) in one user's Maildir
   `new/`, in conversations of --thread-size (every message after a conversation's first has
   In-Reply-To and References naming it); the first inbox page is timed on its own (it gives
   every message its UID).
2. --requests inbox pages (page 1, newest 50) one after the other, and --requests message
   pages (random messages; opening one marks it read, which the next page then syncs):
   median and p99 of the server time (the `Server-Timing: app;dur=` header the node sends)
   and of the time the client saw.
3. The conversation view (`/mail?view=conversations`, 50 newest conversations): how long until
   every node has indexed the folder (pages say "being built" until then), then --requests
   pages, then the first page after a new message arrived (the grouping is worked out again
   from the node's cache) — each node once, as HAProxy alternates.
4. --clients threads, each its own login session, loading the inbox page for --seconds:
   requests per second over all clients, and the median/p99 of the client time.

The cluster uses ports of its own (those of pop3_bench + 400), so it can run beside the
other benchmarks. Figures are printed with the command's arguments.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import imap_bench  # noqa: E402  (message text and Maildir filling)
import pop3_bench  # noqa: E402  (cluster and user plumbing)

pop3_bench.BENCH_PORTS = {key: str(int(value) + 400) for key, value in pop3_bench.BENCH_PORTS.items()}
USER = "webbench@example.test"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def server_ms(response: requests.Response) -> float:
    match = re.search(r"app;dur=([0-9.]+)", response.headers.get("Server-Timing", ""))
    assert match, "no Server-Timing header (is this a build with web-mail?)"
    return float(match.group(1))


def login(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(base + "/login", timeout=30)
    nonce = re.search(r'name="_login" value="([^"]*)"', page.text).group(1)
    response = session.post(base + "/login", data={"_login": nonce, "user": USER, "password": pop3_bench.PASSWORD},
                            allow_redirects=False, timeout=60)
    assert response.status_code == 303, response.text
    return session


def threaded_message(user: str, number: int, size: int) -> bytes:
    """imap_bench's message, answering the first message of its conversation of `size`."""
    data = imap_bench.message(user, number)
    first = number - (number - 1) % size
    if first == number:
        return data
    reply = f"In-Reply-To: <{first}.{user}>\r\nReferences: <{first}.{user}>\r\nMIME-Version:"
    return data.replace(b"MIME-Version:", reply.encode(), 1)


def fill_threaded_maildir(maildir: Path, user: str, count: int, size: int) -> None:
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for number in range(1, count + 1):
        data = threaded_message(user, number, size)
        (maildir / "new" / f"{1700000000 + number}.M{number}P1.bench,S={len(data)}").write_bytes(data)


def report(name: str, server: list[float], client: list[float]) -> None:
    print(f"{name}: n={len(client)}  server median {statistics.median(server):.1f} ms, p99 {percentile(server, 0.99):.1f} ms;"
          f"  client median {statistics.median(client):.1f} ms, p99 {percentile(client, 0.99):.1f} ms")


def timed_get(session: requests.Session, url: str) -> tuple[float, float]:
    start = time.perf_counter()
    response = session.get(url, timeout=600)
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status_code == 200, f"{url}: {response.status_code}"
    return server_ms(response), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", help="svcpkg binary (a release build for real figures)")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--thread-size", type=int, default=4, help="messages per conversation (1: no replies)")
    args = parser.parse_args()
    print(f"web_bench: {' '.join(sys.argv[1:])}")

    state, env, cluster_env = pop3_bench.svcpkg_cluster(args, [USER])
    try:
        home = pop3_bench.svcpkg_home(Path(cluster_env["SHARED_ROOT"]), USER)
        started = time.perf_counter()
        fill_threaded_maildir(home / "Maildir", USER, args.messages, max(1, args.thread_size))
        print(f"wrote {args.messages} messages in {time.perf_counter() - started:.1f} s")
        base = f"http://127.0.0.1:{cluster_env['HTTP_PORT']}"
        session = login(base)

        server, client = timed_get(session, base + "/mail")
        print(f"first inbox page (assigns {args.messages} UIDs): server {server:.0f} ms, client {client:.0f} ms")

        server_times, client_times = [], []
        for _ in range(args.requests):
            server, client = timed_get(session, base + "/mail")
            server_times.append(server)
            client_times.append(client)
        report("inbox page (50 newest)", server_times, client_times)

        rng = random.Random(7)
        server_times, client_times = [], []
        for _ in range(args.requests):
            server, client = timed_get(session, base + f"/message?folder=INBOX&uid={rng.randint(1, args.messages)}")
            server_times.append(server)
            client_times.append(client)
        report("open a message", server_times, client_times)
        server_times, client_times = [], []
        for _ in range(min(20, args.requests)):
            server, client = timed_get(session, base + "/mail")
            server_times.append(server)
            client_times.append(client)
        report("inbox page after flags changed", server_times, client_times)

        conversations = base + "/mail?folder=INBOX&view=conversations"
        started = time.perf_counter()
        ready = 0
        while ready < 2 * args.nodes:
            page = session.get(conversations, timeout=600)
            assert page.status_code == 200, page.status_code
            ready = ready + 1 if "being built" not in page.text else 0
            if ready == 0:
                time.sleep(1)
        print(f"conversation view available on every node (folder indexed) after {time.perf_counter() - started:.1f} s")
        shown = re.search(r"of (\d+) conversations", page.text)
        assert shown, "the conversation view fell back to the message list"
        print(f"the folder has {shown.group(1)} conversations")
        server_times, client_times = [], []
        for _ in range(args.requests):
            server, client = timed_get(session, conversations)
            server_times.append(server)
            client_times.append(client)
        report(f"conversation page (50 newest of {args.messages // max(1, args.thread_size)})", server_times, client_times)
        data = threaded_message(USER, args.messages + 1, max(1, args.thread_size))
        (home / "Maildir" / "new" / f"{1800000000}.M0P1.bench,S={len(data)}").write_bytes(data)
        for _ in range(args.nodes):
            server, client = timed_get(session, conversations)
            print(f"first conversation page after a new message (grouping worked out again): server {server:.0f} ms, client {client:.0f} ms")

        sessions = [login(base) for _ in range(args.clients)]
        for each in sessions:
            each.get(base + "/mail", timeout=600)
        lock = threading.Lock()
        times: list[float] = []
        stop = time.perf_counter() + args.seconds

        def worker(each: requests.Session) -> None:
            while time.perf_counter() < stop:
                _, elapsed = timed_get(each, base + "/mail")
                with lock:
                    times.append(elapsed)

        threads = [threading.Thread(target=worker, args=(each,)) for each in sessions]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        print(f"inbox page, {args.clients} concurrent clients: {len(times) / wall:.1f} requests/s "
              f"(client median {statistics.median(times):.1f} ms, p99 {percentile(times, 0.99):.1f} ms)")
    finally:
        subprocess.run([str(pop3_bench.DEV_CLUSTER), "down", "--state", str(state)], env=env, capture_output=True)


if __name__ == "__main__":
    main()
