#!/usr/bin/env python3
"""IMAP: a big mailbox, a mixed concurrent workload and idle connections, against svcpkg (a
local dev cluster) and against Dovecot's imapd on the same Maildir copies, in one run.

    bench/imap_bench.py [--messages 100000] [--clients 20] [--mixed-seconds 20]
                        [--idle 5000] [--nodes 2] [--bin PATH] [--skip-dovecot]

1. Big mailbox: --messages messages (2-4 KiB, distinct subjects, senders and bodies) written
   into one user's Maildir `new/`. Timed: the first SELECT (which gives every message its UID),
   a second SELECT, `FETCH 1:* (FLAGS ENVELOPE)`, and `SEARCH TEXT` for a word in one message in
   a thousand: first, again, and once settled (svcpkg indexes a big folder in the background
   after its first search: searches are repeated every 5 s until one takes under a second).
2. Mixed: --clients processes, each with its own 500-message mailbox, loop for --mixed-seconds
   over SELECT, FETCH 1:50 (FLAGS ENVELOPE), FETCH n BODY.PEEK[], STORE n +FLAGS (\\Seen),
   SEARCH UNSEEN, NOOP; operations per second over all clients.
3. Idle: --idle connections to one node (not through HAProxy), spread over the mixed users,
   each logged in with the INBOX selected and in IDLE; the memory the server processes grew by, per connection (RSS from
   /proc; for Dovecot the sum over all of its processes, one imap process per connection).

Dovecot (Debian's dovecot-imapd, installed without starting its service) runs as a throwaway
instance with its own config on 127.0.0.47; mail is the same files copied. Needs root.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pop3_bench  # noqa: E402  (the cluster, user and Dovecot plumbing is shared)

DOVECOT_IP, DOVECOT_PORT = "127.0.0.47", 2843
# Ports of their own, so this can run beside the other benchmarks' clusters.
pop3_bench.BENCH_PORTS = {key: str(int(value) + 300) for key, value in pop3_bench.BENCH_PORTS.items()}
PASSWORD = pop3_bench.PASSWORD
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def message(user: str, number: int) -> bytes:
    rng = random.Random(number)
    subject = " ".join(rng.choice(WORDS) for _ in range(5))
    body_lines = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(rng.randint(20, 50))]
    if number % 1000 == 0:
        body_lines.insert(5, "the needle is haystackneedle here")
    head = (f"From: Sender {number % 97} <s{number % 97}@sender.test>\r\nTo: {user}\r\nSubject: {subject} {number}\r\n"
            f"Date: Mon, 7 Dec 2026 10:{number % 60:02d}:00 +0000\r\nMessage-ID: <{number}.{user}>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
    return head.encode() + "\r\n".join(body_lines).encode() + b"\r\n"


def fill_maildir(maildir: Path, user: str, count: int) -> None:
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for number in range(1, count + 1):
        data = message(user, number)
        (maildir / "new" / f"{1700000000 + number}.M{number}P1.bench,S={len(data)}").write_bytes(data)


# ---------------------------------------------------------------- a minimal IMAP client


class Client:
    def __init__(self, host: str, port: int, timeout: float = 600):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = bytearray()
        self.counter = 0
        self.line()

    def line(self) -> bytes:
        while True:
            end = self.buffer.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[:end + 2]
                return line
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk

    def skip(self, size: int) -> None:
        while len(self.buffer) < size:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        del self.buffer[:size]

    def command(self, text: str) -> tuple[int, bytes]:
        """Runs a command; returns the number of untagged responses and the tagged line."""
        self.counter += 1
        tag = f"t{self.counter}".encode()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        untagged = 0
        while True:
            line = self.line()
            literal = re.search(rb"\{(\d+)\}$", line)
            while literal:
                self.skip(int(literal.group(1)))
                line = self.line()
                literal = re.search(rb"\{(\d+)\}$", line)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text}: {line!r}")
                return untagged, line
            untagged += 1

    def login(self, user: str) -> None:
        self.command(f"LOGIN {user} {PASSWORD}")

    def close(self) -> None:
        self.sock.close()


def timed(client: Client, text: str) -> tuple[float, int]:
    start = time.monotonic()
    count, _ = client.command(text)
    return time.monotonic() - start, count


def big_mailbox(host: str, port: int, user: str, index_wait: float) -> dict[str, float]:
    client = Client(host, port)
    client.login(user)
    results = {}
    results["first SELECT"], _ = timed(client, "SELECT INBOX")
    results["second SELECT"], _ = timed(client, "SELECT INBOX")
    results["FETCH 1:* (FLAGS ENVELOPE)"], fetched = timed(client, "FETCH 1:* (FLAGS ENVELOPE)")
    # Again: svcpkg answers from its node-local ENVELOPE cache, Dovecot from its index cache.
    results["FETCH ENVELOPE (again)"], _ = timed(client, "FETCH 1:* (FLAGS ENVELOPE)")
    results["SEARCH TEXT (first)"], _ = timed(client, "SEARCH TEXT haystackneedle")
    results["SEARCH TEXT (again)"], _ = timed(client, "SEARCH TEXT haystackneedle")
    # svcpkg indexes a big folder in the background after its first search: wait for a search
    # that is fast (or give up after --index-wait seconds) and time it.
    start = time.monotonic()
    while True:
        results["SEARCH TEXT (settled)"], _ = timed(client, "SEARCH TEXT haystackneedle")
        if results["SEARCH TEXT (settled)"] < 1 or time.monotonic() - start > index_wait:
            break
        time.sleep(5)
    results["settled after"] = time.monotonic() - start
    results["fetched"] = fetched
    client.command("LOGOUT")
    client.close()
    return results


def mixed_worker(args) -> int:
    host, port, user, seconds, count = args
    rng = random.Random(user)
    client = Client(host, port)
    client.login(user)
    operations = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        n = rng.randint(1, count)
        for text in ("SELECT INBOX", "FETCH 1:50 (FLAGS ENVELOPE)", f"FETCH {n} BODY.PEEK[]", f"STORE {n} +FLAGS (\\Seen)",
                     "SEARCH UNSEEN", "NOOP"):
            client.command(text)
            operations += 1
    client.command("LOGOUT")
    client.close()
    return operations


def mixed(host: str, port: int, users: list[str], seconds: float, count: int) -> float:
    with mp.Pool(len(users)) as pool:
        start = time.monotonic()
        operations = sum(pool.map(mixed_worker, [(host, port, u, seconds, count) for u in users]))
        return operations / (time.monotonic() - start)


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def idle(host: str, port: int, users: list[str], connections: int, pids) -> float:
    """KiB of server memory per idle connection (logged in, INBOX selected, in IDLE), the
    connections spread over `users` in turn."""
    before = rss_kib(pids())
    clients = []
    try:
        for number in range(connections):
            client = Client(host, port, timeout=120)
            client.login(users[number % len(users)])
            client.command("SELECT INBOX")
            client.sock.sendall(b"i IDLE\r\n")
            assert client.line().startswith(b"+")
            clients.append(client)
        time.sleep(3)
        after = rss_kib(pids())
    finally:
        for client in clients:
            client.close()
    return (after - before) / connections


# ---------------------------------------------------------------- servers


def dovecot_instance(work: Path, users, maildirs: dict[str, Path], connections: int):
    import pwd
    nobody = pwd.getpwnam("nobody")
    os.chmod(work, 0o755)
    for sub in ("run", "state", "mail"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    for user in users:
        shutil.copytree(maildirs[user], work / "mail" / user.split("@")[0] / "Maildir")
    subprocess.run(["chown", "-R", f"{nobody.pw_uid}:{nobody.pw_gid}", str(work / "mail")], check=True)
    (work / "passwd").write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}\n" for u in users))
    conf = work / "dovecot.conf"
    conf.write_text(f"""
