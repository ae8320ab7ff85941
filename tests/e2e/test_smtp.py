"""SMTP against the real cluster with real clients (smtplib, swaks): inbound delivery to
the shared tree, submission through the shared queue, relay and smuggling refusals,
aliases and groups, quota, and the queue being worked by any node."""

from __future__ import annotations

import smtplib
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest


def maildir_files(cluster, address: str) -> list[Path]:
    local, domain = address.split("@")
    homes = list((cluster.shared_root / "mail" / domain).glob(f"*/{local}/Maildir"))
    files: list[Path] = []
    for home in homes:
        for sub in ("new", "cur"):
            files += [p for p in (home / sub).glob("*") if p.is_file()]
    return files


def find_message(cluster, address: str, marker: str) -> list[bytes]:
    return [p.read_bytes() for p in maildir_files(cluster, address) if marker.encode() in p.read_bytes()]


def wait_message(cluster, address: str, marker: str, timeout=10.0) -> bytes:
    found = cluster.wait_for(lambda: find_message(cluster, address, marker), timeout=timeout,
                             what=f"{marker} in {address}'s mailbox")
    assert len(found) == 1, f"{len(found)} copies of {marker} for {address}"
    return found[0]


def marker() -> str:
    return "m-" + uuid.uuid4().hex


def message(subject: str, body: str = "Hello.\r\n") -> bytes:
    return (f"From: Bob <bob@remote.test>\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@remote.test>\r\n\r\n{body}").encode()


def smtp(cluster, node: str | None = None, port: str = "SMTP") -> smtplib.SMTP:
    host = cluster.node_ip(node) if node else "127.0.0.1"
    client = smtplib.SMTP(host, cluster.port(port), timeout=15)
    client.ehlo("client.test")
    return client


def queue_files(cluster) -> list[Path]:
    return [p for p in (cluster.shared_root / "queue").rglob("*") if p.is_file()]


def test_ehlo_advertises_extensions(cluster):
    with smtp(cluster, cluster.nodes[0]) as client:
        for extension in ("pipelining", "size", "8bitmime", "smtputf8", "enhancedstatuscodes", "chunking"):
            assert client.has_extn(extension), extension
        assert not client.has_extn("auth"), "no AUTH on the MX port"


def test_deliver_on_one_node_read_exact_bytes_from_the_shared_tree(cluster):
    first = cluster.nodes[0]
    tag = marker()
    data = message(tag, "Line one\r\n.leading dot\r\nLine three\r\n")
    with smtp(cluster, first) as client:
        refused = client.sendmail("bob@remote.test", ["alice@example.test"], data)
    assert refused == {}
    stored = wait_message(cluster, "alice@example.test", tag)
    # The stored file is the exact bytes sent, after the trace fields we add.
    assert stored.endswith(data)
    trace = stored[: len(stored) - len(data)].decode()
    assert trace.startswith("Delivered-To: alice@example.test\r\nReturn-Path: <bob@remote.test>\r\nReceived: from client.test")
    assert f"by {first} (Service Package) with ESMTP" in trace


def wait_backend_up(cluster, backend: str):
    """HAProxy marks servers UP after their first successful checks."""
    cluster.wait_for(lambda: all(row["status"] == "UP" for (b, _), row in cluster.haproxy_servers().items() if b == backend),
                     timeout=15, what=f"HAProxy backend {backend} UP")


def test_swaks_through_haproxy(cluster):
    wait_backend_up(cluster, "smtp")
    tag = marker()
    proc = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(cluster.port("SMTP")),
                           "--from", "carol@remote.test", "--to", "bob@example.test",
                           "--header", f"Subject: {tag}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "250 2.0.0 Message accepted" in proc.stdout
    assert b"Subject: " + tag.encode() in wait_message(cluster, "bob@example.test", tag)


def test_alias_and_group_expansion(cluster):
    tag = marker()
    with smtp(cluster, cluster.nodes[1]) as client:
        client.sendmail("x@remote.test", ["Alice.Smith@example.test"], message(tag))
    wait_message(cluster, "alice@example.test", tag)
    tag = marker()
    with smtp(cluster, cluster.nodes[1]) as client:
        client.sendmail("x@remote.test", ["team@example.test"], message(tag))
    wait_message(cluster, "alice@example.test", tag)
    wait_message(cluster, "bob@example.test", tag)
    assert not find_message(cluster, "carol@example.test", tag)


