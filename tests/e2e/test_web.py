"""Web-mail against the real cluster through HAProxy's HTTP port: login, sealed cookies that
any node accepts (the serving node is killed mid-session), CSRF and tampered-cookie refusal,
security headers, live updates, and a real browser (headless Chromium driven by Selenium)
reading mail delivered by SMTP, replying with an attachment, and rendering every XSS vector of
the sanitizer's test list without running script or fetching from a foreign host.

Each test works on users of its own (added to LDAP), so tests do not see each other's mail.
Screenshots go to tests/e2e/artifacts/web/ (ignored by git); the path is printed."""

from __future__ import annotations

import base64
import http.server
import imaplib
import re
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from test_imap import PASSWORD, add_user, remove_user
from test_smtp import smtp, wait_message

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "web"
SANITIZER_TESTS = Path(__file__).resolve().parents[2] / "Tests" / "MailMessageTests" / "HTMLSanitizerTests.swift"


@pytest.fixture()
def user(cluster):
    address = add_user(cluster)
    yield address
    remove_user(cluster, address)


@pytest.fixture()
def peer(cluster):
    address = add_user(cluster)
    yield address
    remove_user(cluster, address)


def base(cluster) -> str:
    return f"http://127.0.0.1:{cluster.port('HTTP')}"


def hidden(name: str, page: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name} in the page"
    return match.group(1)


def node_base(cluster, node: str) -> str:
    """One node's own HTTP port, past HAProxy."""
    return f"http://{cluster.node_ip(node)}:{cluster.port('HTTP')}"


def web_login(cluster, address: str, url: str | None = None) -> requests.Session:
    url = url or base(cluster)
    session = requests.Session()
    page = session.get(url + "/login", timeout=10)
    assert page.status_code == 200, page.text
    response = session.post(url + "/login", data={"_login": hidden("_login", page.text), "user": address,
                                                  "password": PASSWORD}, allow_redirects=False, timeout=30)
    assert response.status_code == 303, response.text
    assert response.headers["Location"] == "/mail"
    assert "svcpkg_session" in session.cookies
    return session


def smtp_any(cluster):
    """SMTP straight to the first node that answers (a test may have one node down)."""
    for node in cluster.nodes:
        try:
            return smtp(cluster, node)
        except OSError:
            continue
    raise AssertionError("no node accepts SMTP")


def deliver(cluster, to: str, subject: str, body: str = "Hello there.\r\n", sender: str = "sender@elsewhere.test",
            headers: str = "", name: str = "Sender", message_id: str | None = None, node: str | None = None) -> None:
    with (smtp(cluster, node) if node else smtp_any(cluster)) as client:
        client.sendmail(sender, [to], (f"From: {name} <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
                                       f"Message-ID: <{message_id or uuid.uuid4().hex + '@elsewhere.test'}>\r\n"
                                       f"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n{headers}\r\n{body}").encode())
    wait_message(cluster, to, subject)


