"""A throwaway Postfix instance on a loopback address, as a real peer for tests and
benchmarks: its own config directory, spool and Maildir tree under one work directory;
never the system's /etc/postfix (the Debian package is installed unconfigured).

    with PostfixPeer(workdir, "127.0.0.40", 2526, mailbox_domain="pf.test",
                     mailboxes=["bob"], relay={"example.test": ("127.0.0.1", 2525)}) as pf:
        ...  # SMTP to 127.0.0.40:2526; mail for bob@pf.test lands in pf.maildir("bob")

Needs root (Postfix's master runs as root and drops to the postfix user)."""

from __future__ import annotations

import os
import pwd
import grp
import shutil
import socket
import subprocess
import time
from pathlib import Path

MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def available() -> str | None:
    """None when a peer can run here, else why not."""
    if os.geteuid() != 0:
        return "Postfix peer needs root"
    if not Path("/usr/sbin/postfix").exists():
        return "postfix is not installed (scripts/install-deps)"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "the postfix user/postdrop group are missing"
    return None


class PostfixPeer:
    def __init__(self, workdir: Path, address: str, port: int, mailbox_domain: str,
                 mailboxes: list[str], relay: dict[str, tuple[str, int]] | None = None,
                 extra: dict[str, str] | None = None):
        self.dir = Path(workdir)
        self.address, self.port = address, port
        self.domain = mailbox_domain
        self.mailboxes = mailboxes
        self.relay = relay or {}
        self.extra = extra or {}
        self.conf = self.dir / "conf"
        self.mail = self.dir / "mail"

    def maildir(self, user: str) -> Path:
        return self.mail / self.domain / user

    def messages(self, user: str) -> list[bytes]:
        found = []
        for sub in ("new", "cur"):
            d = self.maildir(user) / sub
            if d.is_dir():
                found += [p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()]
        return found

    def log(self) -> str:
        path = self.dir / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def _postfix(self, *args, check=True):
        # Postfix prints fatal errors to stderr only when it is a terminal: run it under
        # script(1) so that a failure says why.
        command = " ".join(["/usr/sbin/postfix", "-c", str(self.conf), *args])
        proc = subprocess.run(["script", "-qec", command, "/dev/null"],
                              capture_output=True, text=True, timeout=60)
        if check and proc.returncode != 0:
            raise RuntimeError(f"postfix {' '.join(args)} failed: {proc.stdout}{proc.stderr}\n{self.log()[-2000:]}")
        return proc

    def start(self) -> "PostfixPeer":
        why = available()
        if why:
            raise RuntimeError(why)
        if self.dir.exists():
            shutil.rmtree(self.dir)
        for d in (self.conf, self.dir / "spool", self.dir / "data", self.mail):
            d.mkdir(parents=True)
        uid, gid = pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postfix").gr_gid
        os.chown(self.mail, uid, gid)
        os.chown(self.dir / "data", uid, gid)
        boxes = " ".join(f"{{{u}@{self.domain}={self.domain}/{u}/}}" for u in self.mailboxes)
        transports = " ".join(f"{{{d}=smtp:[{h}]:{p}}}" for d, (h, p) in self.relay.items())
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.dir / "spool"),
            "data_directory": str(self.dir / "data"),
            "maillog_file": str(self.dir / "maillog"),
            "maillog_file_prefixes": str(self.dir),
            "myhostname": f"mx.{self.domain}",
            "mydomain": self.domain,
            "myorigin": self.domain,
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "relay_domains": " ".join(self.relay) or "",
            "transport_maps": f"inline:{{ {transports} }}" if transports else "",
            "virtual_mailbox_domains": self.domain,
            "virtual_mailbox_base": str(self.mail),
            "virtual_mailbox_maps": f"inline:{{ {boxes} }}",
            "virtual_uid_maps": f"static:{uid}",
            "virtual_gid_maps": f"static:{gid}",
            "virtual_minimum_uid": "1",
            "alias_maps": "", "alias_database": "", "local_recipient_maps": "",
            "smtp_dns_support_level": "disabled",
            "smtp_tls_security_level": "may",
            "smtpd_banner": "$myhostname ESMTP Postfix (test peer)",
            "biff": "no",
            "message_size_limit": "52428800",
            "virtual_mailbox_limit": "0",
            "default_process_limit": "100",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_message_rate_limit": "0",
            "in_flow_delay": "0",
            "delay_warning_time": "0",
            "maximal_queue_lifetime": "1h", "bounce_queue_lifetime": "1h",
            "queue_run_delay": "5s", "minimal_backoff_time": "5s", "maximal_backoff_time": "10s",
            "import_environment": "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C",
        }
        settings.update(self.extra)
        (self.conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        (self.conf / "master.cf").write_text(MASTER_CF.format(listen=f"{self.address}:{self.port}"))
        self._postfix("set-permissions", check=False)
        self._postfix("check")
        self._postfix("start")
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection((self.address, self.port), timeout=1) as s:
                    if s.recv(100).startswith(b"220"):
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"Postfix does not answer on {self.address}:{self.port}\n{self.log()[-2000:]}")

    def stop(self) -> None:
        self._postfix("stop", check=False)

    def __enter__(self) -> "PostfixPeer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