def test_unknown_user_and_open_relay_are_refused_and_nothing_is_stored(cluster):
    before = set(map(str, queue_files(cluster)))
    tag = marker()
    with smtp(cluster, cluster.nodes[0]) as client:
        client.mail("x@remote.test")
        code, text = client.rcpt("nobody@example.test")
        assert code == 550 and b"5.1.1" in text
        code, text = client.rcpt("victim@elsewhere.test")
        assert code == 554 and b"5.7.1" in text and b"relay" in text
        code, _ = client.rcpt("alice@example.test")
        assert code == 250
        client.data(message(tag))
    # only alice got it; no queue entry for the foreign address
    wait_message(cluster, "alice@example.test", tag)
    assert set(map(str, queue_files(cluster))) == before


def test_smuggling_payload_is_refused(cluster):
    tag = marker()
    with socket.create_connection((cluster.node_ip(cluster.nodes[0]), cluster.port("SMTP")), timeout=10) as sock:
        f = sock.makefile("rwb")

        def send(line: bytes):
            f.write(line)
            f.flush()

        def reply() -> bytes:
            lines = []
            while True:
                line = f.readline()
                lines.append(line)
                if line[3:4] != b"-":
                    return b"".join(lines)

        assert reply().startswith(b"220")
        send(b"EHLO attacker.test\r\n")
        assert reply().startswith(b"250")
        send(b"MAIL FROM:<a@remote.test>\r\n")
        assert reply().startswith(b"250")
        send(b"RCPT TO:<alice@example.test>\r\n")
        assert reply().startswith(b"250")
        send(b"DATA\r\n")
        assert reply().startswith(b"354")
        send(b"Subject: " + tag.encode() + b"\r\n\r\nhello\n.\nMAIL FROM:<evil@remote.test>\nRCPT TO:<bob@example.test>\n"
             b"DATA\nSubject: smuggled-" + tag.encode() + b"\n\nevil\r\n.\r\n")
        assert reply().startswith(b"554 5.6.0")
        send(b"QUIT\r\n")
        assert reply().startswith(b"221")
    time.sleep(1)
    assert not find_message(cluster, "alice@example.test", tag)
    assert not find_message(cluster, "bob@example.test", tag)


def test_oversize_and_huge_line_are_refused(cluster):
    with smtp(cluster, cluster.nodes[0]) as client:
        code, text = client.mail("a@remote.test", ["SIZE=999999999"])
        assert code == 552 and b"5.3.4" in text
    tag = marker()
    huge_line = b"x" * (10 * 1024 * 1024)
    with smtp(cluster, cluster.nodes[0]) as client:
        client.mail("a@remote.test")
        client.rcpt("alice@example.test")
        code, _ = client.docmd("DATA")
        assert code == 354
        client.send(b"Subject: " + tag.encode() + b"\r\n\r\n" + huge_line + b"\r\n.\r\n")
        code, text = client.getreply()
        assert code == 554 and b"line longer" in text
        assert client.noop()[0] == 250, "the session stays usable"
    assert not find_message(cluster, "alice@example.test", tag)


def test_garbage_gets_500_replies_then_421(cluster):
    with socket.create_connection((cluster.node_ip(cluster.nodes[0]), cluster.port("SMTP")), timeout=10) as sock:
        sock.recv(512)
        sock.sendall(b"".join(b"\x00\xff garbage %d\r\n" % i for i in range(20)))
        received = b""
        deadline = time.monotonic() + 5
        while b"421" not in received and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    assert b"500 5.5.2" in received and b"421 4.7.0" in received


def test_submission_needs_auth_and_owned_sender(cluster):
    node = cluster.nodes[0]
    with smtp(cluster, node, "SUBMISSION") as client:
        assert client.has_extn("auth"), "AUTH offered on loopback in the dev cluster"
        code, text = client.mail("alice@example.test")
        assert code == 530
        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            client.login("alice@example.test", "wrong-password")
        assert wrong.value.smtp_code == 535
        client.login("alice@example.test", "alice-secret")
        tag = marker()
        # someone else's address as envelope sender: refused at MAIL, nothing stored
        with pytest.raises(smtplib.SMTPSenderRefused) as spoof:
            client.sendmail("bob@example.test", ["carol@example.test"], message(tag))
        assert spoof.value.smtp_code == 553 and b"5.7.1" in spoof.value.smtp_error
    time.sleep(2)
    assert not find_message(cluster, "carol@example.test", tag)


