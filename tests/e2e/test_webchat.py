"""Web chat against the real cluster: headless Chromium (Selenium) signs in to web-mail through
HAProxy, opens /chat and joins a channel over the page's WebSocket (IRC lines, subprotocol
text.ircv3.net); raw-socket IRC clients with SASL on the *other* node talk with it both ways
with exact text; scroll-back loads lines sent before the browser joined; the members list and
topic follow the channel; a private message reaches only its parties; the socket reconnects
through HAProxy when its node is killed. Raw WebSocket handshakes check the admission: no
cookie → 401, a foreign Origin → 403, a good cookie and our Origin → 101 and IRC over frames.

A screenshot of the chat page goes to tests/e2e/artifacts/web/chat.png."""

from __future__ import annotations

import base64
import os
import re
import socket
import struct
import time
import uuid

import pytest

from test_chat import ALICE, BOB, CAROL, IRC, generous_flood_limits, login, unique_nick  # noqa: F401 (a fixture)
from test_web import assert_no_alert, base, chromium, shot, wait_url

WEB_USER = ALICE  # the web user: a demo user (the page derives the nick from the address)


def channel_name() -> str:
    return "#wc-" + uuid.uuid4().hex[:8]


def web_login_cookie(cluster, account) -> str:
    import requests

    from test_web import hidden
    session = requests.Session()
    page = session.get(base(cluster) + "/login", timeout=10)
    response = session.post(base(cluster) + "/login", data={"_login": hidden("_login", page.text), "user": account[0],
                                                            "password": account[1]}, allow_redirects=False, timeout=30)
    assert response.status_code == 303, response.text
    return session.cookies["svcpkg_session"]


# ---------------------------------------------------------------- raw WebSocket


