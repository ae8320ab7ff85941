"""Chat (IRC with IRCv3) against the real cluster with raw sockets: SASL PLAIN against LDAP,
clients on different nodes in one channel (messages both ways with server-time tags, topic,
modes), CHATHISTORY for a later joiner, history complete after a node is killed and
restarted (and the killed node's users shown as quit), private messages only to their
parties, and hostile input answered with the right numerics while the server stays up."""

from __future__ import annotations

import base64
import re
import socket
import statistics
import time
import uuid

import pytest

ALICE = ("alice@example.test", "alice-secret")
BOB = ("bob@example.test", "bob-secret")
CAROL = ("carol@example.test", "carol-secret")
CAPS = "server-time message-tags echo-message account-tag multi-prefix away-notify batch draft/chathistory"
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


class IRC:
    """A line-oriented IRC client on a raw socket."""

    def __init__(self, host: str, port: int, timeout: float = 15, tls=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="example.test")
        self.buffer = b""
        self.timeout = timeout
        self.log: list[str] = []

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_line(self, timeout: float | None = None) -> str | None:
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\r\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                if self.buffer:
                    break
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        text = line.decode("utf-8", "replace")
        self.log.append(text)
        return text

    def expect(self, pattern: str, timeout: float | None = None) -> re.Match:
        """Reads lines (answering PING) until one matches `pattern` (a regex, fullmatch)."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        seen = []
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"no line matching {pattern!r}; got {seen[-20:]}")
            if line.startswith("PING "):
                self.send("PONG " + line[5:])
            match = re.fullmatch(pattern, line)
            if match:
                return match
            seen.append(line)

    def until(self, pattern: str, timeout: float | None = None) -> list[str]:
        """All lines up to and including the one matching `pattern`."""
        start = len(self.log)
        self.expect(pattern, timeout)
        return self.log[start:]

    def quiet(self, seconds: float = 0.5) -> list[str]:
        """Lines that arrive within `seconds` (to check that nothing else does)."""
        lines = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            line = self.read_line(left)
            if line is None:
                break
            lines.append(line)
        return lines

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def connect(cluster, node: str) -> IRC:
    return IRC(cluster.node_ip(node), cluster.port("IRC"))


def login(cluster, node: str, nick: str, account: tuple[str, str], caps: str = CAPS, client: IRC | None = None) -> IRC:
    client = client or connect(cluster, node)
    client.send("CAP LS 302")
    client.expect(r":\S+ CAP \* LS :.*sasl=PLAIN.*")
    client.send(f"NICK {nick}")
    client.send(f"USER {nick} 0 * :{nick} e2e")
    client.send(f"CAP REQ :sasl {caps}".strip())
    client.expect(r":\S+ CAP \S+ ACK :sasl.*")
    client.send("AUTHENTICATE PLAIN")
    client.expect(r"AUTHENTICATE \+")
    token = base64.b64encode(f"\0{account[0]}\0{account[1]}".encode()).decode()
    client.send(f"AUTHENTICATE {token}")
    client.expect(rf":\S+ 900 {nick} {re.escape(nick)}!\S+ {re.escape(account[0])} :You are now logged in as .*")
    client.expect(rf":\S+ 903 {nick} :SASL authentication successful")
    client.send("CAP END")
    client.expect(rf":\S+ 001 {nick} :Welcome .*")
    client.expect(rf":\S+ 005 {nick} .*CHATHISTORY=100.*")
    client.expect(rf":\S+ (376|422) {nick} .*")
    return client


def channel_name() -> str:
    return "#e2e-" + uuid.uuid4().hex[:8]


def unique_nick(base: str) -> str:
    # Nicks belong to the first account that uses them: one per account and run.
    return f"{base}{uuid.uuid4().hex[:5]}"


@pytest.fixture()
def generous_flood_limits(cluster):
    """Raises the flood limits in LDAP (cluster entry) for tests that send many lines at
    once; new connections get them within a config poll."""
    dn = f"cn=cluster,ou=svcpkg,{cluster.base}"
    cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\nreplace: svcpkgChatFloodBurst\nsvcpkgChatFloodBurst: 1000\n-\n"
                       "replace: svcpkgChatFloodRate\nsvcpkgChatFloodRate: 1000\n")
    time.sleep(3)
    try:
        yield
    finally:
        cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\ndelete: svcpkgChatFloodBurst\n-\ndelete: svcpkgChatFloodRate\n")
        time.sleep(3)


@pytest.fixture()
def two_nodes(cluster):
    nodes = cluster.nodes
    assert len(nodes) >= 2, "the chat tests need a cluster of two nodes or more"
    return nodes[0], nodes[1]


def test_sasl_channel_topic_and_modes_across_nodes(cluster, two_nodes):
    first, second = two_nodes
    chan = channel_name()
    a, b = unique_nick("alice"), unique_nick("bob")
    alice = login(cluster, first, a, ALICE)
    bob = login(cluster, second, b, BOB, caps="server-time")
    try:
        alice.send(f"JOIN {chan}")
        alice.expect(rf"@account=alice@example\.test;time={TIME} :{a}!alice@example\.test JOIN {chan}")
        alice.expect(rf":\S+ 353 {a} = {chan} :@{a}")
        alice.expect(rf":\S+ 366 {a} {chan} :End of /NAMES list\.")
        alice.send(f"TOPIC {chan} :Release planning")
        alice.expect(rf"@account=alice@example\.test;time={TIME} :{a}!alice@example\.test TOPIC {chan} :Release planning")

        bob.send(f"JOIN {chan}")
        bob.expect(rf"@time={TIME} :{b}!bob@example\.test JOIN {chan}")
        bob.expect(rf":\S+ 332 {b} {chan} :Release planning")
        bob.expect(rf":\S+ 333 {b} {chan} {a}!alice@example\.test \d+")
        bob.expect(rf":\S+ 353 {b} = {chan} :@{a} {b}")
        alice.expect(rf"@account=bob@example\.test;time={TIME} :{b}!bob@example\.test JOIN {chan}")

        # Node 2 → node 1, and back (alice has echo-message: her own line returns with its msgid).
        bob.send(f"PRIVMSG {chan} :hello from the second node")
        alice.expect(rf"@account=bob@example\.test;msgid=\S+;time={TIME} :{b}!bob@example\.test PRIVMSG {chan} :hello from the second node")
        alice.send(f"PRIVMSG {chan} :hello back from the first")
        alice.expect(rf"@account=alice@example\.test;msgid=\S+;time={TIME} :{a}!alice@example\.test PRIVMSG {chan} :hello back from the first")
        bob.expect(rf"@time={TIME} :{a}!alice@example\.test PRIVMSG {chan} :hello back from the first")
        assert bob.quiet(0.5) == [], "bob must not get his own line back (no echo-message)"

        # Modes across nodes: +m silences bob until alice voices him; bob cannot change modes.
        bob.send(f"MODE {chan} +i")
        bob.expect(rf":\S+ 482 {b} {chan} :You're not channel operator")
        alice.send(f"MODE {chan} +m")
        bob.expect(rf"@time={TIME} :{a}!alice@example\.test MODE {chan} \+m")
        bob.send(f"PRIVMSG {chan} :muted?")
        bob.expect(rf":\S+ 404 {b} {chan} :Cannot send to channel \(\+m\)")
        alice.send(f"MODE {chan} +v {b}")
        bob.expect(rf"@time={TIME} :{a}!alice@example\.test MODE {chan} \+v {b}")
        bob.send(f"PRIVMSG {chan} :voiced now")
        alice.expect(rf"@account=bob@example\.test;msgid=\S+;time={TIME} :{b}!bob@example\.test PRIVMSG {chan} :voiced now")
        alice.send(f"NAMES {chan}")
        alice.expect(rf":\S+ 353 {a} = {chan} :@{a} \+{b}")
        bob.send(f"MODE {chan}")
        bob.expect(rf":\S+ 324 {b} {chan} \+mnt")
        # Topic lock (+t, the default) keeps bob from changing it.
        bob.send(f"TOPIC {chan} :bob's topic")
        bob.expect(rf":\S+ 482 {b} {chan} :You're not channel operator")
        alice.send(f"MODE {chan} -t")
        bob.expect(rf"@time={TIME} :{a}!alice@example\.test MODE {chan} -t")
        bob.send(f"TOPIC {chan} :bob's topic")
        alice.expect(rf"@account=bob@example\.test;time={TIME} :{b}!bob@example\.test TOPIC {chan} :bob's topic")

        alice.send(f"WHOIS {b}")
        alice.expect(rf":\S+ 311 {a} {b} bob example\.test \* :{b} e2e")
        alice.expect(rf":\S+ 312 {a} {b} {second} :svcpkg node")
        alice.expect(rf":\S+ 330 {a} {b} bob@example\.test :is logged in as")

        # A nick change on node 2 reaches node 1; the new nick is bob's from now on.
        renamed = b + "x"
        bob.send(f"NICK {renamed}")
        bob.expect(rf":{b}!bob@example\.test NICK {renamed}")
        alice.expect(rf"@account=bob@example\.test;time={TIME} :{b}!bob@example\.test NICK {renamed}")
        alice.send(f"NAMES {chan}")
        alice.expect(rf":\S+ 353 {a} = {chan} :@{a} \+{renamed}")

        bob.send("QUIT :done")
        bob.expect(r"ERROR :Closing Link: .*")
        alice.expect(rf"@account=bob@example\.test;time={TIME} :{renamed}!bob@example\.test QUIT :Quit: done")
    finally:
        alice.close()
        bob.close()


def test_later_joiner_gets_the_last_100_lines(cluster, two_nodes, generous_flood_limits):
    first, second = two_nodes
    chan = channel_name()
    a, c = unique_nick("alice"), unique_nick("carol")
    alice = login(cluster, first, a, ALICE, caps="server-time echo-message")
    try:
        alice.send(f"JOIN {chan}")
        alice.expect(rf":\S+ 366 {a} {chan} .*")
        for number in range(1, 121):
            alice.send(f"PRIVMSG {chan} :line {number}")
            alice.expect(rf"@time={TIME} :{a}!\S+ PRIVMSG {chan} :line {number}")
        carol = login(cluster, second, c, CAROL)
        try:
            carol.send(f"JOIN {chan}")
            carol.expect(rf":\S+ 366 {c} {chan} .*")
            carol.send(f"CHATHISTORY LATEST {chan} * 100")
            lines = carol.until(r":\S+ BATCH -\S+")
            start = next(i for i, line in enumerate(lines) if " BATCH +" in line)
            batch = re.fullmatch(rf":\S+ BATCH \+(\S+) chathistory {chan}", lines[start]).group(1)
            body = lines[start + 1:-1]
            assert len(body) == 100
            for index, line in enumerate(body):
                assert re.fullmatch(
                    rf"@batch={batch};account=alice@example\.test;msgid=\S+;time={TIME} :{a}!alice@example\.test PRIVMSG {chan} :line {index + 21}",
                    line), line
            # BEFORE the oldest of them goes on further back.
            oldest = re.search(r"msgid=(\S+?);", body[0]).group(1)
            carol.send(f"CHATHISTORY BEFORE {chan} msgid={oldest} 5")
            older = [line for line in carol.until(r":\S+ BATCH -\S+") if "PRIVMSG" in line]
            assert [line.rsplit(":", 1)[1] for line in older] == [f"line {n}" for n in range(16, 21)]
        finally:
            carol.close()
    finally:
        alice.close()


def test_history_survives_a_killed_node_and_its_users_quit(cluster, two_nodes):
    first, second = two_nodes
    chan = channel_name()
    a, b = unique_nick("alice"), unique_nick("bob")
    alice = login(cluster, first, a, ALICE, caps="server-time echo-message")
    bob = login(cluster, second, b, BOB, caps="server-time")
    try:
        alice.send(f"JOIN {chan}")
        alice.expect(rf":\S+ 366 {a} {chan} .*")
        bob.send(f"JOIN {chan}")
        bob.expect(rf":\S+ 366 {b} {chan} .*")
        alice.expect(rf"@time={TIME} :{b}!\S+ JOIN {chan}")
        for number in range(1, 11):
            sender, nick = (bob, b) if number % 2 else (alice, a)
            sender.send(f"PRIVMSG {chan} :before kill {number}")
            alice.expect(rf"@time={TIME} :{nick}!\S+ PRIVMSG {chan} :before kill {number}")

        cluster.kill(second)
        # The dead node's user is shown as quit once its heartbeat goes stale.
        alice.expect(rf"@time={TIME} :{b}!bob@example\.test QUIT :Connection lost \(node down\)", timeout=40)
        for number in range(1, 6):
            alice.send(f"PRIVMSG {chan} :while down {number}")
            alice.expect(rf"@time={TIME} :{a}!\S+ PRIVMSG {chan} :while down {number}")
        cluster.start(second)

        # Bob reconnects (to the restarted node) with the same nick: it is his.
        bob.close()
        bob = cluster.wait_for(lambda: _try_login(cluster, second, b, BOB), timeout=30, what="IRC on the restarted node")
        bob.send(f"JOIN {chan}")
        bob.expect(rf":\S+ 366 {b} {chan} .*")
        bob.send(f"CHATHISTORY LATEST {chan} * 100")
        texts = [line.rsplit(" :", 1)[1] for line in bob.until(r":\S+ BATCH -\S+") if " PRIVMSG " in line]
        assert texts == [f"before kill {n}" for n in range(1, 11)] + [f"while down {n}" for n in range(1, 6)]
        alice.expect(rf"@time={TIME} :{b}!\S+ JOIN {chan}")
    finally:
        alice.close()
        bob.close()


def _try_login(cluster, node, nick, account):
    try:
        return login(cluster, node, nick, account, caps="server-time batch draft/chathistory")
    except (OSError, AssertionError):
        return None


def test_private_messages_reach_only_their_parties(cluster, two_nodes):
    first, second = two_nodes
    a, b, c = unique_nick("alice"), unique_nick("bob"), unique_nick("carol")
    alice = login(cluster, first, a, ALICE, caps="server-time draft/chathistory")
    bob = login(cluster, second, b, BOB, caps="server-time")
    carol = login(cluster, second, c, CAROL, caps="server-time")
    secret = "only for bob " + uuid.uuid4().hex[:8]
    try:
        alice.send(f"PRIVMSG {b} :{secret}")
        bob.expect(rf"@time={TIME} :{a}!alice@example\.test PRIVMSG {b} :{secret}")
        bob.send(f"PRIVMSG {a} :only for alice")
        alice.expect(rf"@time={TIME} :{b}!bob@example\.test PRIVMSG {a} :only for alice")
        assert carol.quiet(1.0) == []
        # The conversation as history, for its parties only.
        alice.send(f"CHATHISTORY LATEST {b} * 10")
        alice.expect(rf"@time={TIME} :{a}!\S+ PRIVMSG {b} :{secret}")
        alice.expect(rf"@time={TIME} :{b}!\S+ PRIVMSG {a} :only for alice")
        carol.send(f"CHATHISTORY LATEST {b} * 10")
        assert carol.quiet(1.0) == []
        # On the shared tree: in bob's and alice's private logs, nowhere else.
        chat = cluster.shared_root / "chat"
        holders = sorted(p.parent.name for p in (chat / "users").glob("*/*.log") if secret in p.read_text())
        assert holders == sorted(n.encode().hex() for n in (a, b))
        assert not any(secret in p.read_text() for p in (chat / "channels").glob("*/*.log"))
        alice.send("PRIVMSG nosuchnick123 :hello")
        alice.expect(rf":\S+ 401 {a} nosuchnick123 :No such nick/channel")
    finally:
        alice.close()
        bob.close()
        carol.close()


def test_unauthenticated_clients_are_refused(cluster, two_nodes):
    client = connect(cluster, two_nodes[0])
    try:
        client.send("NICK guest1")
        client.send("USER guest 0 * :guest")
        client.expect(r":\S+ FAIL \* ACCOUNT_REQUIRED :.*")
        client.expect(r"ERROR :Closing Link: guest1 \(Authentication required\)")
    finally:
        client.close()
    wrong = connect(cluster, two_nodes[1])
    try:
        wrong.send("CAP LS 302")
        wrong.send("CAP REQ :sasl")
        wrong.send("AUTHENTICATE PLAIN")
        wrong.expect(r"AUTHENTICATE \+")
        wrong.send("AUTHENTICATE " + base64.b64encode(b"\0alice@example.test\0wrong").decode())
        wrong.expect(r":\S+ 904 \* :SASL authentication failed", timeout=20)
    finally:
        wrong.close()


def test_hostile_input_gets_numerics_and_the_server_stays_up(cluster, two_nodes):
    first, _ = two_nodes
    a = unique_nick("alice")
    alice = login(cluster, first, a, ALICE)
    try:
        alice.send("PRIVMSG #x :" + "y" * 600)
        alice.expect(rf":\S+ 417 {a} :Input line was too long")
        alice.send_raw(b"Z" * 20000 + b"\r\n")
        alice.expect(rf":\S+ 417 {a} :Input line was too long")
        alice.send_raw(b"PRIVMSG #x :nul\x00byte\r\n")
        alice.expect(rf":\S+ 421 {a} \* :Malformed command")
        alice.send_raw(b"\xff\xfe garbage\r\n")
        alice.expect(rf":\S+ 421 {a} \* :Malformed command")
        alice.send("@" + "k=v;" * 3000 + " PING x")
        alice.expect(rf":\S+ 417 {a} :Input line was too long")
        alice.send("BOGUS command")
        alice.expect(rf":\S+ 421 {a} BOGUS :Unknown command")
        alice.send("PING still-alive")
        alice.expect(r":\S+ PONG \S+ still-alive")
        # A flood: the bucket runs dry (263), then the connection is closed.
        alice.send_raw(b"".join(f"PRIVMSG {a} :flood {n}\r\n".encode() for n in range(200)))
        alice.expect(rf":\S+ 263 {a} PRIVMSG :Flooding: please wait a while and try again")
        alice.expect(rf"ERROR :Closing Link: {a} \(Excess Flood\)")
    finally:
        alice.close()
    # The node still serves.
    again = login(cluster, first, unique_nick("alice"), ALICE)
    again.send("PING ok")
    again.expect(r":\S+ PONG \S+ ok")
    again.close()
    status, health = cluster.healthz(first)
    assert status == 200, health


def test_cross_node_latency(cluster, two_nodes):
    """Measures delivery latency node 1 → node 2 (printed; asserted only loosely)."""
    first, second = two_nodes
    chan = channel_name()
    a, b = unique_nick("alice"), unique_nick("bob")
    alice = login(cluster, first, a, ALICE, caps="")
    bob = login(cluster, second, b, BOB, caps="")
    try:
        alice.send(f"JOIN {chan}")
        alice.expect(rf":\S+ 366 .*")
        bob.send(f"JOIN {chan}")
        bob.expect(rf":\S+ 366 .*")
        samples = []
        for number in range(40):
            sent = time.monotonic()
            alice.send(f"PRIVMSG {chan} :ping {number}")
            bob.expect(rf":{a}!\S+ PRIVMSG {chan} :ping {number}")
            samples.append((time.monotonic() - sent) * 1000)
            time.sleep(0.3)  # within the flood limit
        samples.sort()
        median = statistics.median(samples)
        p99 = samples[int(len(samples) * 0.99) - 1] if len(samples) > 1 else samples[0]
        print(f"\ncross-node delivery latency over {len(samples)} messages: median {median:.1f} ms, p99 {p99:.1f} ms")
        assert median < 1000
    finally:
        alice.close()
        bob.close()


def test_irssi_in_tmux_talks_to_a_client_on_the_other_node(cluster, two_nodes, tmp_path):
    """A real terminal client: irssi (SASL PLAIN via its chatnet settings) in tmux on node 1,
    a raw client on node 2. What irssi shows is read from its autolog."""
    import shutil
    import subprocess

    if not (shutil.which("irssi") and shutil.which("tmux")):
        pytest.skip("irssi and tmux are needed (scripts/install-deps installs them)")
    first, second = two_nodes
    chan = channel_name()
    c, a = unique_nick("carol"), unique_nick("alice")
    home = tmp_path / "irssi"
    logs = home / "logs"
    home.mkdir()
    (home / "config").write_text(f"""
