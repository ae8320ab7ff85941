#!/usr/bin/env python3
"""Inbound SMTP throughput: Postfix's smtp-source against svcpkg (a local dev cluster behind
HAProxy, local delivery into the shared tree) and against Postfix itself (a peer on loopback
delivering to Maildir with its virtual agent), on the same machine in the same run.

Both sides count a message only when it is in the recipient's Maildir, so the figure is
end-to-end: svcpkg stores (fsync) before its 250, Postfix queues (fsync) before its 250
and delivers (fsync) after. Also printed: the time smtp-source itself took (acceptance).

    bench/smtp_source_bench.py [--sessions 20] [--messages 20000] [--size 2048] [--nodes 2]
                               [--bin PATH] [--keep-connection]

--messages is the total (smtp-source -m); the issue's full size is --sessions 20
--messages 100000. Needs root (Postfix) and the packages of scripts/install-deps. Uses its
own state dirs under /tmp and its own ports (SVCPKG_*_PORT + 100), so it does not disturb a
running dev cluster.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "peers"))
import postfix_peer  # noqa: E402

DEV_CLUSTER = REPO / "deploy" / "dev-cluster"
POSTFIX_IP, POSTFIX_PORT = "127.0.0.45", 2626
BENCH_PORTS = {  # away from the dev cluster defaults
    "SVCPKG_LDAP_PORT": "3489", "SVCPKG_DNS_PORT": "2153", "SVCPKG_SMTP_PORT": "2625",
    "SVCPKG_SUBMISSION_PORT": "2687", "SVCPKG_SMTPS_PORT": "2565", "SVCPKG_POP3_PORT": "2210",
    "SVCPKG_POP3S_PORT": "3095", "SVCPKG_IMAP_PORT": "2243", "SVCPKG_IMAPS_PORT": "3093",
    "SVCPKG_IRC_PORT": "6767", "SVCPKG_IRCS_PORT": "6797", "SVCPKG_HTTP_PORT": "8180",
    "SVCPKG_HTTPS_PORT": "8543", "SVCPKG_AGENT_PORT": "9877",
}


def count_maildir(path: Path) -> int:
    total = 0
    for sub in ("new", "cur"):
        d = path / sub
        if d.is_dir():
            total += sum(1 for _ in os.scandir(d))
    return total


def run_smtp_source(args, host: str, port: int, to: str) -> float:
    command = ["/usr/sbin/smtp-source", "-s", str(args.sessions), "-m", str(args.messages),
               "-l", str(args.size), "-f", "bench@sender.test", "-t", to, "-M", "bench.client.test"]
    if args.keep_connection:
        command.append("-d")
    command.append(f"{host}:{port}")
    start = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"smtp-source failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    return elapsed


def wait_count(path: Path, expected: int, timeout: float) -> float:
    start = time.monotonic()
    while count_maildir(path) < expected:
        if time.monotonic() - start > timeout:
            raise SystemExit(f"only {count_maildir(path)} of {expected} messages in {path} after {timeout:.0f}s")
        time.sleep(0.05)
    return time.monotonic()


def bench_svcpkg(args) -> tuple[float, float]:
    state = Path(tempfile.mkdtemp(prefix="svcpkg-bench-"))
    env = dict(os.environ, **BENCH_PORTS)
    up = [str(DEV_CLUSTER), "up", "--state", str(state), "--nodes", str(args.nodes)]
    if args.bin:
        up += ["--bin", args.bin]
    subprocess.run(up, check=True, env=env, capture_output=True, text=True)
    try:
        cluster_env = dict(
            line.split("=", 1) for line in (state / "cluster.env").read_text().splitlines()
            if "=" in line and not line.startswith("#"))
        cluster_env = {k: v.strip("'") for k, v in cluster_env.items()}
        # Benchmark settings: no per-address limits (one client address sends everything),
        # quiet logs.
        ldif = (f"dn: cn=cluster,ou=svcpkg,{cluster_env['LDAP_BASE']}\nchangetype: modify\n"
                "replace: svcpkgMessageRatePerIp\nsvcpkgMessageRatePerIp: 0\n-\n"
                "replace: svcpkgMaxConnectionsPerIp\nsvcpkgMaxConnectionsPerIp: 100000\n-\n"
                "replace: svcpkgLogLevel\nsvcpkgLogLevel: warning\n-\n")
        subprocess.run(["ldapmodify", "-x", "-H", cluster_env["LDAP_URI"], "-D", cluster_env["LDAP_ADMIN_DN"],
                        "-w", cluster_env["LDAP_ADMIN_PW"]], input=ldif, text=True, check=True,
                       capture_output=True, env=dict(env, LDAPNOINIT="1"))
        time.sleep(2)
        shared = Path(cluster_env["SHARED_ROOT"])
        # Warm up: one message creates the mailbox (and its folders) before timing.
        run_smtp_source(argparse.Namespace(**{**vars(args), "messages": 1, "sessions": 1}),
                        "127.0.0.1", int(cluster_env["SMTP_PORT"]), "carol@example.test")
        homes = list((shared / "mail" / "example.test").glob("*/carol/Maildir"))
        wait_count(homes[0] if homes else shared, 1, 30)
        maildir = list((shared / "mail" / "example.test").glob("*/carol/Maildir"))[0]
        before = count_maildir(maildir)
        start = time.monotonic()
        accept = run_smtp_source(args, "127.0.0.1", int(cluster_env["SMTP_PORT"]), "carol@example.test")
        done = wait_count(maildir, before + args.messages, timeout=max(600, args.messages / 20))
        return accept, done - start
    finally:
        subprocess.run([str(DEV_CLUSTER), "down", "--state", str(state)], env=env, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)


def bench_postfix(args) -> tuple[float, float]:
    work = Path(tempfile.mkdtemp(prefix="postfix-bench-"))
    os.chmod(work, 0o755)
    peer = postfix_peer.PostfixPeer(work / "pf", POSTFIX_IP, POSTFIX_PORT, "pf.test", ["carol"],
                                    extra={"smtpd_tls_security_level": "none"})
    with peer:
        run_smtp_source(argparse.Namespace(**{**vars(args), "messages": 1, "sessions": 1}),
                        POSTFIX_IP, POSTFIX_PORT, "carol@pf.test")
        wait_count(peer.maildir("carol"), 1, 60)
        before = count_maildir(peer.maildir("carol"))
        start = time.monotonic()
        accept = run_smtp_source(args, POSTFIX_IP, POSTFIX_PORT, "carol@pf.test")
        done = wait_count(peer.maildir("carol"), before + args.messages, timeout=max(600, args.messages / 20))
    shutil.rmtree(work, ignore_errors=True)
    return accept, done - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--size", type=int, default=2048, help="message body bytes (smtp-source -l)")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--bin", help="svcpkg binary (default: dev-cluster builds one)")
    parser.add_argument("--keep-connection", action="store_true", help="smtp-source -d: several messages per connection")
    parser.add_argument("--only", choices=["svcpkg", "postfix"])
    args = parser.parse_args()
    why = postfix_peer.available()
    if why and args.only != "svcpkg":
        raise SystemExit(why)
    print(f"smtp-source: {args.sessions} sessions, {args.messages} messages of {args.size} bytes, "
          f"{'several messages per connection' if args.keep_connection else 'one message per connection'}; "
          f"svcpkg: {args.nodes} nodes behind HAProxy; {os.cpu_count()} CPUs", flush=True)
    results = {}
    if args.only in (None, "svcpkg"):
        accept, total = bench_svcpkg(args)
        results["svcpkg"] = (accept, total)
        print(f"svcpkg : accepted in {accept:7.2f} s ({args.messages / accept:8.0f} msg/s), "
              f"all in the Maildir after {total:7.2f} s ({args.messages / total:8.0f} msg/s)", flush=True)
    if args.only in (None, "postfix"):
        accept, total = bench_postfix(args)
        results["postfix"] = (accept, total)
        print(f"postfix: accepted in {accept:7.2f} s ({args.messages / accept:8.0f} msg/s), "
              f"all in the Maildir after {total:7.2f} s ({args.messages / total:8.0f} msg/s)", flush=True)
    if len(results) == 2:
        ratio_accept = results["postfix"][0] / results["svcpkg"][0]
        ratio_total = results["postfix"][1] / results["svcpkg"][1]
        print(f"ratio svcpkg/postfix (messages/s): acceptance {ratio_accept:.2f}, end to end {ratio_total:.2f}")


if __name__ == "__main__":
    main()
