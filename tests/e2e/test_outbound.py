"""Outbound mail and mail authentication against real peers: remote delivery through MX
records in the cluster's dnsmasq to Postfix's smtp-sink and to a real Postfix, retries
on 4xx, one DSN on 5xx and on expiry, the smarthost, DKIM signatures checked by dkimpy,
SPF/DKIM/DMARC verdicts on inbound mail, a relay from Postfix to us, a node killed while
it holds a queue claim, and the per-address limits."""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "peers"))
import postfix_peer  # noqa: E402

from test_smtp import find_message, maildir_files, marker, smtp, wait_message  # noqa: E402

REMOTE_PORT = 2526  # svcpkgRemoteSmtpPort while this module runs: every peer listens here
SINK_OK, SINK_SOFT, SINK_HARD, SINK_SMART, SINK_SLOW = "127.0.0.30", "127.0.0.31", "127.0.0.32", "127.0.0.33", "127.0.0.34"
POSTFIX_IP = "127.0.0.40"

DNS_RECORDS = f"""\
mx-host=sink.test,mx.sink.test,10
host-record=mx.sink.test,{SINK_OK}
mx-host=soft.test,mx.soft.test,10
host-record=mx.soft.test,{SINK_SOFT}
mx-host=hard.test,mx.hard.test,10
host-record=mx.hard.test,{SINK_HARD}
mx-host=slow.test,mx.slow.test,10
host-record=mx.slow.test,{SINK_SLOW}
mx-host=pf.test,mx.pf.test,10
host-record=mx.pf.test,{POSTFIX_IP}
mx-host=nullmx.test,.,0
txt-record=bank.test,"v=spf1 ip4:192.0.2.1 -all"
txt-record=_dmarc.bank.test,"v=DMARC1; p=reject"
txt-record=shop.test,"v=spf1 ip4:192.0.2.1 -all"
txt-record=_dmarc.shop.test,"v=DMARC1; p=quarantine"
"""


def set_cluster(cluster, **attributes: str | None) -> None:
    lines = [f"dn: cn=cluster,ou=svcpkg,{cluster.base}", "changetype: modify"]
    for name, value in attributes.items():
        lines += [f"replace: {name}"] + ([f"{name}: {value}"] if value is not None else []) + ["-"]
    cluster.ldapmodify("\n".join(lines) + "\n")


def set_domain(cluster, **attributes: str | None) -> None:
    lines = [f"dn: cn={cluster.domain},ou=domains,ou=svcpkg,{cluster.base}", "changetype: modify"]
    for name, value in attributes.items():
        lines += [f"replace: {name}"] + ([f"{name}: {value}"] if value is not None else []) + ["-"]
    cluster.ldapmodify("\n".join(lines) + "\n")