servers = (
  {{ address = "{cluster.node_ip(first)}"; chatnet = "svc"; port = "{cluster.port('IRC')}"; use_tls = "no"; autoconnect = "yes"; }}
);
chatnets = {{
  svc = {{ type = "IRC"; sasl_mechanism = "PLAIN"; sasl_username = "{CAROL[0]}"; sasl_password = "{CAROL[1]}"; }};
}};
settings = {{
  core = {{ real_name = "Carol Irssi"; user_name = "carol"; nick = "{c}"; }};
  "fe-common/core" = {{ autolog = "yes"; autolog_path = "{logs}/$tag/$0.log"; autolog_level = "all"; }};
}};
""")
    session = "svcpkg-chat-" + uuid.uuid4().hex[:6]
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50", f"irssi --home={home}"], check=True)

    def keys(text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", session, text, "Enter"], check=True)

    def irssi_log() -> str:
        path = logs / "svc" / f"{chan}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    alice = None
    try:
        status = logs / "svc"
        cluster.wait_for(lambda: "SASL authentication succeeded" in subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout, timeout=20, what="irssi login")
        keys(f"/join {chan}")
        cluster.wait_for(lambda: f"{c} [carol@example.test] has joined {chan}" in irssi_log(), timeout=10, what="irssi join")
        keys(f"/topic {chan} set from irssi")
        cluster.wait_for(lambda: f"{c} changed the topic of {chan} to: set from irssi" in irssi_log(), timeout=10, what="topic in irssi")
        alice = login(cluster, second, a, ALICE, caps="server-time")
        alice.send(f"JOIN {chan}")
        alice.expect(rf":\S+ 332 {a} {chan} :set from irssi")
        alice.expect(rf":\S+ 353 {a} = {chan} :{a} @{c}")
        cluster.wait_for(lambda: f"{a} [alice@example.test] has joined {chan}" in irssi_log(), timeout=10, what="alice's join in irssi")

        keys("hello from irssi")
        alice.expect(rf"@time={TIME} :{c}!carol@example\.test PRIVMSG {chan} :hello from irssi")
        alice.send(f"PRIVMSG {chan} :hello irssi, from the other node")
        cluster.wait_for(lambda: f"< {a}> hello irssi, from the other node" in irssi_log(), timeout=10, what="alice's line in irssi")
        keys(f"/mode {chan} +v {a}")
        alice.expect(rf"@time={TIME} :{c}!carol@example\.test MODE {chan} \+v {a}")
        cluster.wait_for(lambda: f"mode/{chan} [+v {a}] by {c}" in irssi_log(), timeout=10, what="mode in irssi")
        keys("/quit bye from irssi")
        alice.expect(rf"@time={TIME} :{c}!carol@example\.test QUIT :Quit: bye from irssi")
        assert status.exists()
    finally:
        if alice:
            alice.close()
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_ircs_and_plaintext_passwords_only_over_tls(cluster, two_nodes):
    """IRCS (implicit TLS with the node's certificate) works; with plaintext authentication
    off for loopback in LDAP, SASL PLAIN on the plain port is refused while IRCS still takes it."""
    import ssl

    first, second = two_nodes
    context = ssl.create_default_context(cafile=str(cluster.state / "tls" / "cert.pem"))
    context.check_hostname = False
    dn = f"cn=cluster,ou=svcpkg,{cluster.base}"
    cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\nreplace: svcpkgAllowPlaintextAuthLoopback\n"
                       "svcpkgAllowPlaintextAuthLoopback: FALSE\n")
    try:
        def refused() -> bool:
            plain = connect(cluster, first)
            try:
                plain.send("CAP LS 302")
                plain.send("CAP REQ :sasl")
                plain.send("AUTHENTICATE PLAIN")
                line = plain.expect(r"(AUTHENTICATE \+|:\S+ 904 \* :.*)").group(0)
                return "904" in line and "needs a TLS connection" in line
            finally:
                plain.close()
        cluster.wait_for(refused, timeout=10, what="SASL PLAIN refused without TLS")
        a, b = unique_nick("alice"), unique_nick("bob")
        chan = channel_name()
        alice = login(cluster, first, a, ALICE, caps="server-time",
                      client=IRC(cluster.node_ip(first), cluster.port("IRCS"), tls=context))
        bob = login(cluster, second, b, BOB, caps="server-time",
                    client=IRC(cluster.node_ip(second), cluster.port("IRCS"), tls=context))
        try:
            alice.send(f"JOIN {chan}")
            alice.expect(rf":\S+ 366 {a} {chan} .*")
            bob.send(f"JOIN {chan}")
            bob.expect(rf":\S+ 366 {b} {chan} .*")
            bob.send(f"PRIVMSG {chan} :over TLS")
            alice.expect(rf"@time={TIME} :{b}!bob@example\.test PRIVMSG {chan} :over TLS")
        finally:
            alice.close()
            bob.close()
    finally:
        cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\nreplace: svcpkgAllowPlaintextAuthLoopback\n"
                           "svcpkgAllowPlaintextAuthLoopback: TRUE\n")
        time.sleep(3)


def test_graceful_stop_closes_sessions_with_error_and_quit(cluster, two_nodes):
    """SIGTERM: chat sessions are not drained (they never end by themselves): the client gets
    ERROR at once and the others see its QUIT; the node comes back with `start`."""
    import os
    import signal

    first, second = two_nodes
    chan = channel_name()
    a, b = unique_nick("alice"), unique_nick("bob")
    alice = login(cluster, first, a, ALICE, caps="server-time")
    bob = login(cluster, second, b, BOB, caps="server-time")
    try:
        alice.send(f"JOIN {chan}")
        alice.expect(rf":\S+ 366 {a} {chan} .*")
        bob.send(f"JOIN {chan}")
        bob.expect(rf":\S+ 366 {b} {chan} .*")
        pid = cluster.node_pid(second)
        assert pid
        started = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        bob.expect(r"ERROR :Closing Link: Server shutting down, reconnect", timeout=10)
        alice.expect(rf"@time={TIME} :{b}!bob@example\.test QUIT :Server shutting down", timeout=10)
        assert time.monotonic() - started < 10
    finally:
        alice.close()
        bob.close()
        cluster.wait_for(lambda: cluster.node_pid(second) is None or not _alive(cluster.node_pid(second)), timeout=40, what="node stopped")
        cluster.start(second)


def _alive(pid: int | None) -> bool:
    import os
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def test_through_haproxy(cluster, two_nodes):
    """Clients that come through HAProxy (127.0.0.1) reach a node and talk with one connected
    to a node directly."""
    _, second = two_nodes
    chan = channel_name()
    c, b = unique_nick("carol"), unique_nick("bob")
    carol = login(cluster, second, c, CAROL, caps="server-time", client=IRC("127.0.0.1", cluster.port("IRC")))
    bob = login(cluster, second, b, BOB, caps="server-time")
    try:
        carol.send(f"JOIN {chan}")
        carol.expect(rf":\S+ 366 {c} {chan} .*")
        bob.send(f"JOIN {chan}")
        bob.expect(rf":\S+ 366 {b} {chan} .*")
        carol.send(f"PRIVMSG {chan} :via haproxy")
        bob.expect(rf"@time={TIME} :{c}!carol@example\.test PRIVMSG {chan} :via haproxy")
    finally:
        carol.close()
        bob.close()