def test_submission_goes_through_the_queue_to_a_local_user(cluster):
    tag = marker()
    with smtp(cluster, cluster.nodes[1], "SUBMISSION") as client:
        client.login("alice@example.test", "alice-secret")
        # an alias of the user is an acceptable sender
        client.sendmail("alice.smith@example.test", ["carol@example.test"], message(tag))
    stored = wait_message(cluster, "carol@example.test", tag, timeout=15)
    assert b"with ESMTPA id " in stored  # authenticated submission in the trace
    # the queue entry is gone once delivered
    cluster.wait_for(lambda: not any(tag.encode() in p.read_bytes() for p in queue_files(cluster)), timeout=10,
                     what="queue entry removed")


def test_over_quota_recipient_gets_452(cluster):
    dn = f"uid=carol,ou=people,{cluster.base}"
    cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\nreplace: svcpkgQuotaBytes\nsvcpkgQuotaBytes: 1\n")
    time.sleep(5.5)  # account lookups are cached for 5 s
    try:
        with smtp(cluster, cluster.nodes[0]) as client:
            client.mail("x@remote.test")
            code, text = client.rcpt("carol@example.test")
        assert code == 452 and b"4.2.2" in text
    finally:
        cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\ndelete: svcpkgQuotaBytes\n")
        time.sleep(5.5)


def test_store_check_and_reindex_after_deliveries(cluster, tmp_path):
    tag = marker()
    with smtp(cluster, cluster.nodes[2 % len(cluster.nodes)]) as client:
        client.sendmail("x@remote.test", ["alice@example.test"], message(tag, "searchable-" + tag + "\r\n"))
    wait_message(cluster, "alice@example.test", tag)
    check = cluster.run_svcpkg(["check", "--store", "alice@example.test"], node=cluster.nodes[1])
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok: mail store of alice@example.test consistent" in check.stdout
    reindex = cluster.run_svcpkg(["reindex", "alice@example.test", "--cache-dir", str(tmp_path)], node=cluster.nodes[1])
    assert reindex.returncode == 0, reindex.stderr
    count = int(reindex.stdout.split(": ")[1].split()[0])
    assert count == len(maildir_files(cluster, "alice@example.test")) and count > 0
    # path tricks in the user name are refused with a clear error
    bad = cluster.run_svcpkg(["check", "--store", "../../etc@example.test"], node=cluster.nodes[1])
    assert bad.returncode != 0 and "error: mail store of ../../etc@example.test" in bad.stderr


def server_certificate_der(ip: str, port: int) -> bytes:
    import ssl
    return ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((ip, port), timeout=5))


def set_node_certificate(cluster, node: str, tmp_path: Path, common_name: str) -> tuple[Path, Path, str]:
    """A new self-signed certificate named in LDAP as `node`'s override: (cert, key, node DN).
    Undo with `clear_node_certificate`."""
    cert, key = tmp_path / f"{common_name}-cert.pem", tmp_path / f"{common_name}-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={common_name}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    dn = f"cn={node},ou=nodes,ou=svcpkg,{cluster.base}"
    cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\nreplace: svcpkgTlsCertificateFile\nsvcpkgTlsCertificateFile: {cert}\n-\n"
                       f"replace: svcpkgTlsKeyFile\nsvcpkgTlsKeyFile: {key}\n")
    return cert, key, dn


def clear_node_certificate(cluster, dn: str) -> None:
    cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\ndelete: svcpkgTlsCertificateFile\n-\ndelete: svcpkgTlsKeyFile\n")


def test_implicit_tls_submission_and_live_certificate_change(cluster, tmp_path):
    import ssl
    node = cluster.nodes[0]
    ip, port = cluster.node_ip(node), cluster.port("SMTPS")
    cluster.wait_for(lambda: cluster.healthz(node)[1]["modules"].get("smtps", "").startswith("up"), timeout=10,
                     what="smtps listener up")
    context = ssl.create_default_context(cafile=str(cluster.state / "tls" / "cert.pem"))
    context.check_hostname = False
    tag = marker()
    with smtplib.SMTP_SSL(ip, port, context=context, timeout=15) as client:
        client.ehlo("client.test")
        assert client.has_extn("auth") and not client.has_extn("starttls")
        client.login("alice@example.test", "alice-secret")
        client.sendmail("alice@example.test", ["bob@example.test"], message(tag))
    assert b"with ESMTPSA id " in wait_message(cluster, "bob@example.test", tag, timeout=15)

    # A new certificate named in LDAP (node override) is used for the next connection, no restart.
    before = server_certificate_der(ip, port)
    pid = cluster.node_pid(node)
    cert, _, dn = set_node_certificate(cluster, node, tmp_path, "renewed.test")
    try:
        expected = ssl.PEM_cert_to_DER_cert(cert.read_text())
        cluster.wait_for(lambda: server_certificate_der(ip, port) == expected, timeout=5, what="the renewed certificate")
        assert before != expected and cluster.node_pid(node) == pid
        # A broken certificate is refused and the previous one stays in force.
        cert.write_text("not a certificate\n")
        bad = tmp_path / "bad.pem"
        bad.write_text("garbage\n")
        cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\nreplace: svcpkgTlsCertificateFile\nsvcpkgTlsCertificateFile: {bad}\n")
        cluster.wait_for(lambda: "cannot load TLS certificate" in cluster.node_log(node), timeout=5, what="the error in the log")
        assert server_certificate_der(ip, port) == expected
    finally:
        clear_node_certificate(cluster, dn)
    cluster.wait_for(lambda: server_certificate_der(ip, port) == before, timeout=5, what="the cluster certificate again")


