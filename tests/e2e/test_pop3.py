"""POP3 against the real cluster with Python's poplib: every command with exact replies,
the maildrop lock across nodes ([IN-USE], taken over after a node is killed), mail that
arrives during a session, a drop before QUIT, and bad input."""

from __future__ import annotations

import poplib
import socket
import time

import pytest

from test_smtp import find_message, maildir_files, marker, smtp, wait_message

USER, PASSWORD = "bob@example.test", "bob-secret"


def pop(cluster, node) -> poplib.POP3:
    return poplib.POP3(cluster.node_ip(node), cluster.port("POP3"), timeout=15)


def login(cluster, node, user=USER, password=PASSWORD) -> poplib.POP3:
    client = pop(cluster, node)
    client.user(user)
    client.pass_(password)
    return client


def deliver(cluster, tag: str, body="line one\r\n.starts with a dot\r\nline three\r\n") -> bytes:
    with smtp(cluster, cluster.nodes[0]) as client:
        client.sendmail("x@elsewhere.test", [USER], f"From: x@elsewhere.test\r\nTo: {USER}\r\nSubject: {tag}\r\n\r\n{body}".encode())
    return wait_message(cluster, USER, tag)


def empty_maildrop(cluster, node) -> None:
    client = login(cluster, node)
    count, _ = client.stat()
    for number in range(1, count + 1):
        client.dele(number)
    client.quit()


@pytest.fixture()
def fresh(cluster):
    empty_maildrop(cluster, cluster.nodes[0])
    yield


def test_capabilities_and_every_command(cluster, fresh):
    first, second = marker(), marker()
    stored_first = deliver(cluster, first)
    deliver(cluster, second)
    node = cluster.nodes[1]
    client = pop(cluster, node)
    assert client.getwelcome().startswith(b"+OK")
    capa = client.capa()
    for name in ("TOP", "UIDL", "USER", "SASL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"):
        assert name in capa, capa
    assert capa["SASL"] == ["PLAIN"]
    with pytest.raises(poplib.error_proto) as wrong:
        client.user(USER)
        client.pass_("wrong")
    assert wrong.value.args[0].startswith(b"-ERR [AUTH]")
    client.close()

    client = login(cluster, node)
    count, size = client.stat()
    assert count == 2
    listing = client.list()[1]
    assert len(listing) == 2 and sum(int(line.split()[1]) for line in listing) == size
    uidls = [line.split()[1] for line in client.uidl()[1]]
    assert len(set(uidls)) == 2
    assert client.uidl(1).split()[2] == uidls[0]
    # RETR gives exactly the stored bytes (dot-stuffing undone by poplib).
    lines = client.retr(1)[1]
    assert b"\r\n".join(lines) + b"\r\n" == stored_first
    top = client.top(2, 1)[1]
    assert second.encode() in b"\r\n".join(top) and top[-1] == b"line one" and b"line three" not in top
    assert client.noop().startswith(b"+OK")
    client.dele(1)
    with pytest.raises(poplib.error_proto) as again:
        client.retr(1)
    assert again.value.args[0].startswith(b"-ERR")
    assert client.rset().startswith(b"+OK")
    assert client.stat()[0] == 2, "RSET unmarks"
    client.dele(2)
    assert client.quit().startswith(b"+OK")
    # The deletion is committed at QUIT, and seen from another node; UIDLs are stable.
    client = login(cluster, cluster.nodes[0])
    assert client.stat()[0] == 1
    assert [line.split()[1] for line in client.uidl()[1]] == [uidls[0]]
    client.quit()
    assert not find_message(cluster, USER, second)
    assert find_message(cluster, USER, first)