def imap_login(cluster, address: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4(cluster.node_ip(cluster.nodes[0]), cluster.port("IMAP"), timeout=15)
    client.login(address, PASSWORD)
    return client


# ---------------------------------------------------------------- plain HTTP


def test_login_headers_and_pages(cluster, user):
    subject = "w-" + uuid.uuid4().hex[:8]
    deliver(cluster, user, subject)
    anonymous = requests.get(base(cluster) + "/mail", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["Location"] == "/login"
    login_page = requests.get(base(cluster) + "/login", timeout=10)
    wrong = requests.post(base(cluster) + "/login", data={"_login": hidden("_login", login_page.text), "user": user,
                                                          "password": "wrong"}, cookies=login_page.cookies,
                          allow_redirects=False, timeout=30)
    assert wrong.status_code == 401
    session = web_login(cluster, user)
    cookie = next(c for c in session.cookies if c.name == "svcpkg_session")
    assert cookie.has_nonstandard_attr("HttpOnly") or "httponly" in str(cookie._rest).lower()
    inbox = session.get(base(cluster) + "/mail", timeout=10)
    assert inbox.status_code == 200
    assert subject in inbox.text
    for response in (login_page, inbox, session.get(base(cluster) + "/healthz", timeout=10)):
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<script>" not in inbox.text
    set_cookie = [v for k, v in session.get(base(cluster) + "/login", timeout=10).headers.items() if k.lower() == "set-cookie"]
    assert any("SameSite=Strict" in v for v in set_cookie)


def test_tampered_cookie_is_refused(cluster, user):
    session = web_login(cluster, user)
    value = session.cookies["svcpkg_session"]
    flipped = value[:20] + ("A" if value[20] != "A" else "B") + value[21:]
    response = requests.get(base(cluster) + "/mail", cookies={"svcpkg_session": flipped}, allow_redirects=False, timeout=10)
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    followed = requests.get(base(cluster) + "/mail", cookies={"svcpkg_session": flipped}, timeout=10)
    assert 'name="password"' in followed.text


def test_post_without_csrf_token_is_refused(cluster, user):
    subject = "c-" + uuid.uuid4().hex[:8]
    deliver(cluster, user, subject)
    session = web_login(cluster, user)
    page = session.get(base(cluster) + "/mail", timeout=10)
    uid = re.search(r'name="uid" value="(\d+)"', page.text).group(1)
    refused = session.post(base(cluster) + "/action", data={"folder": "INBOX", "uid": uid, "action": "flag"},
                           allow_redirects=False, timeout=10)
    assert refused.status_code == 403
    foreign = session.post(base(cluster) + "/action", data={"_csrf": hidden("_csrf", page.text), "folder": "INBOX",
                                                            "uid": uid, "action": "flag"},
                           headers={"Origin": "http://evil.example"}, allow_redirects=False, timeout=10)
    assert foreign.status_code == 403
    client = imap_login(cluster, user)
    client.select("INBOX")
    assert b"\\Flagged" not in client.uid("FETCH", uid, "(FLAGS)")[1][0]
    done = session.post(base(cluster) + "/action", data={"_csrf": hidden("_csrf", page.text), "folder": "INBOX", "uid": uid,
                                                         "action": "flag"}, allow_redirects=False, timeout=10)
    assert done.status_code == 303
    client.select("INBOX")  # a fresh view: the flag was set by another session (maybe on another node)
    assert b"\\Flagged" in client.uid("FETCH", uid, "(FLAGS)")[1][0]
    client.logout()


def test_session_survives_killing_the_serving_node(cluster, user):
    if len(cluster.nodes) < 2:
        pytest.skip("needs two nodes")
    session = web_login(cluster, user)
    first = session.get(base(cluster) + "/mail", timeout=10)
    assert first.status_code == 200
    served = first.headers["X-Served-By"]
    assert served in cluster.nodes
    cluster.kill(served)
    try:
        cluster.wait_for(lambda: cluster.haproxy_servers()[("http", served)]["status"].startswith("DOWN"), timeout=20,
                         what=f"HAProxy to see {served} down")
        second = session.get(base(cluster) + "/mail", allow_redirects=False, timeout=10)
        assert second.status_code == 200, "the same cookie must work on the other node"
        assert second.headers["X-Served-By"] != served
        assert user in second.text
        # State-changing requests work there too (same CSRF token, from the cookie).
        compose = session.get(base(cluster) + "/compose", timeout=10)
        assert compose.status_code == 200
    finally:
        cluster.start(served)


def test_logout_everywhere(cluster, user):
    phone = web_login(cluster, user)
    laptop = web_login(cluster, user)
    stream = phone.get(base(cluster) + "/events?folder=INBOX", stream=True, timeout=30)
    lines = stream.iter_lines(decode_unicode=True)
    assert next(lines).startswith("retry:")
    page = laptop.get(base(cluster) + "/mail", timeout=10)
    out = laptop.post(base(cluster) + "/logout-everywhere", data={"_csrf": hidden("_csrf", page.text)},
                      allow_redirects=False, timeout=10)
    assert out.status_code == 303
    # Nodes trust a revocation epoch they read for up to 2 seconds.
    time.sleep(2.5)
    for _ in range(4):
        assert phone.get(base(cluster) + "/mail", allow_redirects=False, timeout=10).status_code == 303
    # The phone's live stream ends too.
    started = time.monotonic()
    for _ in lines:
        assert time.monotonic() - started < 10, "the event stream outlived the session"
    stream.close()


def test_disabling_the_account_ends_its_sessions(cluster, user):
    session = web_login(cluster, user)
    assert session.get(base(cluster) + "/mail", allow_redirects=False, timeout=10).status_code == 200
    uid = user.split("@")[0]
    cluster.ldapmodify(f"dn: uid={uid},ou=people,{cluster.base}\nchangetype: modify\n"
                       "replace: svcpkgAccountStatus\nsvcpkgAccountStatus: disabled\n-\n")
    # Nodes cache account lookups for a few seconds.
    cluster.wait_for(lambda: session.get(base(cluster) + "/mail", allow_redirects=False, timeout=10).status_code == 303,
                     timeout=15, what="the disabled account's session to be refused")


def test_live_updates_announce_new_mail(cluster, user):
    session = web_login(cluster, user)
    with session.get(base(cluster) + "/events?folder=INBOX", stream=True, timeout=30) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        lines = stream.iter_lines(decode_unicode=True)
        assert next(lines).startswith("retry:")
        subject = "l-" + uuid.uuid4().hex[:8]
        deliver(cluster, user, subject)
        deadline = time.monotonic() + 15
        seen = []
        for line in lines:
            seen.append(line)
            if line == "event: change":
                break
            assert time.monotonic() < deadline, f"no change event; got {seen}"
        data = next(lines)
        assert data.startswith("data: ") and '"exists":1' in data
    # A page that showed an older state of the folder hears of the change at once.
    page = session.get(base(cluster) + "/mail", timeout=10)
    live = re.search(r'data-live="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert "state=" in live
    stale = re.sub(r"state=[^&]*", "state=0-0-0-0", live)
    with session.get(base(cluster) + stale, stream=True, timeout=30) as stream:
        lines = stream.iter_lines(decode_unicode=True)
        assert [next(lines) for _ in range(4)][-1] == "event: change"


def test_flag_set_over_imap_on_another_node_is_announced(cluster, user):
    subject = "f-" + uuid.uuid4().hex[:8]
    deliver(cluster, user, subject)
    session = web_login(cluster, user)
    with session.get(base(cluster) + "/events?folder=INBOX", stream=True, timeout=30) as stream:
        lines = stream.iter_lines(decode_unicode=True)
        assert next(lines).startswith("retry:")
        for node in cluster.nodes:
            client = imaplib.IMAP4(cluster.node_ip(node), cluster.port("IMAP"), timeout=15)
            client.login(user, PASSWORD)
            client.select("INBOX")
            client.uid("STORE", "1", "+FLAGS", f"(\\Flagged $seen-on-{node})")
            client.logout()
            deadline = time.monotonic() + 15
            for line in lines:
                if line == "event: change":
                    break
                assert time.monotonic() < deadline, f"no change event after the STORE on {node}"
    page = session.get(base(cluster) + "/mail", timeout=10)
    assert 'aria-label="flagged"' in page.text


def test_search_finds_body_text(cluster, user):
    word = "zebra" + uuid.uuid4().hex[:6]
    deliver(cluster, user, "s-first", body=f"Nothing here.\r\n")
    deliver(cluster, user, "s-second", body=f"The {word} is in this one.\r\n")
    session = web_login(cluster, user)
    found = session.get(base(cluster) + "/search", params={"folder": "INBOX", "q": word}, timeout=10)
    assert found.status_code == 200
    assert "s-second" in found.text and "s-first" not in found.text
    by_subject = session.get(base(cluster) + "/search", params={"folder": "INBOX", "q": "s-first"}, timeout=10)
    assert "s-first" in by_subject.text and "s-second" not in by_subject.text


def test_list_orders(cluster, user):
    tag = uuid.uuid4().hex[:6]
    for subject, name in ((f"Re: {tag}-b", "Alice"), (f"{tag}-a", "Carol"), (f"{tag}-c", "Bob")):
        deliver(cluster, user, subject, sender=f"{name.lower()}@elsewhere.test", name=name)
    session = web_login(cluster, user)

    def subjects(order: str) -> list[str]:
        page = session.get(base(cluster) + "/mail", params={"folder": "INBOX", "order": order}, timeout=10)
        assert page.status_code == 200 and "being built" not in page.text
        return re.findall(rf">((?:Re: )?{tag}-[abc])</a>", page.text)

    assert subjects("newest") == [f"{tag}-c", f"{tag}-a", f"Re: {tag}-b"]
    assert subjects("oldest") == [f"Re: {tag}-b", f"{tag}-a", f"{tag}-c"]
    assert subjects("subject") == [f"{tag}-a", f"Re: {tag}-b", f"{tag}-c"]
    assert subjects("sender") == [f"Re: {tag}-b", f"{tag}-c", f"{tag}-a"]  # Alice, Bob, Carol


def test_date_order_and_reversal(cluster, user):
    tag = uuid.uuid4().hex[:6]
    dates = {"x": "Tue, 8 Dec 2026 09:00:00 +0000", "y": "Sun, 6 Dec 2026 09:00:00 +0000", "z": "Mon, 7 Dec 2026 09:00:00 +0000"}
    for letter, date in dates.items():
        with smtp_any(cluster) as client:
            client.sendmail("s@elsewhere.test", [user], (f"From: s@elsewhere.test\r\nTo: {user}\r\nSubject: {tag}-{letter}\r\n"
                                                         f"Date: {date}\r\n\r\nx\r\n").encode())
        wait_message(cluster, user, f"{tag}-{letter}")
    session = web_login(cluster, user)

    def subjects(**params) -> list[str]:
        page = session.get(base(cluster) + "/mail", params={"folder": "INBOX", **params}, timeout=10)
        assert page.status_code == 200 and "being built" not in page.text
        return re.findall(rf">{tag}-([xyz])</a>", page.text)

    assert subjects(order="date") == ["x", "z", "y"]
    assert subjects(order="date", reverse="1") == ["y", "z", "x"]
    assert subjects(order="newest", reverse="1") == ["x", "y", "z"]
    assert subjects(order="subject", reverse="1") == ["z", "y", "x"]


def test_hostile_requests_change_nothing(cluster, user):
    subject = "h-" + uuid.uuid4().hex[:8]
    deliver(cluster, user, subject)
    session = web_login(cluster, user)
    page = session.get(base(cluster) + "/mail", timeout=10)
    token = hidden("_csrf", page.text)
    for folder in ("../../etc", "INBOX/../..", "a\x00b", "x" * 5000):
        response = session.get(base(cluster) + "/mail", params={"folder": folder}, timeout=10)
        assert response.status_code in (400, 404), folder
    moved = session.post(base(cluster) + "/action", data={"_csrf": token, "folder": "INBOX", "uid": "1", "action": "move",
                                                          "target": "../../../tmp"}, allow_redirects=False, timeout=10)
    assert moved.status_code == 400
    huge = session.post(base(cluster) + "/action", data={"_csrf": token, "x": "y" * 200_000}, allow_redirects=False, timeout=10)
    assert huge.status_code == 413
    assert subject in session.get(base(cluster) + "/mail", timeout=10).text


# ---------------------------------------------------------------- the browser


def chromium():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not binary or not Path(driver_path).exists():
        pytest.skip("Debian chromium and chromium-driver are not installed (scripts/install-deps)")
    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--disable-gpu", "--no-first-run"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(driver_path), options=options)


@pytest.fixture()
def browser():
    driver = chromium()
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def browser_login(cluster, driver, address: str, screenshot: str | None = None, url: str | None = None) -> None:
    from selenium.webdriver.common.by import By

    driver.get((url or base(cluster)) + "/login")
    driver.find_element(By.NAME, "user").send_keys(address)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    if screenshot:
        shot(driver, screenshot)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    wait_url(driver, "/mail")


def wait_url(driver, part: str, timeout=15.0) -> None:
    deadline = time.monotonic() + timeout
    while part not in driver.current_url:
        assert time.monotonic() < deadline, f"still at {driver.current_url}, waiting for {part}"
        time.sleep(0.1)


def assert_no_alert(driver) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    raise AssertionError(f"a script ran: alert({text!r})")


def test_browser_reads_and_replies_with_an_attachment(cluster, user, peer, tmp_path):
    from selenium.webdriver.common.by import By

    driver = chromium()
    try:
        subject = "b-" + uuid.uuid4().hex[:8]
        deliver(cluster, user, subject, body="Can you send me the file?\r\n", sender=peer)
        browser_login(cluster, driver, user, screenshot="login")
        link = driver.find_element(By.LINK_TEXT, subject)
        assert "unread" in link.find_element(By.XPATH, "./ancestor::tr").get_attribute("class")
        shot(driver, "inbox")
        # Readable on a phone: nothing wider than the screen.
        driver.set_window_size(390, 844)
        shot(driver, "inbox-phone")
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        driver.set_window_size(1280, 900)
        # Keyboard: "j" focuses the first message, Enter opens it.
        from selenium.webdriver.common.keys import Keys

        driver.find_element(By.TAG_NAME, "body").send_keys("j")
        assert driver.switch_to.active_element.text == subject
        driver.switch_to.active_element.send_keys(Keys.ENTER)
        wait_url(driver, "/message")
        assert "Can you send me the file?" in driver.find_element(By.CSS_SELECTOR, "pre.text-body").text
        shot(driver, "message")
        driver.find_element(By.LINK_TEXT, "Reply").click()
        wait_url(driver, "/compose")
        assert driver.find_element(By.NAME, "to").get_attribute("value") == peer
        assert driver.find_element(By.NAME, "subject").get_attribute("value") == f"Re: {subject}"
        text = driver.find_element(By.NAME, "text")
        text.send_keys("Here it is.")
        assert "> Can you send me the file?" in text.get_attribute("value")
        attachment = tmp_path / "notes.txt"
        attachment.write_text("the attached notes\n")
        driver.find_element(By.NAME, "attachment").send_keys(str(attachment))
        shot(driver, "compose")
        driver.find_element(By.ID, "send").click()
        wait_url(driver, "/mail")
        assert_no_alert(driver)
        # The peer receives it (over IMAP), with the attachment; the Sent folder has the copy.
        raw = wait_message(cluster, peer, f"Re: {subject}", timeout=20)
        assert b"Here it is." in raw
        assert b'filename="notes.txt"' in raw
        assert b"In-Reply-To: <" in raw
        client = imap_login(cluster, peer)
        client.select("INBOX")
        found = client.uid("SEARCH", "SUBJECT", f"\"Re: {subject}\"")[1][0].split()
        assert len(found) == 1
        fetched = client.uid("FETCH", found[0], "(BODY.PEEK[])")[1][0][1]
        assert b"dGhlIGF0dGFjaGVkIG5vdGVzCg==" in fetched  # "the attached notes\n" in base64
        client.logout()
        mine = imap_login(cluster, user)
        assert mine.select("Sent")[0] == "OK"
        assert len(mine.uid("SEARCH", "SUBJECT", f"\"Re: {subject}\"")[1][0].split()) == 1
        mine.select("INBOX")
        flags = mine.uid("FETCH", mine.uid("SEARCH", "SUBJECT", subject)[1][0].split()[0], "(FLAGS)")[1][0]
        assert b"\\Answered" in flags and b"\\Seen" in flags
        mine.logout()
    finally:
        driver.quit()


def test_browser_shows_new_mail_and_other_clients_changes_live(cluster, user):
    from selenium.webdriver.common.by import By

    first = "v-" + uuid.uuid4().hex[:8]
    deliver(cluster, user, first)
    driver = chromium()
    try:
        browser_login(cluster, driver, user)
        driver.find_element(By.LINK_TEXT, first)
        # New mail by SMTP: the open inbox shows it without the user doing anything.
        second = "v-" + uuid.uuid4().hex[:8]
        deliver(cluster, user, second)
        cluster.wait_for(lambda: "/mail" in driver.current_url and second in driver.page_source, timeout=15,
                         what="the new message in the open page")
        # A flag set over IMAP on the last node shows up too.
        client = imaplib.IMAP4(cluster.node_ip(cluster.nodes[-1]), cluster.port("IMAP"), timeout=15)
        client.login(user, PASSWORD)
        client.select("INBOX")
        uid = client.uid("SEARCH", "SUBJECT", f'"{first}"')[1][0].split()[0]
        client.uid("STORE", uid, "+FLAGS", "(\\Flagged)")
        client.logout()

        def starred():
            from selenium.common.exceptions import WebDriverException

            try:  # the page may be reloading right now
                row = driver.find_element(By.LINK_TEXT, first).find_element(By.XPATH, "./ancestor::tr")
                return row.find_elements(By.CSS_SELECTOR, ".flag")
            except WebDriverException:
                return []

        cluster.wait_for(starred, timeout=15, what="the flag set over IMAP in the open page")
        assert_no_alert(driver)
    finally:
        driver.quit()


def test_browser_continues_after_the_serving_node_dies(cluster, user):
    from selenium.webdriver.common.by import By

    if len(cluster.nodes) < 2:
        pytest.skip("needs two nodes")
    subject = "k-" + uuid.uuid4().hex[:8]
    deliver(cluster, user, subject)
    driver = chromium()
    try:
        browser_login(cluster, driver, user)
        # The node that serves this browser now (HAProxy balances each request).
        node = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/mail', {credentials: 'same-origin'}).then(r => done(r.headers.get('X-Served-By')));")
        assert node in cluster.nodes
        cluster.kill(node)
        try:
            cluster.wait_for(lambda: cluster.haproxy_servers()[("http", node)]["status"].startswith("DOWN"), timeout=20,
                             what=f"HAProxy to see {node} down")
            driver.find_element(By.LINK_TEXT, subject).click()
            wait_url(driver, "/message")
            assert "Hello there." in driver.find_element(By.CSS_SELECTOR, "pre.text-body").text
        finally:
            cluster.start(node)
    finally:
        driver.quit()


def test_browser_groups_a_reply_delivered_by_smtp_with_its_original_on_the_other_node(cluster, user):
    """The original reaches the first node by SMTP and is seen there in the conversation view;
    the reply reaches the second node by SMTP and a browser on the second node finds both in one
    conversation, in order; the first node's view follows too, and a conversation row's action
    sets both messages read."""
    from selenium.webdriver.common.by import By

    if len(cluster.nodes) < 2:
        pytest.skip("needs two nodes")
    first, second = cluster.nodes[0], cluster.nodes[1]
    tag = "c-" + uuid.uuid4().hex[:8]
    original = f"{uuid.uuid4().hex}@elsewhere.test"
    deliver(cluster, user, tag, body="Shall we meet?\r\n", sender="ann@elsewhere.test", name="Ann",
            message_id=original, node=first)
    deliver(cluster, user, f"other-{tag}", node=first)
    on_first = web_login(cluster, user, url=node_base(cluster, first))

    def conversations(session, url) -> str:
        page = session.get(url + "/mail", params={"folder": "INBOX", "view": "conversations"}, timeout=10)
        assert page.status_code == 200 and "being built" not in page.text, page.text
        assert page.headers.get("X-Served-By") in cluster.nodes
        return page.text

    before = conversations(on_first, node_base(cluster, first))
    assert f">{tag}</a>" in before and "2 of 2 conversations" in before and 'aria-label="2 messages"' not in before
    deliver(cluster, user, f"Re: {tag}", body="Yes, at noon.\r\n", sender="bob@elsewhere.test", name="Bob", node=second,
            headers=f"In-Reply-To: <{original}>\r\nReferences: <{original}>\r\n")
    driver = chromium()
    try:
        browser_login(cluster, driver, user, url=node_base(cluster, second))
        driver.get(node_base(cluster, second) + "/mail?folder=INBOX&view=conversations")
        assert "being built" not in driver.page_source
        link = driver.find_element(By.LINK_TEXT, tag)
        row = link.find_element(By.XPATH, "./ancestor::tr")
        assert "unread" in row.get_attribute("class")
        assert row.find_element(By.CSS_SELECTOR, "td.from").text == "Ann, Bob 2"
        assert "(2 unread)" in row.text
        # Newest conversation first: the reply made it newer than the "other-" message.
        rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "table.conversations tbody tr")]
        assert tag in rows[0] and f"other-{tag}" in rows[1]
        shot(driver, "conversations")
        link.click()
        wait_url(driver, "/conversation")
        subjects = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table.messages td.subject a")]
        assert subjects == [tag, f"Re: {tag}"]
        senders = [td.text for td in driver.find_elements(By.CSS_SELECTOR, "table.messages td.from")]
        assert senders == ["Ann", "Bob"]
        texts = [pre.text for pre in driver.find_elements(By.CSS_SELECTOR, "article.conversation-message pre.text-body")]
        assert texts == ["Shall we meet?", "Yes, at noon."]
        shot(driver, "conversation")
        driver.find_element(By.LINK_TEXT, f"Re: {tag}").click()
        wait_url(driver, "/message")
        assert "Yes, at noon." in driver.find_element(By.CSS_SELECTOR, "pre.text-body").text
    finally:
        driver.quit()
    # The first node's cached grouping was for the folder before the reply: it follows.
    after = conversations(on_first, node_base(cluster, first))
    assert 'aria-label="2 messages"' in after and f">{tag}</a>" in after
    # The row's action reads the whole conversation (the reply was opened above; the original not yet).
    anchor = re.search(rf'name="conversation" value="(\d+)" aria-label="Select conversation {re.escape(tag)}"', after).group(1)
    response = on_first.post(node_base(cluster, first) + "/action", allow_redirects=False, timeout=10, data={
        "_csrf": hidden("_csrf", after), "folder": "INBOX", "conversation": anchor, "before": hidden("before", after),
        "action": "read"})
    assert response.status_code == 303
    client = imap_login(cluster, user)
    try:
        client.select("INBOX", readonly=True)
        unseen = client.uid("SEARCH", "UNSEEN")[1][0].split()
        assert len(unseen) == 1  # the "other-" message only
        assert tag in client.uid("FETCH", unseen[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1].decode()
        assert "other-" in client.uid("FETCH", unseen[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1].decode()
    finally:
        client.logout()


# ---------------------------------------------------------------- XSS vectors in a browser


def swift_string_literals(text: str) -> list[str]:
    """The string literals of a Swift array literal: "…" with escapes, and #"…"# raw strings."""
    values = []
    i = 0
    while i < len(text):
        if text.startswith('#"', i):
            end = text.index('"#', i + 2)
            values.append(text[i + 2:end])
            i = end + 2
        elif text[i] == '"':
            out = []
            i += 1
            while text[i] != '"':
                if text[i] == "\\":
                    nxt = text[i + 1]
                    if nxt == "u":
                        close = text.index("}", i)
                        out.append(chr(int(text[i + 3:close], 16)))
                        i = close + 1
                        continue
                    out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0", '"': '"', "\\": "\\", "'": "'"}[nxt])
                    i += 2
                    continue
                out.append(text[i])
                i += 1
            values.append("".join(out))
            i += 1
        elif text.startswith("//", i):
            i = text.index("\n", i)
        else:
            i += 1
    return values


def xss_vectors() -> list[str]:
    source = SANITIZER_TESTS.read_text()
    start = source.index("static let xssVectors: [String] = [")
    end = source.index("\n    ]\n", start)
    vectors = swift_string_literals(source[source.index("[", start + 30) + 1:end])
    assert len(vectors) > 100, f"only {len(vectors)} vectors read from {SANITIZER_TESTS}"
    return vectors


class Recorder(http.server.BaseHTTPRequestHandler):
    """The 'foreign host': every request that reaches it is a leak."""

    requests: list[str] = []

    def do_GET(self):  # noqa: N802
        Recorder.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"alert(1)")

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_browser_renders_every_xss_vector_safely(cluster, user, browser):
    from selenium.webdriver.common.by import By

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    foreign = f"http://127.0.0.1:{server.server_address[1]}"
    Recorder.requests = []
    try:
        vectors = xss_vectors()
        tag = "x-" + uuid.uuid4().hex[:8]
        with smtp_any(cluster) as client:
            for number, vector in enumerate(vectors):
                # Every remote URL points at the recorder, so any fetch shows up there.
                html = re.sub(r"(https?:)?//[A-Za-z0-9.-]+(:\d+)?", foreign, vector)
                html = html.replace("xss.htc", foreign + "/xss.htc")
                body = f"<html><body><p>vector {number}</p>{html}<p>end {number}</p></body></html>\r\n"
                # Base64, so that vectors with NUL and bare CR reach the store as they are.
                encoded = base64.encodebytes(body.encode("utf-8")).decode().replace("\n", "\r\n")
                client.sendmail("sender@elsewhere.test", [user], (
                    f"From: sender@elsewhere.test\r\nTo: {user}\r\nSubject: {tag} {number}\r\nMIME-Version: 1.0\r\n"
                    f"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{encoded}"
                ).encode("ascii"))
        cluster.wait_for(lambda: len(imap_uids(cluster, user)) >= len(vectors), timeout=60, what="all vector messages")
        browser_login(cluster, browser, user)
        for uid in imap_uids(cluster, user):
            browser.get(base(cluster) + f"/message?folder=INBOX&uid={uid.decode()}")
            assert_no_alert(browser)
            body = browser.find_element(By.CSS_SELECTOR, "section.content")
            assert "vector" in body.text, f"uid {uid}: the message did not render"
            # The page has only our own script.
            scripts = [s.get_attribute("src") for s in browser.find_elements(By.TAG_NAME, "script")]
            assert all(s and s.startswith(base(cluster) + "/static/") for s in scripts), scripts
            assert not browser.find_elements(By.CSS_SELECTOR, ".html-body iframe, .html-body object, .html-body embed, "
                                                               ".html-body form, .html-body [onerror], .html-body [onclick]")
        time.sleep(1)
        assert_no_alert(browser)
        assert Recorder.requests == [], f"requests reached the foreign host: {Recorder.requests}"
        shot(browser, "xss-vector")
        # Control: the recorder does see a fetch when the user allows remote images, and the
        # image's onload handler still does not run.
        control = next(n for n, v in enumerate(vectors) if "remote.example/x.png" in v and "onload" in v)
        uid = uid_with_subject(cluster, user, f"{tag} {control}")
        browser.get(base(cluster) + f"/message?folder=INBOX&uid={uid}&images=1")
        cluster.wait_for(lambda: Recorder.requests, timeout=10, what="the allowed remote image to be fetched")
        assert_no_alert(browser)
    finally:
        server.shutdown()


def uid_with_subject(cluster, address: str, subject: str) -> str:
    client = imap_login(cluster, address)
    try:
        client.select("INBOX", readonly=True)
        for uid in client.uid("SEARCH", "SUBJECT", f'"{subject}"')[1][0].split():
            header = client.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1]
            if header.strip() == f"Subject: {subject}".encode():
                return uid.decode()
        raise AssertionError(f"no message with subject {subject}")
    finally:
        client.logout()


def imap_uids(cluster, address: str) -> list[bytes]:
    client = imap_login(cluster, address)
    try:
        client.select("INBOX", readonly=True)
        return client.uid("SEARCH", "ALL")[1][0].split()
    finally:
        client.logout()