base_dir = {work}/run
state_dir = {work}/state
log_path = {work}/dovecot.log
protocols = imap
listen = {DOVECOT_IP}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:{work}/mail/%n/Maildir
default_process_limit = {connections + 100}
default_client_limit = {connections + 100}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {work}/passwd
}}
userdb {{
  driver = static
  args = uid={nobody.pw_uid} gid={nobody.pw_gid} home={work}/mail/%n
}}
service imap-login {{
  inet_listener imap {{
    address = {DOVECOT_IP}
    port = {DOVECOT_PORT}
  }}
  inet_listener imaps {{
    port = 0
  }}
  process_min_avail = 2
}}
service anvil {{
  client_limit = {connections * 3 + 100}
}}
service imap {{
  process_limit = {connections + 100}
}}
mail_max_userip_connections = {connections + 100}
""")
    proc = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            socket.create_connection((DOVECOT_IP, DOVECOT_PORT), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"dovecot did not start; see {work}/dovecot.log")


def pids_of(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def report(name: str, big: dict, mixed_rate: float, idle_kib: float | None) -> None:
    print(f"{name}:")
    for key in ("first SELECT", "second SELECT", "FETCH 1:* (FLAGS ENVELOPE)", "FETCH ENVELOPE (again)", "SEARCH TEXT (first)",
                "SEARCH TEXT (again)", "SEARCH TEXT (settled)"):
        print(f"  {key:28s} {big[key]:8.2f} s")
    print(f"  {'(settled after)':28s} {big['settled after']:8.1f} s")
    print(f"  {'mixed workload':28s} {mixed_rate:8.0f} ops/s")
    if idle_kib is not None:
        print(f"  {'memory per idle connection':28s} {idle_kib:8.1f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--mixed-messages", type=int, default=500)
    parser.add_argument("--mixed-seconds", type=float, default=20)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--bin")
    parser.add_argument("--skip-dovecot", action="store_true")
    parser.add_argument("--index-wait", type=float, default=600, help="seconds to wait for a fast SEARCH after the first")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, args.idle * 2 + 1000))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # inherited by the nodes dev-cluster starts
    big_user = "ibig@example.test"
    users = [f"imix{i}@example.test" for i in range(1, args.clients + 1)]
    print(f"{args.messages} messages in the big mailbox; {args.clients} mixed clients x {args.mixed_messages} messages, "
          f"{args.mixed_seconds:.0f} s; {args.idle} idle connections; svcpkg {args.nodes} nodes; {os.cpu_count()} CPUs; "
          f"open files limit {wanted}", flush=True)
    pop_args = argparse.Namespace(nodes=args.nodes, bin=args.bin)
    state, env, cluster_env = pop3_bench.svcpkg_cluster(pop_args, [big_user, *users])
    subprocess.run(
        ["ldapmodify", "-x", "-H", cluster_env["LDAP_URI"], "-D", cluster_env["LDAP_ADMIN_DN"], "-w", cluster_env["LDAP_ADMIN_PW"]],
        input=f"dn: cn=cluster,ou=svcpkg,{cluster_env['LDAP_BASE']}\nchangetype: modify\nreplace: svcpkgMaxConnectionsPerUser\n"
              f"svcpkgMaxConnectionsPerUser: {args.idle + 100}\n", text=True, check=True, capture_output=True,
        env=dict(env, LDAPNOINIT="1"))
    time.sleep(1.5)  # one config poll
    work = Path(tempfile.mkdtemp(prefix="dovecot-imap-bench-"))
    dovecot = None
    try:
        shared = Path(cluster_env["SHARED_ROOT"])
        maildirs = {}
        start = time.monotonic()
        maildirs[big_user] = pop3_bench.svcpkg_home(shared, big_user) / "Maildir"
        fill_maildir(maildirs[big_user], big_user, args.messages)
        for user in users:
            maildirs[user] = pop3_bench.svcpkg_home(shared, user) / "Maildir"
            fill_maildir(maildirs[user], user, args.mixed_messages)
        print(f"mail written in {time.monotonic() - start:.1f} s", flush=True)
        # Keep a pristine copy for Dovecot before svcpkg moves new/ to cur/.
        pristine = work / "pristine"
        for user, maildir in maildirs.items():
            shutil.copytree(maildir, pristine / user)
        node = cluster_env["NODES"].split()[0]
        node_ip = cluster_env[f"NODE_{node}_IP"]
        port = int(cluster_env["IMAP_PORT"])
        ours_big = big_mailbox(node_ip, port, big_user, args.index_wait)
        ours_mixed = mixed("127.0.0.1", port, users, args.mixed_seconds, args.mixed_messages)
        node_pids = lambda: pids_of(f"svcpkg serve .*nodes/{node}/")  # noqa: E731
        ours_idle = idle(node_ip, port, users, args.idle, node_pids) if args.idle else None
        report("svcpkg", ours_big, ours_mixed, ours_idle)
        if args.skip_dovecot:
            return
        if not Path("/usr/lib/dovecot/imap").exists():
            print("dovecot: not installed (apt-get install dovecot-imapd, without starting its service)")
            return
        dovecot = dovecot_instance(work, [big_user, *users], {u: pristine / u for u in maildirs}, args.idle)
        # Dovecot (without an FTS plugin) has no index to wait for: one settled search is enough.
        theirs_big = big_mailbox(DOVECOT_IP, DOVECOT_PORT, big_user, 0)
        theirs_mixed = mixed(DOVECOT_IP, DOVECOT_PORT, users, args.mixed_seconds, args.mixed_messages)
        theirs_idle = idle(DOVECOT_IP, DOVECOT_PORT, users, args.idle, lambda: pids_of("dovecot")) if args.idle else None
        report("dovecot", theirs_big, theirs_mixed, theirs_idle)
        print("ratios svcpkg/dovecot (time: below 1 is faster; rate: above 1 is faster; memory: below 1 is smaller):")
        for key in ("first SELECT", "second SELECT", "FETCH 1:* (FLAGS ENVELOPE)", "FETCH ENVELOPE (again)", "SEARCH TEXT (first)",
                "SEARCH TEXT (again)", "SEARCH TEXT (settled)"):
            print(f"  {key:28s} {ours_big[key] / max(theirs_big[key], 1e-6):6.2f}")
        print(f"  {'mixed workload':28s} {ours_mixed / theirs_mixed:6.2f}")
        if ours_idle is not None and theirs_idle:
            print(f"  {'memory per idle connection':28s} {ours_idle / theirs_idle:6.2f}")
    finally:
        if dovecot:
            dovecot.terminate()
            dovecot.wait(10)
        subprocess.run([str(pop3_bench.DEV_CLUSTER), "down", "--state", str(state)], env=env, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