def test_second_login_on_another_node_is_in_use_until_the_holder_dies(cluster, fresh):
    holder_node, other = cluster.nodes[0], cluster.nodes[1]
    holder = login(cluster, holder_node)
    with pytest.raises(poplib.error_proto) as busy:
        login(cluster, other)
    assert busy.value.args[0].startswith(b"-ERR [IN-USE]")
    cluster.kill(holder_node)
    try:
        killed_at = time.monotonic()
        # Not before the stale timeout (10 s in the dev cluster) ...
        with pytest.raises(poplib.error_proto):
            login(cluster, other)
        client = cluster.wait_for(lambda: _try_login(cluster, other), timeout=30, interval=1,
                                  what="a login after the stale timeout")
        waited = time.monotonic() - killed_at
        assert waited >= 8, f"lock taken over after {waited:.1f} s, before the stale timeout"
        client.quit()
    finally:
        holder.sock.close()
        cluster.start(holder_node)


def _try_login(cluster, node):
    try:
        return login(cluster, node)
    except poplib.error_proto:
        return None


def test_mail_arriving_during_a_session_waits_for_the_next(cluster, fresh):
    client = login(cluster, cluster.nodes[1])
    assert client.stat()[0] == 0
    tag = marker()
    deliver(cluster, tag)  # delivery is not blocked by the POP3 lock
    assert client.stat()[0] == 0, "the session keeps its snapshot"
    client.quit()
    client = login(cluster, cluster.nodes[0])
    assert client.stat()[0] == 1
    client.quit()


def test_drop_before_quit_deletes_nothing(cluster, fresh):
    tag = marker()
    deliver(cluster, tag)
    client = login(cluster, cluster.nodes[1])
    client.dele(1)
    client.sock.shutdown(socket.SHUT_RDWR)  # the connection drops, no QUIT
    client.close()
    time.sleep(1)
    client = cluster.wait_for(lambda: _try_login(cluster, cluster.nodes[0]), timeout=10, what="the lock released")
    assert client.stat()[0] == 1
    client.quit()
    assert find_message(cluster, USER, tag)


def test_bad_input_gets_err_and_the_session_stays_sane(cluster, fresh):
    deliver(cluster, marker())
    with socket.create_connection((cluster.node_ip(cluster.nodes[0]), cluster.port("POP3")), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"+OK")

        def ask(line: bytes) -> bytes:
            sock.sendall(line + b"\r\n")
            return reader.readline()

        assert ask(b"STAT").startswith(b"-ERR"), "STAT before login"
        assert ask(b"FROB").startswith(b"-ERR")
        assert ask(b"X" * 5000).startswith(b"-ERR")
        assert ask(b"USER " + USER.encode()).startswith(b"+OK")
        assert ask(b"PASS " + PASSWORD.encode()).startswith(b"+OK")
        assert ask(b"RETR 99").startswith(b"-ERR")
        assert ask(b"RETR 0").startswith(b"-ERR")
        assert ask(b"DELE abc").startswith(b"-ERR")
        assert ask(b"USER again").startswith(b"-ERR"), "USER in TRANSACTION state"
        assert ask(b"STAT").startswith(b"+OK 1 ")
        assert ask(b"QUIT").startswith(b"+OK")


def fetchmail(cluster, tmp_path, out, keep: bool) -> int:
    """One fetchmail run (UIDL tracking in an idfile) delivering each message to a file in `out`;
    returns how many it delivered."""
    import os
    import subprocess
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f"set no syslog\nset idfile \"{tmp_path / 'fetchids'}\"\n"
        # Through HAProxy, as users connect (fetchmail keys its UIDL memory by the address;
        # HAProxy picks the node).
        f"poll 127.0.0.1 protocol pop3 service {cluster.port('POP3')} auth password uidl\n"
        f"  user \"{USER}\" there with password \"{PASSWORD}\" is \"root\" here\n"
        f"  {'keep' if keep else 'nokeep'} sslproto '' \n"
        f"  mda \"/bin/sh -c 'cat > {out}/$$.$(date +%s%N).eml'\"\n")
    os.chmod(rc, 0o600)
    before = len(list(out.iterdir()))
    proc = subprocess.run(["fetchmail", "-f", str(rc), "--nodetach"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, HOME=str(tmp_path)))
    # 0: mail fetched, 1: no mail
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return len(list(out.iterdir())) - before