def ws_handshake(cluster, cookie: str | None, origin: str | None, protocol: str = "text.ircv3.net",
                 upgrade: bool = True):
    """Opens a TCP connection to HAProxy's HTTP port and sends an upgrade request (or, with
    upgrade=False, the same GET without it); returns the socket, the status code, the response
    head and what followed it."""
    port = cluster.port("HTTP")
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    key = base64.b64encode(os.urandom(16)).decode()
    head = ["GET /chat/socket HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if upgrade:
        head += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
                 f"Sec-WebSocket-Protocol: {protocol}"]
    else:
        head.append("Connection: close")
    if cookie:
        head.append(f"Cookie: svcpkg_session={cookie}")
    if origin:
        head.append(f"Origin: {origin}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    response, _, rest = data.partition(b"\r\n\r\n")
    status = int(response.split(b" ", 2)[1])
    return sock, status, response.decode("latin-1"), rest


def refused(cluster, cookie: str | None, origin: str | None) -> tuple[int, int]:
    """The status of the upgrade request, and of the same request without the upgrade (which
    says why)."""
    statuses = []
    for upgrade in (True, False):
        sock, status, _, _ = ws_handshake(cluster, cookie, origin, upgrade=upgrade)
        sock.close()
        statuses.append(status)
    return statuses[0], statuses[1]


class WebSocketIRC:
    """IRC over a raw WebSocket: masked text frames out, one line per message in."""

    def __init__(self, sock: socket.socket, rest: bytes):
        self.sock = sock
        self.buffer = rest

    def send(self, line: str) -> None:
        payload = line.encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        elif len(payload) < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("socket closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def frame(self) -> tuple[int, bytes]:
        first, second = self._read(2)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read(8))[0]
        return first & 0x0F, self._read(length)

    def expect(self, pattern: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            opcode, payload = self.frame()
            if opcode == 0x8:
                raise AssertionError(f"closed ({payload!r}) waiting for {pattern!r}; got {seen[-10:]}")
            if opcode != 0x1:
                continue
            text = payload.decode()
            assert "\r" not in text and "\n" not in text, text
            if re.fullmatch(pattern, text):
                return text
            seen.append(text)
        raise AssertionError(f"no message matching {pattern!r}; got {seen[-10:]}")


def ws_register(cluster, cookie: str, origin: str, nick: str) -> tuple[WebSocketIRC, str]:
    """An admitted socket registered as `nick` (the account comes from the cookie)."""
    sock, status, head, rest = ws_handshake(cluster, cookie, origin)
    assert status == 101, head
    ws = WebSocketIRC(sock, rest)
    for line in ("CAP LS 302", f"NICK {nick}", f"USER {nick} 0 * :web", "CAP END"):
        ws.send(line)
    ws.expect(rf":\S+ 001 {nick} :Welcome .*")
    return ws, nick


def test_websocket_upgrade_admission(cluster):
    origin = f"http://127.0.0.1:{cluster.port('HTTP')}"
    cookie = web_login_cookie(cluster, BOB)
    tampered = cookie[:12] + ("A" if cookie[12] != "A" else "B") + cookie[13:]
    # Refused upgrades never become sockets (400); the plain request says why.
    assert refused(cluster, None, origin) == (400, 401)
    assert refused(cluster, cookie, "http://evil.example") == (400, 403)
    assert refused(cluster, cookie, f"http://127.0.0.1.evil.example:{cluster.port('HTTP')}") == (400, 403)
    assert refused(cluster, cookie, None) == (400, 403)
    assert refused(cluster, tampered, origin) == (400, 401)
    assert refused(cluster, cookie, origin) == (101, 426)
    # Admitted: the session's account is the IRC account, with no password on the socket.
    sock, status, head, rest = ws_handshake(cluster, cookie, origin)
    try:
        assert status == 101, head
        assert re.search(r"(?im)^sec-websocket-protocol: text\.ircv3\.net\r?$", head), head
        ws = WebSocketIRC(sock, rest)
        nick = unique_nick("bob")
        ws.send("CAP LS 302")
        ws.send("CAP REQ :server-time echo-message")
        ws.send(f"NICK {nick}")
        ws.send(f"USER {nick} 0 * :web")
        ws.send("CAP END")
        ws.expect(rf":\S+ 001 {nick} :Welcome .*")
        ws.send(f"WHOIS {nick}")
        ws.expect(rf":\S+ 330 {nick} {nick} bob@example\.test :is logged in as")
        # A message that smuggles a second line is refused whole; a too long one gets 417.
        ws.send("PING :a\r\nQUIT")
        ws.expect(rf":\S+ 421 {nick} \* :Malformed command")
        ws.send("PING :" + "x" * 600)
        ws.expect(rf":\S+ 417 {nick} :Input line was too long")
        ws.send("PING :still-here")
        ws.expect(r":\S+ PONG \S+ :?still-here")
        # A frame over the IRC line limit closes the socket: 1009 (message too big).
        ws.send("PING :" + "x" * 9000)
        deadline = time.monotonic() + 15
        while True:
            assert time.monotonic() < deadline, "the socket stayed open after a 9000-byte frame"
            opcode, payload = ws.frame()
            if opcode == 0x8:
                assert struct.unpack("!H", payload[:2])[0] == 1009, payload
                break
    finally:
        sock.close()
    # Flood control as for a TCP client: 263 over the burst, then ERROR (Excess Flood).
    ws, nick = ws_register(cluster, cookie, origin, unique_nick("bob"))
    sock = ws.sock
    try:
        for i in range(80):
            ws.send(f"PING :flood{i}")
        ws.expect(rf":\S+ 263 {nick} PING :Flooding: please wait a while and try again")
        ws.expect(rf"ERROR :Closing Link: {nick} \(Excess Flood\)")
    finally:
        sock.close()


# ---------------------------------------------------------------- the browser


def web_node(irc: IRC, nick: str) -> str:
    """The node a nick is connected to (WHOIS 312)."""
    irc.send(f"WHOIS {nick}")
    return irc.expect(rf":\S+ 312 \S+ {re.escape(nick)} (\S+) :.*").group(1)


def text_of(driver, css: str) -> str:
    """The element's text content (lines scrolled out of the message view included)."""
    return driver.execute_script("return document.querySelector(arguments[0]).textContent", css)


def wait_text(driver, css: str, text: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        content = text_of(driver, css)
        if text in content:
            return
        assert time.monotonic() < deadline, f"{text!r} not in {css}: {content[-500:]!r}"
        time.sleep(0.2)


def open_chat(cluster, driver, chan: str) -> str:
    """Signs in, opens the chat from the navigation, joins `chan`; returns the page's nick."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(base(cluster) + "/login")
    driver.find_element(By.NAME, "user").send_keys(WEB_USER[0])
    driver.find_element(By.NAME, "password").send_keys(WEB_USER[1])
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    wait_url(driver, "/mail")
    driver.find_element(By.ID, "chat-link").click()
    wait_text(driver, "#chat-status", "Connected as")
    nick = re.search(r"Connected as (\S+?)\.", text_of(driver, "#chat-status")).group(1)
    box = driver.find_element(By.ID, "join-input")
    box.send_keys(chan)
    box.send_keys(Keys.ENTER)
    wait_text(driver, "#chat-title", chan)
    return nick


def test_browser_and_irc_client_on_the_other_node(cluster, generous_flood_limits):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    if len(cluster.nodes) < 2:
        pytest.skip("needs two nodes")
    chan = channel_name()
    b = unique_nick("bob")
    bob = login(cluster, cluster.nodes[0], b, BOB)
    driver = chromium()
    carol = None
    try:
        bob.send(f"JOIN {chan}")
        bob.expect(rf":\S+ 366 {b} {chan} .*")
        # 60 lines before the browser comes: the page shows the latest 50, the rest on scroll-back.
        for i in range(60):
            bob.send(f"PRIVMSG {chan} :early line {i:02d}")
        bob.expect(rf"\S+ :{b}!\S+ PRIVMSG {chan} :early line 59")
        bob.send(f"TOPIC {chan} :Web chat topic {chan}")
        bob.expect(rf"\S+ :{b}!\S+ TOPIC {chan} :.*")

        nick = open_chat(cluster, driver, chan)
        wait_text(driver, "#messages", "early line 59")
        wait_text(driver, "#chat-topic", f"Web chat topic {chan}")
        assert "early line 05" not in text_of(driver, "#messages")
        driver.find_element(By.ID, "older").click()
        wait_text(driver, "#messages", "early line 00")
        texts = driver.execute_script("return Array.from(document.querySelectorAll('#messages li'), li => li.textContent)")
        early = [t for t in texts if "early line" in t]
        assert [t.split("early line ")[1] for t in early] == [f"{i:02d}" for i in range(60)], early

        # The IRC client on the node that does not serve the browser's socket.
        node = web_node(bob, nick)
        other = next(n for n in cluster.nodes if n != node)
        c = unique_nick("carol")
        carol = login(cluster, other, c, CAROL)
        assert web_node(carol, c) == other
        carol.send(f"JOIN {chan}")
        carol.expect(rf":\S+ 366 {c} {chan} .*")
        wait_text(driver, "#member-list", c)
        assert b in text_of(driver, "#member-list")

        # Browser → IRC, exact text (markup is text, not HTML).
        sent = f"from the browser {uuid.uuid4().hex[:6]} <b>not bold</b> & ✓"
        box = driver.find_element(By.ID, "send-input")
        box.send_keys(sent)
        box.send_keys(Keys.ENTER)
        carol.expect(rf"\S+ :{re.escape(nick)}!\S+ PRIVMSG {chan} :{re.escape(sent)}")
        wait_text(driver, "#messages", sent)
        # IRC → browser, exact text; markup stays text.
        said = f"from irc {uuid.uuid4().hex[:6]} <img src=x onerror=alert(1)><script>alert(2)</script>"
        carol.send(f"PRIVMSG {chan} :{said}")
        wait_text(driver, "#messages", said)
        assert driver.execute_script("return document.querySelectorAll('#messages img, #messages script, #messages b').length") == 0
        assert_no_alert(driver)

        # A private message: the browser and carol see it, bob does not.
        secret = f"just for you {uuid.uuid4().hex[:6]}"
        carol.send(f"PRIVMSG {nick} :{secret}")
        wait_text(driver, "#channel-list", c)
        assert all(secret not in line for line in bob.quiet(1.0))
        driver.find_element(By.XPATH, f"//ul[@id='channel-list']//button[starts-with(normalize-space(.), '{c}')]").click()
        wait_text(driver, "#messages", secret)
        box = driver.find_element(By.ID, "send-input")
        box.send_keys("private answer")
        box.send_keys(Keys.ENTER)
        carol.expect(rf"\S+ :{re.escape(nick)}!\S+ PRIVMSG {c} :private answer")
        assert all("private answer" not in line for line in bob.quiet(1.0))
        driver.find_element(By.XPATH, f"//ul[@id='channel-list']//button[starts-with(normalize-space(.), '{chan}')]").click()
        wait_text(driver, "#chat-title", chan)
        shot(driver, "chat")
        # A phone-sized window: no horizontal scrolling.
        driver.set_window_size(390, 844)
        time.sleep(0.5)
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(driver, "chat-phone")
    finally:
        driver.quit()
        bob.close()
        if carol:
            carol.close()


def test_browser_reconnects_when_its_node_dies(cluster):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    if len(cluster.nodes) < 2:
        pytest.skip("needs two nodes")
    chan = channel_name()
    driver = chromium()
    carol = None
    try:
        nick = open_chat(cluster, driver, chan)
        probe = login(cluster, cluster.nodes[0], unique_nick("bob"), BOB)
        node = web_node(probe, nick)
        probe.close()
        other = next(n for n in cluster.nodes if n != node)
        c = unique_nick("carol")
        carol = login(cluster, other, c, CAROL)
        carol.send(f"JOIN {chan}")
        carol.expect(rf":\S+ 366 {c} {chan} .*")
        carol.send(f"PRIVMSG {chan} :before the node died")
        wait_text(driver, "#messages", "before the node died")
        cluster.kill(node)
        try:
            wait_text(driver, "#chat-status", "reconnecting", timeout=20)
            # Back through HAProxy on the live node, the channel joined again.
            # (Until the dead node's heartbeat is stale its nick is still online there, so the
            # page may come back as nick_1.)
            again = carol.expect(rf"\S+ :({re.escape(nick)}(?:_\d)?)!\S+ JOIN {chan}", timeout=60).group(1)
            wait_text(driver, "#chat-status", "Connected as", timeout=30)
            carol.send(f"PRIVMSG {chan} :after the node died")
            wait_text(driver, "#messages", "after the node died")
            box = driver.find_element(By.ID, "send-input")
            box.send_keys("still here")
            box.send_keys(Keys.ENTER)
            carol.expect(rf"\S+ :{re.escape(again)}!\S+ PRIVMSG {chan} :still here")
        finally:
            cluster.start(node)
    finally:
        driver.quit()
        if carol:
            carol.close()


def test_logout_everywhere_closes_the_socket(cluster):
    """An open chat socket re-checks its web session every few seconds: "log out everywhere"
    from another browser ends it with ERROR, and its channel sees the QUIT."""
    from test_imap import add_user, remove_user
    from test_web import hidden, web_login

    address = add_user(cluster)
    try:
        laptop = web_login(cluster, address)
        phone_cookie = web_login(cluster, address).cookies["svcpkg_session"]
        origin = f"http://127.0.0.1:{cluster.port('HTTP')}"
        ws, nick = ws_register(cluster, phone_cookie, origin, unique_nick("w"))
        sock = ws.sock
        try:
            chan = channel_name()
            ws.send(f"JOIN {chan}")
            ws.expect(rf":\S+ 366 {nick} {chan} .*")
            b = unique_nick("bob")
            bob = login(cluster, cluster.nodes[-1], b, BOB)
            try:
                bob.send(f"JOIN {chan}")
                bob.expect(rf":\S+ 366 {b} {chan} .*")
                page = laptop.get(base(cluster) + "/mail", timeout=10)
                out = laptop.post(base(cluster) + "/logout-everywhere", data={"_csrf": hidden("_csrf", page.text)},
                                  allow_redirects=False, timeout=10)
                assert out.status_code == 303
                started = time.monotonic()
                ws.expect(r"ERROR :Closing Link: Web session ended, sign in again", timeout=15)
                # 5 s between checks, plus up to 2 s of the node's epoch cache.
                assert time.monotonic() - started < 9
                bob.expect(rf"\S* ?:{nick}!\S+ QUIT :Web session ended", timeout=15)
                # And the old cookie opens no new socket.
                again, status, _, _ = ws_handshake(cluster, phone_cookie, origin)
                again.close()
                assert status == 400
            finally:
                bob.close()
        finally:
            sock.close()
    finally:
        remove_user(cluster, address)