def test_starttls_on_submission_then_auth(cluster):
    import ssl
    node = cluster.nodes[1]
    context = ssl.create_default_context(cafile=str(cluster.state / "tls" / "cert.pem"))
    context.check_hostname = False
    tag = marker()
    with smtplib.SMTP(cluster.node_ip(node), cluster.port("SUBMISSION"), timeout=15) as client:
        client.ehlo("client.test")
        assert client.has_extn("starttls")
        client.starttls(context=context)
        client.ehlo("client.test")
        assert not client.has_extn("starttls") and client.has_extn("auth")
        client.login("carol@example.test", "carol-secret")
        client.sendmail("carol@example.test", ["alice@example.test"], message(tag))
    assert b"with ESMTPSA id " in wait_message(cluster, "alice@example.test", tag, timeout=15)
    # the MX port offers STARTTLS too (opportunistic TLS for other MTAs)
    with smtp(cluster, node) as client:
        assert client.has_extn("starttls")


def test_plaintext_injected_after_starttls_is_discarded(cluster):
    """CVE-2011-0411: commands pipelined in plaintext after STARTTLS must not run inside TLS."""
    import ssl
    context = ssl.create_default_context(cafile=str(cluster.state / "tls" / "cert.pem"))
    context.check_hostname = False
    with socket.create_connection((cluster.node_ip(cluster.nodes[0]), cluster.port("SMTP")), timeout=10) as raw:
        f = raw.makefile("rb")
        assert f.readline().startswith(b"220")
        raw.sendall(b"EHLO attacker.test\r\n")
        while (line := f.readline())[3:4] == b"-":
            pass
        raw.sendall(b"STARTTLS\r\nRSET\r\nNOOP injected\r\n")
        assert f.readline().startswith(b"220 2.0.0")
        tls = context.wrap_socket(raw, server_hostname="example.test")
        tls.sendall(b"EHLO client.test\r\n")
        first = tls.recv(4096)
        assert first.startswith(b"250-"), first  # the EHLO answer, not replies to injected commands
        tls.sendall(b"QUIT\r\n")


def test_auth_failures_are_delayed_then_the_address_is_refused(cluster):
    """Kept last in this file: it locks 127.0.0.1 out of AUTH on one node for the window."""
    node = cluster.nodes[-1]
    dn = f"cn={node},ou=nodes,ou=svcpkg,{cluster.base}"
    cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\nreplace: svcpkgMaxAuthFailures\nsvcpkgMaxAuthFailures: 3\n-\n"
                       f"replace: svcpkgAuthFailureDelay\nsvcpkgAuthFailureDelay: 200\n-\n"
                       f"replace: svcpkgAuthFailureWindow\nsvcpkgAuthFailureWindow: 10\n")
    try:
        time.sleep(1.5)  # the settings reach the node within one poll
        timings = []
        with smtp(cluster, node, "SUBMISSION") as client:
            for _ in range(3):
                start = time.monotonic()
                code, _ = client.docmd("AUTH", "PLAIN " + __import__("base64").b64encode(b"\0bob@example.test\0guess").decode())
                timings.append(time.monotonic() - start)
                assert code == 535
        assert timings[0] >= 0.2 and timings[2] >= 0.6, timings  # 200 ms x failures so far
        with smtp(cluster, node, "SUBMISSION") as client:
            # the right password no longer helps from this address, for the window
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("bob@example.test", "bob-secret")
        with smtp(cluster, cluster.nodes[0], "SUBMISSION") as client:
            client.login("bob@example.test", "bob-secret")  # other nodes keep their own count
        assert "too many failures" in cluster.node_log(node)
    finally:
        cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\ndelete: svcpkgMaxAuthFailures\n-\n"
                           f"delete: svcpkgAuthFailureDelay\n-\ndelete: svcpkgAuthFailureWindow\n")
    time.sleep(10)  # let the window pass so nothing after this test meets the lockout