class Sink:
    """Postfix's smtp-sink on ADDRESS:REMOTE_PORT, dumping each message to a file."""

    def __init__(self, address: str, *options: str):
        self.address = address
        self.dir = Path(tempfile.mkdtemp(prefix="sink-"))
        os.chmod(self.dir, 0o777)
        self.options = options
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Sink":
        self.proc = subprocess.Popen(
            ["/usr/sbin/smtp-sink", "-u", "nobody", "-d", f"{self.dir}/%Y%m%d%H%M%S.", *self.options,
             f"{self.address}:{REMOTE_PORT}", "100"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 5
        import socket
        while time.time() < deadline:
            try:
                socket.create_connection((self.address, REMOTE_PORT), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"smtp-sink on {self.address} did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None

    def messages(self) -> list[bytes]:
        return [p.read_bytes() for p in sorted(self.dir.glob("*")) if p.is_file()]

    def with_marker(self, tag: str) -> list[bytes]:
        return [m for m in self.messages() if tag.encode() in m]


def dump_message(dump: bytes) -> bytes:
    """The message part of an smtp-sink dump (after its X-* envelope lines), with CRLF."""
    lines = dump.split(b"\n")
    while lines and lines[0].startswith(b"X-"):
        lines.pop(0)
    return b"\r\n".join(line.rstrip(b"\r") for line in lines)


@pytest.fixture(scope="module")
def peers(cluster):
    if not Path("/usr/sbin/smtp-sink").exists():
        pytest.skip("postfix (smtp-sink) is not installed: scripts/install-deps")
    extra = Path(cluster["DNS_EXTRA"])
    extra.write_text(DNS_RECORDS)
    cluster.dev_cluster("dns")
    sinks = {
        "ok": Sink(SINK_OK).start(),
        "soft": Sink(SINK_SOFT, "-r", "RCPT").start(),
        "hard": Sink(SINK_HARD, "-f", "RCPT").start(),
        "smart": Sink(SINK_SMART).start(),
        "slow": Sink(SINK_SLOW, "-w", "6").start(),
    }
    set_cluster(cluster, svcpkgRemoteSmtpPort=str(REMOTE_PORT), svcpkgQueueRetryInterval="1")
    time.sleep(1.5)
    try:
        yield sinks
    finally:
        for sink in sinks.values():
            sink.stop()
        set_cluster(cluster, svcpkgRemoteSmtpPort=None, svcpkgQueueRetryInterval=None)
        extra.write_text("")
        cluster.dev_cluster("dns")


def submit(cluster, node, sender, password, recipients, data: bytes) -> None:
    with smtp(cluster, node, "SUBMISSION") as client:
        client.login(sender, password)
        client.sendmail(sender, recipients, data)


def outgoing(tag: str, to: str, sender="alice@example.test") -> bytes:
    return (f"From: Alice <{sender}>\r\nTo: <{to}>\r\nSubject: {tag}\r\n"
            f"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{tag}@example.test>\r\n\r\n"
            f"Hello {tag}\r\n.dot line\r\n").encode()


def queue_entries(cluster, node=None) -> dict[str, dict]:
    proc = cluster.run_svcpkg(["queue", "list", "--json"], node=node)
    assert proc.returncode == 0, proc.stderr
    return {e["id"]: e for e in json.loads(proc.stdout)["entries"]}


def entry_for(cluster, address: str):
    return next((e for e in queue_entries(cluster).values()
                 if any(r["address"] == address for r in e["recipients"])), None)


def dsns_for(cluster, address: str, tag: str) -> list[bytes]:
    return [m for m in (p.read_bytes() for p in maildir_files(cluster, address))
            if b"multipart/report" in m and tag.encode() in m]


def dkim_verify(message: bytes, dns_port: int) -> bool:
    import dkim
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = dns_port

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        answer = resolver.resolve(name.rstrip("."), "TXT")
        return b"".join(b"".join(r.strings) for r in answer)

    return dkim.verify(message, dnsfunc=dnsfunc)


# ---------------------------------------------------------------- outbound


def test_remote_delivery_via_mx_signed_with_dkim(cluster, peers):
    tag = marker()
    submit(cluster, cluster.nodes[0], "alice@example.test", "alice-secret", ["friend@sink.test"],
           outgoing(tag, "friend@sink.test"))
    dumps = cluster.wait_for(lambda: peers["ok"].with_marker(tag), timeout=15, what="the message at the sink")
    assert len(dumps) == 1
    dump = dumps[0]
    assert b"X-Mail-Args: <alice@example.test>" in dump and b"X-Rcpt-Args: <friend@sink.test>" in dump
    message = dump_message(dump)
    assert message.startswith(b"DKIM-Signature: ") or b"\r\nDKIM-Signature: " in message
    assert b"d=example.test" in message and b"s=sel1" in message
    # Independent verifier: dkimpy, with the key from the cluster's DNS.
    assert dkim_verify(message, int(cluster["DNS_PORT"])), "dkimpy does not verify our signature"
    # Dot-stuffing round trip: the body line starting with "." arrived intact.
    assert b"\r\n.dot line" in message
    cluster.wait_for(lambda: entry_for(cluster, "friend@sink.test") is None, timeout=10, what="the entry to be done")


def postfix_workdir(name: str) -> Path:
    """A work directory the postfix user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    os.chmod(path, 0o755)
    return path


def test_delivery_to_a_real_postfix_via_mx(cluster, peers):
    why = postfix_peer.available()
    if why:
        pytest.skip(why)
    with postfix_peer.PostfixPeer(postfix_workdir("pf") / "pf", POSTFIX_IP, REMOTE_PORT, "pf.test", ["bob"]) as pf:
        tag = marker()
        submit(cluster, cluster.nodes[1], "carol@example.test", "carol-secret", ["bob@pf.test"],
               outgoing(tag, "bob@pf.test", sender="carol@example.test"))
        got = cluster.wait_for(lambda: [m for m in pf.messages("bob") if tag.encode() in m], timeout=20,
                               what="the message in Postfix's Maildir")
        assert len(got) == 1
        assert b"DKIM-Signature:" in got[0]
        assert "status=sent (delivered to maildir)" in pf.log()


def test_postfix_relays_to_us(cluster):
    why = postfix_peer.available()
    if why:
        pytest.skip(why)
    relay = {cluster.domain: (cluster.node_ip(cluster.nodes[0]), cluster.port("SMTP"))}
    with postfix_peer.PostfixPeer(postfix_workdir("pf-relay") / "pf", "127.0.0.41", REMOTE_PORT, "pfr.test", [], relay=relay) as pf:
        tag = marker()
        with smtplib.SMTP("127.0.0.41", REMOTE_PORT, timeout=15) as client:
            client.sendmail("someone@elsewhere.test", ["bob@example.test"],
                            f"From: someone@elsewhere.test\r\nTo: bob@example.test\r\nSubject: {tag}\r\n\r\nvia postfix\r\n".encode())
        data = wait_message(cluster, "bob@example.test", tag, timeout=20)
        assert b"by mx.pfr.test (Postfix" in data, "Postfix's own Received line is kept"
        assert b"Received: from mx.pfr.test" in data, "our Received line names Postfix's EHLO"
        assert b"Authentication-Results: " in data
        assert "status=sent (250 2.0.0 Message accepted for delivery)" in pf.log()


def test_4xx_is_retried_then_delivered_once(cluster, peers):
    tag = marker()
    submit(cluster, cluster.nodes[0], "alice@example.test", "alice-secret", ["later@soft.test"],
           outgoing(tag, "later@soft.test"))
    entry = cluster.wait_for(
        lambda: (e := entry_for(cluster, "later@soft.test")) and e["attempts"] >= 2 and e, timeout=20,
        what="two deferred attempts")
    assert ": 450 " in entry["recipients"][0]["last_result"], entry
    assert not dsns_for(cluster, "alice@example.test", tag), "no DSN for a temporary failure"
    shown = cluster.run_svcpkg(["queue", "show", entry["id"]], node=cluster.nodes[1])
    assert shown.returncode == 0 and "later@soft.test pending" in shown.stdout
    # The peer recovers: the next retry delivers, exactly once.
    peers["soft"].stop()
    peers["soft"] = Sink(SINK_SOFT).start()
    assert cluster.run_svcpkg(["queue", "retry", entry["id"]], node=cluster.nodes[1]).returncode == 0
    cluster.wait_for(lambda: peers["soft"].with_marker(tag), timeout=20, what="delivery after the retry")
    cluster.wait_for(lambda: entry_for(cluster, "later@soft.test") is None, timeout=10, what="the entry to be done")
    time.sleep(2)
    assert len(peers["soft"].with_marker(tag)) == 1
    peers["soft"].stop()
    peers["soft"] = Sink(SINK_SOFT, "-r", "RCPT").start()


def test_5xx_gives_exactly_one_dsn(cluster, peers):
    tag = marker()
    submit(cluster, cluster.nodes[1], "alice@example.test", "alice-secret", ["nobody@hard.test", "friend@sink.test"],
           outgoing(tag, "nobody@hard.test"))
    cluster.wait_for(lambda: peers["ok"].with_marker(tag), timeout=15, what="the good recipient's copy")
    dsn = cluster.wait_for(lambda: dsns_for(cluster, "alice@example.test", tag), timeout=20, what="the DSN in alice's inbox")
    time.sleep(3)  # nothing more arrives
    dsns = dsns_for(cluster, "alice@example.test", tag)
    assert len(dsns) == 1, f"{len(dsns)} DSNs"
    text = dsns[0].decode(errors="replace")
    assert "Return-Path: <>" in text, "DSNs use the null sender"
    assert "Auto-Submitted: auto-replied" in text
    assert "Final-Recipient: rfc822; nobody@hard.test" in text and "Action: failed" in text
    assert "Status: 5." in text and "Remote-MTA: dns; mx.hard.test" in text
    assert "friend@sink.test" not in text.split("message/delivery-status")[1].split("text/rfc822-headers")[0]
    assert f"Subject: {tag}" in text, "the original headers are returned"
    assert entry_for(cluster, "nobody@hard.test") is None


def test_unknown_domain_and_null_mx_bounce(cluster, peers):
    tag = marker()
    submit(cluster, cluster.nodes[0], "bob@example.test", "bob-secret", ["x@no-such-domain.test", "y@nullmx.test"],
           outgoing(tag, "x@no-such-domain.test", sender="bob@example.test"))
    dsn = cluster.wait_for(lambda: dsns_for(cluster, "bob@example.test", tag), timeout=20, what="the DSN")
    text = dsn[0].decode(errors="replace")
    assert "Final-Recipient: rfc822; x@no-such-domain.test" in text and "Status: 5.1.2" in text
    assert "Final-Recipient: rfc822; y@nullmx.test" in text and "Status: 5.1.10" in text


def test_expired_message_bounces_with_4_4_7(cluster, peers):
    set_cluster(cluster, svcpkgQueueLifetime="10")
    try:
        time.sleep(1.2)
        tag = marker()
        submit(cluster, cluster.nodes[0], "carol@example.test", "carol-secret", ["stuck@soft.test"],
               outgoing(tag, "stuck@soft.test", sender="carol@example.test"))
        dsn = cluster.wait_for(lambda: dsns_for(cluster, "carol@example.test", tag), timeout=40, what="the expiry DSN")
        text = dsn[0].decode(errors="replace")
        assert "Status: 4.4.7" in text and "Final-Recipient: rfc822; stuck@soft.test" in text
        assert len(dsns_for(cluster, "carol@example.test", tag)) == 1
    finally:
        set_cluster(cluster, svcpkgQueueLifetime=None)


def test_bounce_of_a_bounce_is_not_sent(cluster, peers):
    """A null-sender message whose forward fails for good produces no DSN (no bounce loops):
    the entry is kept in failed/ for the operator."""
    carol = cluster.user_dn("carol")
    cluster.ldapmodify(f"dn: {carol}\nchangetype: modify\nadd: svcpkgForwardTo\nsvcpkgForwardTo: nobody@hard.test\n-\n"
                       f"replace: svcpkgKeepForwardedCopy\nsvcpkgKeepForwardedCopy: TRUE\n-\n")
    time.sleep(5.5)  # account lookups are cached for 5 s
    try:
        tag = marker()
        with smtp(cluster, cluster.nodes[0], "SMTP") as client:
            client.ehlo("bounce.test")
            assert client.mail("<>")[0] == 250
            assert client.rcpt("carol@example.test")[0] == 250
            code, _ = client.data(f"From: MAILER-DAEMON@elsewhere.test\r\nSubject: {tag}\r\n\r\nbounce\r\n".encode())
            assert code == 250
        assert b"Return-Path: <>" in wait_message(cluster, "carol@example.test", tag)
        failed = cluster.wait_for(
            lambda: next((e for e in queue_entries(cluster).values()
                          if e["state"] == "failed" and e["recipients"][0]["address"] == "nobody@hard.test"
                          and e["sender"] == ""), None),
            timeout=20, what="the failed forward in failed/")
        assert failed["recipients"][0]["status"] == "failed"
        time.sleep(2)
        for user in ("alice", "bob", "carol"):
            assert not dsns_for(cluster, f"{user}@example.test", tag)
        assert cluster.run_svcpkg(["queue", "delete", failed["id"]]).returncode == 0
    finally:
        cluster.ldapmodify(f"dn: {carol}\nchangetype: modify\ndelete: svcpkgForwardTo\n-\n"
                           f"delete: svcpkgKeepForwardedCopy\n-\n")
        time.sleep(5.5)


def test_smarthost_takes_all_outbound_mail(cluster, peers):
    set_cluster(cluster, svcpkgSmarthost=f"{SINK_SMART}:{REMOTE_PORT}", svcpkgOutboundTls="none")
    try:
        time.sleep(1.5)
        tag = marker()
        submit(cluster, cluster.nodes[1], "alice@example.test", "alice-secret", ["friend@sink.test"],
               outgoing(tag, "friend@sink.test"))
        cluster.wait_for(lambda: peers["smart"].with_marker(tag), timeout=15, what="the message at the smarthost")
        assert not peers["ok"].with_marker(tag), "the MX was not used"
    finally:
        set_cluster(cluster, svcpkgSmarthost=None, svcpkgOutboundTls=None)
        time.sleep(1.2)


def test_node_killed_while_holding_a_claim(cluster, peers):
    """The slow sink holds the DATA phase for 6 s; the node working the entry is killed
    mid-transaction; after the stale timeout (10 s in dev) another node delivers it, once."""
    tag = marker()
    submit(cluster, cluster.nodes[0], "alice@example.test", "alice-secret", ["patient@slow.test"],
           outgoing(tag, "patient@slow.test"))
    locks = cluster.shared_root / "queue" / "locks"

    def holder():
        entry = entry_for(cluster, "patient@slow.test")
        if not entry:
            return None
        lock = locks / f"{entry['id']}.lock"
        try:
            text = lock.read_text()
        except FileNotFoundError:
            return None
        return next((n for n in cluster.nodes if n in text.split()), None) or next(
            (n for n in cluster.nodes if f"node={n}" in text or f'"{n}"' in text), None)

    node = cluster.wait_for(holder, timeout=15, what="a node to claim the entry")
    time.sleep(1)  # inside the transaction (the sink waits 6 s before answering DATA)
    cluster.kill(node)
    try:
        cluster.wait_for(lambda: peers["slow"].with_marker(tag), timeout=45, what="delivery by another node")
        cluster.wait_for(lambda: entry_for(cluster, "patient@slow.test") is None, timeout=20, what="the entry to be done")
        time.sleep(2)
        assert len(peers["slow"].with_marker(tag)) == 1, "delivered exactly once"
    finally:
        cluster.start(node)


# ---------------------------------------------------------------- inbound authentication


def send_inbound(cluster, sender: str, tag: str, node=None, from_header=None) -> tuple[int, bytes]:
    with smtp(cluster, node or cluster.nodes[0], "SMTP") as client:
        client.ehlo("mail.elsewhere.test")
        client.mail(sender)
        client.rcpt("bob@example.test")
        return client.data(f"From: {from_header or sender}\r\nTo: bob@example.test\r\nSubject: {tag}\r\n\r\nhello\r\n".encode())


def test_spoofed_dmarc_reject_domain_is_refused(cluster, peers):
    tag = marker()
    code, text = send_inbound(cluster, "security@bank.test", tag)
    assert code == 550 and b"5.7.1" in text and b"DMARC" in text
    time.sleep(1)
    assert not find_message(cluster, "bob@example.test", tag)


def test_spoof_recorded_with_dmarc_fail_when_policy_is_none(cluster, peers):
    set_domain(cluster, svcpkgInboundAuthPolicy="none")
    try:
        time.sleep(5.5)  # the domain cache lives 5 s
        tag = marker()
        code, _ = send_inbound(cluster, "security@bank.test", tag)
        assert code == 250
        data = wait_message(cluster, "bob@example.test", tag)
        header = data.split(b"\r\n\r\n")[0].decode()
        assert "Authentication-Results: " in header
        assert "dmarc=fail" in header and "header.from=bank.test" in header
        assert "spf=fail" in header
    finally:
        set_domain(cluster, svcpkgInboundAuthPolicy=None)
        time.sleep(5.5)  # let the domain cache forget "none"


def test_dmarc_quarantine_goes_to_junk(cluster, peers):
    tag = marker()
    code, _ = send_inbound(cluster, "offers@shop.test", tag)
    assert code == 250
    junk = list((cluster.shared_root / "mail" / "example.test").glob("*/bob/Maildir/.Junk"))
    found = cluster.wait_for(
        lambda: [p for d in junk for p in (d / "new").glob("*") if tag.encode() in p.read_bytes()],
        timeout=10, what="the message in bob's Junk folder")
    assert len(found) == 1
    assert not find_message(cluster, "bob@example.test", tag), "not in the INBOX"


def test_own_domain_from_loopback_passes_spf(cluster, peers):
    tag = marker()
    code, _ = send_inbound(cluster, "carol@example.test", tag)
    assert code == 250
    header = wait_message(cluster, "bob@example.test", tag).split(b"\r\n\r\n")[0].decode()
    assert "spf=pass" in header and "dmarc=pass" in header


def test_forged_authentication_results_are_removed(cluster, peers):
    tag = marker()
    host = cluster.nodes[0]  # the authserv-id is svcpkgHostname, which defaults to the node name
    with smtp(cluster, cluster.nodes[0], "SMTP") as client:
        client.ehlo("x.elsewhere.test")
        client.sendmail("x@elsewhere.test", ["bob@example.test"],
                        f"Authentication-Results: {host}; dmarc=pass header.from=bank.test\r\n"
                        f"From: x@elsewhere.test\r\nSubject: {tag}\r\n\r\nhi\r\n".encode())
    data = wait_message(cluster, "bob@example.test", tag)
    assert data.count(b"Authentication-Results:") == 1
    assert b"dmarc=pass header.from=bank.test" not in data


# ---------------------------------------------------------------- limits


def test_connection_limit_per_address(cluster, peers):
    set_cluster(cluster, svcpkgMaxConnectionsPerIp="2")
    node = cluster.nodes[1]
    try:
        time.sleep(1.2)
        first, second = smtp(cluster, node, "SMTP"), smtp(cluster, node, "SMTP")
        try:
            with pytest.raises(smtplib.SMTPConnectError) as refused:
                smtp(cluster, node, "SMTP")
            assert refused.value.smtp_code == 421
        finally:
            first.close()
            second.close()
        time.sleep(0.3)
        smtp(cluster, node, "SMTP").quit()
    finally:
        set_cluster(cluster, svcpkgMaxConnectionsPerIp=None)


def test_message_rate_per_address(cluster, peers):
    set_cluster(cluster, svcpkgMessageRatePerIp="3")
    try:
        time.sleep(1.2)
        node = cluster.nodes[2 % len(cluster.nodes)]
        codes = []
        with smtp(cluster, node, "SMTP") as client:
            client.ehlo("rate.test")
            for _ in range(5):
                code, text = client.mail("x@elsewhere.test")
                codes.append((code, text))
                client.rset()
        assert [c for c, _ in codes[:3]] == [250, 250, 250]
        assert codes[3][0] == 450 and b"4.7.1" in codes[3][1]
    finally:
        set_cluster(cluster, svcpkgMessageRatePerIp=None)
