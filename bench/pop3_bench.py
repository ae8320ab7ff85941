#!/usr/bin/env python3
"""POP3: RETR throughput and login rate from concurrent clients, against svcpkg (a local dev
cluster behind HAProxy) and against Dovecot's pop3d on the same Maildir copies, in one run.

    bench/pop3_bench.py [--clients 20] [--messages 50] [--size 102400] [--login-seconds 10]
                        [--nodes 2] [--bin PATH]

Each client is a process with its own user (a POP3 maildrop is locked per user). RETR: every
client logs in, RETRs all its messages (reading raw socket chunks up to the terminating
".\\r\\n"), QUITs without deleting; MB/s = all octets received / wall time. Logins: every
client loops USER/PASS/QUIT for --login-seconds; logins/s. Dovecot (Debian's dovecot-pop3d,
installed without starting its service) runs as a throwaway instance with its own config on
127.0.0.46; mail is the same files copied into its Maildirs. Needs root.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEV_CLUSTER = REPO / "deploy" / "dev-cluster"
BENCH_PORTS = {
    "SVCPKG_LDAP_PORT": "3489", "SVCPKG_DNS_PORT": "2153", "SVCPKG_SMTP_PORT": "2625",
    "SVCPKG_SUBMISSION_PORT": "2687", "SVCPKG_SMTPS_PORT": "2565", "SVCPKG_POP3_PORT": "2210",
    "SVCPKG_POP3S_PORT": "3095", "SVCPKG_IMAP_PORT": "2243", "SVCPKG_IMAPS_PORT": "3093",
    "SVCPKG_IRC_PORT": "6767", "SVCPKG_IRCS_PORT": "6797", "SVCPKG_HTTP_PORT": "8180",
    "SVCPKG_HTTPS_PORT": "8543", "SVCPKG_AGENT_PORT": "9877",
}
DOVECOT_IP, DOVECOT_PORT = "127.0.0.46", 2710
PASSWORD = "bench-secret"


def message(user: str, number: int, size: int) -> bytes:
    head = f"From: load@sender.test\r\nTo: {user}\r\nSubject: bench {number}\r\nMessage-ID: <{number}.{user}>\r\n\r\n"
    line = b"." + b"x" * 76 + b"\r\n"  # every line dot-stuffed on the wire
    body = line * max(1, (size - len(head)) // len(line))
    return head.encode() + body


# ---------------------------------------------------------------- clients


def read_reply(sock, buffer: bytearray) -> bytes:
    while b"\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\r\n")
    buffer[:] = rest
    return line


def read_multiline(sock, buffer: bytearray) -> int:
    """Reads through the terminating CRLF.CRLF; returns octets received."""
    total = 0
    while True:
        end = buffer.find(b"\r\n.\r\n")
        if end >= 0:
            total += end + 5
            del buffer[:end + 5]
            return total
        keep = buffer[-4:]
        total += len(buffer) - len(keep)
        buffer[:] = keep
        chunk = sock.recv(262144)
        if not chunk:
            raise ConnectionError("closed")
        buffer += chunk


def session(host, port, user, retr_count: int) -> int:
    with socket.create_connection((host, port), timeout=60) as sock:
        buffer = bytearray()
        assert read_reply(sock, buffer).startswith(b"+OK")
        sock.sendall(f"USER {user}\r\n".encode())
        assert read_reply(sock, buffer).startswith(b"+OK")
        sock.sendall(f"PASS {PASSWORD}\r\n".encode())
        reply = read_reply(sock, buffer)
        if not reply.startswith(b"+OK"):
            raise RuntimeError(f"{user}: {reply!r}")
        octets = 0
        for number in range(1, retr_count + 1):
            sock.sendall(f"RETR {number}\r\n".encode())
            assert read_reply(sock, buffer).startswith(b"+OK")
            octets += read_multiline(sock, buffer)
        sock.sendall(b"QUIT\r\n")
        read_reply(sock, buffer)
        return octets


def retr_worker(args):
    host, port, user, count = args
    return session(host, port, user, count)


def login_worker(args):
    host, port, user, seconds = args
    deadline = time.monotonic() + seconds
    logins = 0
    while time.monotonic() < deadline:
        session(host, port, user, 0)
        logins += 1
    return logins


def run_load(host, port, users, args) -> tuple[float, float]:
    with mp.Pool(len(users)) as pool:
        # Warm up, and wait until HAProxy's health checks route to the nodes.
        deadline = time.monotonic() + 30
        while True:
            try:
                session(host, port, users[0], 0)
                break
            except (ConnectionError, OSError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        start = time.monotonic()
        octets = sum(pool.map(retr_worker, [(host, port, u, args.messages) for u in users]))
        retr_time = time.monotonic() - start
        start = time.monotonic()
        logins = sum(pool.map(login_worker, [(host, port, u, args.login_seconds) for u in users]))
        login_time = time.monotonic() - start
    return octets / retr_time / 1e6, logins / login_time


# ---------------------------------------------------------------- servers


def fill_maildir(maildir: Path, user: str, args) -> None:
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    for number in range(1, args.messages + 1):
        data = message(user, number, args.size)
        (maildir / "new" / f"{1700000000 + number}.M{number}P1.bench,S={len(data)}").write_bytes(data)


def svcpkg_cluster(args, users):
    state = Path(tempfile.mkdtemp(prefix="svcpkg-pop3-bench-"))
    env = dict(os.environ, **BENCH_PORTS)
    up = [str(DEV_CLUSTER), "up", "--state", str(state), "--nodes", str(args.nodes)]
    if args.bin:
        up += ["--bin", args.bin]
    subprocess.run(up, check=True, env=env, capture_output=True, text=True)
    cluster_env = {}
    for line in (state / "cluster.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            cluster_env[key] = value.strip("'")
    ldap = ["-x", "-H", cluster_env["LDAP_URI"], "-D", cluster_env["LDAP_ADMIN_DN"], "-w", cluster_env["LDAP_ADMIN_PW"]]
    base = cluster_env["LDAP_BASE"]
    ldif = [f"dn: cn=cluster,ou=svcpkg,{base}\nchangetype: modify\nreplace: svcpkgMaxConnectionsPerIp\n"
            "svcpkgMaxConnectionsPerIp: 100000\n-\nreplace: svcpkgMaxAuthFailures\nsvcpkgMaxAuthFailures: 10000\n-\n"
            "replace: svcpkgLogLevel\nsvcpkgLogLevel: warning\n-\n"]
    for user in users:
        uid = user.split("@")[0]
        ldif.append(f"dn: uid={uid},ou=people,{base}\nchangetype: add\nobjectClass: inetOrgPerson\n"
                    f"objectClass: svcpkgMailUser\nuid: {uid}\ncn: {uid}\nsn: {uid}\nmail: {user}\nuserPassword: {PASSWORD}\n")
    subprocess.run(["ldapmodify", *ldap], input="\n".join(ldif), text=True, check=True, capture_output=True,
                   env=dict(env, LDAPNOINIT="1"))
    return state, env, cluster_env


def svcpkg_home(shared: Path, user: str) -> Path:
    """The Maildir++ home as SharedTree lays it out: the top byte of FNV-1a-64 of the address."""
    local, domain = user.split("@")
    h = 0xcbf29ce484222325
    for byte in f"{local}@{domain.lower()}".encode():
        h ^= byte
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return shared / "mail" / domain.lower() / f"{h >> 56:02x}" / local


def dovecot_instance(work: Path, users, maildirs: dict[str, Path]):
    nobody = pwd.getpwnam("nobody")
    os.chmod(work, 0o755)  # mkdtemp makes it 0700; dovecot's auth and mail processes are not root
    for sub in ("run", "state", "mail"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    for user in users:
        local = user.split("@")[0]
        target = work / "mail" / local / "Maildir"
        shutil.copytree(maildirs[user], target)
    subprocess.run(["chown", "-R", f"{nobody.pw_uid}:{nobody.pw_gid}", str(work / "mail")], check=True)
    (work / "passwd").write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}\n" for u in users))
    conf = work / "dovecot.conf"
    conf.write_text(f"""
