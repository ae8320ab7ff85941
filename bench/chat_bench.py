#!/usr/bin/env python3
"""Chat: cross-node delivery latency (median, p99) and message rate in one channel whose
members are spread over the nodes of a dev cluster.

    bench/chat_bench.py [--members 200] [--senders 10] [--messages 2000] [--rate 3]
                        [--unthrottled] [--nodes 2] [--bin PATH] [--state DIR]

Every member is a raw IRC connection (SASL PLAIN as one of the demo accounts, a nick of its
own) on node 1, 2, 1, 2, … of the cluster, each from its own 127.0.x.y source address (the
per-address connection limit stays as configured). All join one channel; --senders of them
(alternating nodes too) send --messages lines in all, each at --rate lines/s (within the
default flood limits; --unthrottled raises the limits in LDAP for the run and sends as fast
as the server takes them). Every line carries its send time (one machine, one monotonic
clock); the latency of a delivery is receive time minus send time, counted for members on
another node than the sender (cross-node) and on the same node, separately. Messages/s is
the channel's lines per second from the first send until the last copy arrived (with
--unthrottled: the channel's throughput, each line being one append under the channel's
lock); deliveries/s counts every member's copy over the same time.

--state DIR uses a running dev cluster (its cluster.env); otherwise a fresh cluster is
started with --bin (build it first: `swift build -c release --product svcpkg
--scratch-path .build-release`) on the bench ports below, and stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEV_CLUSTER = REPO / "deploy" / "dev-cluster"
BENCH_PORTS = {
    "SVCPKG_LDAP_PORT": "3589", "SVCPKG_DNS_PORT": "2253", "SVCPKG_SMTP_PORT": "2725",
    "SVCPKG_SUBMISSION_PORT": "2787", "SVCPKG_SMTPS_PORT": "2665", "SVCPKG_POP3_PORT": "2310",
    "SVCPKG_POP3S_PORT": "3195", "SVCPKG_IMAP_PORT": "2343", "SVCPKG_IMAPS_PORT": "3193",
    "SVCPKG_IRC_PORT": "6867", "SVCPKG_IRCS_PORT": "6897", "SVCPKG_HTTP_PORT": "8280",
    "SVCPKG_HTTPS_PORT": "8643", "SVCPKG_AGENT_PORT": "9977",
}


def parse_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip().strip("'\"")
    return env


class Member:
    def __init__(self, index: int, node: str, host: str, port: int, account: tuple[str, str], run: str):
        self.index = index
        self.node = node
        self.host = host
        self.port = port
        self.account = account
        self.nick = f"b{run}x{index}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.latencies: list[tuple[bool, float]] = []  # (cross-node, ms)
        self.received = 0
        self.last_receive = 0.0

    async def line(self) -> str:
        assert self.reader
        raw = await self.reader.readuntil(b"\r\n")
        return raw[:-2].decode("utf-8", "replace")

    def send(self, text: str) -> None:
        assert self.writer
        self.writer.write(text.encode() + b"\r\n")

    async def until(self, needle: str) -> None:
        while True:
            line = await self.line()
            if line.startswith("PING "):
                self.send("PONG " + line[5:])
            if needle in line:
                return
            if line.startswith("ERROR") or " 904 " in line or " 433 " in line:
                raise RuntimeError(f"{self.nick}: {line}")

    async def connect(self, channel: str) -> None:
        source = f"127.0.{1 + self.index // 250}.{1 + self.index % 250}"
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, local_addr=(source, 0), limit=1 << 20)
        self.send("CAP LS 302")
        self.send("CAP REQ :sasl")
        self.send(f"NICK {self.nick}")
        self.send(f"USER {self.nick} 0 * :bench")
        self.send("AUTHENTICATE PLAIN")
        await self.until("AUTHENTICATE +")
        token = base64.b64encode(f"\0{self.account[0]}\0{self.account[1]}".encode()).decode()
        self.send(f"AUTHENTICATE {token}")
        await self.until(" 903 ")
        self.send("CAP END")
        await self.until(" 001 ")
        self.send(f"JOIN {channel}")
        await self.until(" 366 ")

    async def listen(self, nodes_of: dict[str, str]) -> None:
        while True:
            try:
                line = await self.line()
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            now = time.monotonic_ns()
            if line.startswith("PING "):
                self.send("PONG " + line[5:])
                continue
            marker = line.find(" :bench ")
            if marker < 0 or " PRIVMSG " not in line:
                continue
            sender, _, sent = line[marker + 8:].partition(" ")
            try:
                sent_ns = int(sent.split()[0])
            except (ValueError, IndexError):
                continue
            self.latencies.append((nodes_of.get(sender) != self.node, (now - sent_ns) / 1e6))
            self.received += 1
            self.last_receive = time.monotonic()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def run(args, env: dict[str, str]) -> None:
    nodes = env["NODES"].split()[: args.nodes]
    port = int(env["IRC_PORT"])
    users = [pair.split(":", 1) for pair in env["USERS"].split()]
    run_id = uuid.uuid4().hex[:6]
    channel = f"#bench-{run_id}"
    members = [
        Member(i, nodes[i % len(nodes)], env[f"NODE_{nodes[i % len(nodes)]}_IP"], port, tuple(users[i % len(users)]), run_id)
        for i in range(args.members)
    ]
    start = time.monotonic()
    for batch in range(0, len(members), 20):
        await asyncio.gather(*(member.connect(channel) for member in members[batch:batch + 20]))
    print(f"{len(members)} members joined {channel} over {len(nodes)} nodes in {time.monotonic() - start:.1f} s", flush=True)
    nodes_of = {member.nick: member.node for member in members}
    listeners = [asyncio.create_task(member.listen(nodes_of)) for member in members]
    senders = members[: args.senders]
    per_sender = args.messages // len(senders)
    interval = 0 if args.unthrottled else 1 / args.rate

    async def send_all(member: Member) -> None:
        for number in range(per_sender):
            member.send(f"PRIVMSG {channel} :bench {member.nick} {time.monotonic_ns()} {number}")
            if interval:
                await asyncio.sleep(interval)
            elif number % 50 == 0:
                await member.writer.drain()

    send_start = time.monotonic()
    await asyncio.gather(*(send_all(member) for member in senders))
    send_end = time.monotonic()
    sent = per_sender * len(senders)
    expected = sent * (len(members) - 1)  # without echo-message nobody gets their own line
    deadline = time.monotonic() + 60
    while sum(member.received for member in members) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    received = sum(member.received for member in members)
    last = max(member.last_receive for member in members)
    for task in listeners:
        task.cancel()
    for member in members:
        member.writer.close()
    cross = [ms for member in members for is_cross, ms in member.latencies if is_cross]
    local = [ms for member in members for is_cross, ms in member.latencies if not is_cross]
    took = max(0.001, last - send_start)
    print(f"sent {sent} lines from {len(senders)} senders in {send_end - send_start:.2f} s")
    print(f"delivered {received} of {expected} copies in {took:.2f} s: {sent / took:.0f} messages/s through the channel, "
          f"{received / took:.0f} deliveries/s")
    if cross:
        print(f"cross-node latency: median {statistics.median(cross):.1f} ms, p99 {percentile(cross, 0.99):.1f} ms ({len(cross)} deliveries)")
    if local:
        print(f"same-node latency:  median {statistics.median(local):.1f} ms, p99 {percentile(local, 0.99):.1f} ms ({len(local)} deliveries)")


def ldapmodify(env: dict[str, str], ldif: str) -> None:
    subprocess.run(["ldapmodify", "-H", env["LDAP_URI"], "-x", "-D", env["LDAP_ADMIN_DN"], "-w", env["LDAP_ADMIN_PW"]],
                   input=ldif, text=True, capture_output=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--messages", type=int, default=2000, help="lines in all")
    parser.add_argument("--rate", type=float, default=3, help="lines per second per sender")
    parser.add_argument("--unthrottled", action="store_true", help="raise the flood limits for the run and send flat out")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--bin")
    parser.add_argument("--state", help="a running dev cluster's state directory")
    args = parser.parse_args()
    print(f"{args.members} members, {args.senders} senders, {args.messages} lines, "
          f"{'unthrottled' if args.unthrottled else f'{args.rate}/s per sender'}; {os.cpu_count()} CPUs", flush=True)
    own = None
    if args.state:
        state = Path(args.state)
    else:
        state = Path(tempfile.mkdtemp(prefix="chat-bench-"))
        own = {**os.environ, **BENCH_PORTS}
        command = [str(DEV_CLUSTER), "up", "--nodes", str(args.nodes), "--state", str(state)]
        if args.bin:
            command += ["--bin", args.bin]
        subprocess.run(command, env=own, check=True, capture_output=True)
    env = parse_env(state / "cluster.env")
    cluster_dn = f"cn=cluster,ou=svcpkg,{env['LDAP_BASE']}"
    if args.unthrottled:
        ldapmodify(env, f"dn: {cluster_dn}\nchangetype: modify\nreplace: svcpkgChatFloodBurst\nsvcpkgChatFloodBurst: 10000\n-\n"
                        "replace: svcpkgChatFloodRate\nsvcpkgChatFloodRate: 1000\n")
        time.sleep(3)
    try:
        asyncio.run(run(args, env))
    finally:
        if args.unthrottled:
            ldapmodify(env, f"dn: {cluster_dn}\nchangetype: modify\ndelete: svcpkgChatFloodBurst\n-\ndelete: svcpkgChatFloodRate\n")
        if own is not None:
            subprocess.run([str(DEV_CLUSTER), "down", "--state", str(state)], env=own, capture_output=True)
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