def test_fetchmail_keep_and_nokeep_without_duplicates(cluster, fresh, tmp_path):
    import shutil
    if not shutil.which("fetchmail"):
        pytest.skip("fetchmail is not installed (scripts/install-deps)")
    out = tmp_path / "out"
    out.mkdir()
    tags = [marker() for _ in range(3)]
    for tag in tags:
        deliver(cluster, tag)
    assert fetchmail(cluster, tmp_path, out, keep=True) == 3
    assert fetchmail(cluster, tmp_path, out, keep=True) == 0, "UIDL: nothing twice"
    assert all(find_message(cluster, USER, tag) for tag in tags), "--keep leaves them"
    late = marker()
    deliver(cluster, late)
    assert fetchmail(cluster, tmp_path, out, keep=False) == 1
    assert fetchmail(cluster, tmp_path, out, keep=False) == 0
    assert not find_message(cluster, USER, late), "fetched without --keep: deleted"
    assert all(find_message(cluster, USER, tag) for tag in tags), "seen before, not fetched again, not deleted"
    got = [p.read_bytes() for p in out.iterdir()]
    for tag in tags + [late]:
        assert sum(tag.encode() in m for m in got) == 1, f"{tag} delivered once"


def set_cluster(cluster, **attributes):
    lines = [f"dn: cn=cluster,ou=svcpkg,{cluster.base}", "changetype: modify"]
    for name, value in attributes.items():
        lines += [f"replace: {name}"] + ([f"{name}: {value}"] if value is not None else []) + ["-"]
    cluster.ldapmodify("\n".join(lines) + "\n")


def test_expire_and_login_delay_from_ldap(cluster, fresh):
    set_cluster(cluster, svcpkgPop3Expire="0", svcpkgPop3LoginDelay="4")
    try:
        time.sleep(1.5)
        tag = marker()
        deliver(cluster, tag)
        client = pop(cluster, cluster.nodes[0])
        capa = client.capa()
        assert capa.get("EXPIRE") == ["0"] and capa.get("LOGIN-DELAY") == ["4"], capa
        client.user(USER)
        client.pass_(PASSWORD)
        client.retr(1)
        client.quit()
        # EXPIRE 0: what was retrieved is gone after QUIT.
        assert not find_message(cluster, USER, tag)
        # LOGIN-DELAY holds across nodes.
        with pytest.raises(poplib.error_proto) as early:
            login(cluster, cluster.nodes[1])
        assert early.value.args[0].startswith(b"-ERR [LOGIN-DELAY]")
        time.sleep(4.5)
        login(cluster, cluster.nodes[1]).quit()
    finally:
        set_cluster(cluster, svcpkgPop3Expire=None, svcpkgPop3LoginDelay=None)
        time.sleep(1.5)


def test_stls_then_auth_plain_and_implicit_tls(cluster, fresh):
    import base64
    import ssl
    tag = marker()
    stored = deliver(cluster, tag)
    context = ssl.create_default_context(cafile=str(cluster.state / "tls" / "cert.pem"))
    context.check_hostname = False
    client = pop(cluster, cluster.nodes[1])
    assert "STLS" in client.capa()
    client.stls(context=context)
    reply = client._shortcmd("AUTH PLAIN " + base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode())
    assert reply.startswith(b"+OK")
    assert b"\r\n".join(client.retr(1)[1]) + b"\r\n" == stored
    client.quit()
    secure = poplib.POP3_SSL(cluster.node_ip(cluster.nodes[0]), cluster.port("POP3S"), context=context, timeout=15)
    secure.user(USER)
    secure.pass_(PASSWORD)
    assert secure.stat()[0] == 1
    secure.quit()