base_dir = {work}/run
state_dir = {work}/state
log_path = {work}/dovecot.log
protocols = pop3
listen = {DOVECOT_IP}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:{work}/mail/%n/Maildir
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {work}/passwd
}}
userdb {{
  driver = static
  args = uid={nobody.pw_uid} gid={nobody.pw_gid} home={work}/mail/%n
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {DOVECOT_IP}
    port = {DOVECOT_PORT}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  process_min_avail = 2
}}
service anvil {{
  client_limit = 10000
}}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--messages", type=int, default=50, help="messages per user")
    parser.add_argument("--size", type=int, default=100 * 1024)
    parser.add_argument("--login-seconds", type=float, default=10)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--bin")
    args = parser.parse_args()
    users = [f"pbench{i}@example.test" for i in range(1, args.clients + 1)]
    print(f"{args.clients} clients, {args.messages} messages of {args.size} bytes each; svcpkg {args.nodes} nodes "
          f"behind HAProxy; {os.cpu_count()} CPUs", flush=True)
    state, env, cluster_env = svcpkg_cluster(args, users)
    work = Path(tempfile.mkdtemp(prefix="dovecot-bench-"))
    dovecot = None
    try:
        shared = Path(cluster_env["SHARED_ROOT"])
        maildirs = {}
        for user in users:
            maildir = svcpkg_home(shared, user) / "Maildir"
            fill_maildir(maildir, user, args)
            maildirs[user] = maildir
        ours = run_load("127.0.0.1", int(cluster_env["POP3_PORT"]), users, args)
        print(f"svcpkg : RETR {ours[0]:8.1f} MB/s   logins {ours[1]:8.0f}/s", flush=True)
        if shutil.which("dovecot") or Path("/usr/sbin/dovecot").exists():
            dovecot = dovecot_instance(work, users, maildirs)
            theirs = run_load(DOVECOT_IP, DOVECOT_PORT, users, args)
            print(f"dovecot: RETR {theirs[0]:8.1f} MB/s   logins {theirs[1]:8.0f}/s", flush=True)
            print(f"ratio svcpkg/dovecot: RETR {ours[0] / theirs[0]:.2f}, logins {ours[1] / theirs[1]:.2f}")
        else:
            print("dovecot: not installed (apt-get install dovecot-pop3d, without starting its service)")
    finally:
        if dovecot:
            dovecot.terminate()
            dovecot.wait(10)
        subprocess.run([str(DEV_CLUSTER), "down", "--state", str(state)], env=env, capture_output=True)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
