"""Web-mail over HTTPS: the node's own TLS port (svcpkgHttpsPort) under the certificate named
in LDAP, reached through HAProxy (TCP pass-through) and directly; the session cookie is Secure
and HSTS is sent; a renewed certificate applies to the next connection without a restart; a
session made over HTTPS on one node continues over HTTPS on another."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests

from test_imap import PASSWORD, add_user, remove_user
from test_smtp import clear_node_certificate, server_certificate_der, set_node_certificate
from test_web import deliver, hidden


def https_base(cluster, ip: str = "127.0.0.1", port: int | None = None) -> str:
    return f"https://{ip}:{port or cluster.port('HTTPS')}"


def ca(cluster) -> str:
    return str(cluster.state / "tls" / "cert.pem")


def wait_https_up(cluster, node: str) -> None:
    cluster.wait_for(lambda: cluster.healthz(node)[1]["modules"].get("https", "").startswith("up"), timeout=15,
                     what=f"https listener up on {node}")


def test_login_over_https_through_haproxy(cluster):
    for node in cluster.nodes:
        wait_https_up(cluster, node)
    user = add_user(cluster)
    try:
        subject = "https-" + user.split("@")[0]
        deliver(cluster, user, subject)
        session = requests.Session()
        verify = ca(cluster)  # the dev certificate names 127.0.0.1 (per request: REQUESTS_CA_BUNDLE beats session.verify)
        page = session.get(https_base(cluster) + "/login", timeout=10, verify=verify)
        assert page.status_code == 200 and 'name="password"' in page.text
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")
        response = session.post(https_base(cluster) + "/login",
                                data={"_login": hidden("_login", page.text), "user": user, "password": PASSWORD},
                                allow_redirects=False, timeout=30, verify=verify)
        assert response.status_code == 303, response.text
        session_cookie = [v for k, v in response.headers.items() if k.lower() == "set-cookie" and "svcpkg_session=" in v]
        assert session_cookie and "Secure" in session_cookie[0] and "HttpOnly" in session_cookie[0]
        inbox = session.get(https_base(cluster) + "/mail", timeout=10, verify=verify)
        assert inbox.status_code == 200 and subject in inbox.text
        served_by = inbox.headers["X-Served-By"]
        # The same cookie over HTTPS straight to the other node: the session continues there.
        other = next(n for n in cluster.nodes if n != served_by)
        direct = requests.get(https_base(cluster, cluster.node_ip(other)) + "/mail", timeout=10, verify=False,
                              cookies={"svcpkg_session": session.cookies["svcpkg_session"]}, allow_redirects=False)
        assert direct.status_code == 200 and subject in direct.text
        assert direct.headers["X-Served-By"] == other
        # Plain HTTP does not get HSTS (a browser would ignore it there anyway).
        plain = requests.get(f"http://127.0.0.1:{cluster.port('HTTP')}/login", timeout=10)
        assert "Strict-Transport-Security" not in plain.headers
        # Health over HTTPS too, and plain HTTP spoken to the TLS port is refused, not served.
        health = requests.get(https_base(cluster, cluster.node_ip(other)) + "/healthz", timeout=10, verify=False)
        assert health.status_code == 200 and health.json()["node"] == other
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://{cluster.node_ip(other)}:{cluster.port('HTTPS')}/healthz", timeout=5)
    finally:
        remove_user(cluster, user)


def test_https_certificate_renewed_live(cluster, tmp_path):
    node = cluster.nodes[-1]
    wait_https_up(cluster, node)
    ip, port = cluster.node_ip(node), cluster.port("HTTPS")
    before = server_certificate_der(ip, port)
    pid = cluster.node_pid(node)
    cert, _, dn = set_node_certificate(cluster, node, tmp_path, "renewed-web.test")
    try:
        expected = ssl.PEM_cert_to_DER_cert(cert.read_text())
        cluster.wait_for(lambda: server_certificate_der(ip, port) == expected, timeout=10, what="the renewed certificate")
        assert before != expected and cluster.node_pid(node) == pid
        # A client that trusts only the new certificate completes a request.
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        with socket.create_connection((ip, port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="renewed-web.test") as tls:
                tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                reply = b""
                while chunk := tls.recv(65536):
                    reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    finally:
        clear_node_certificate(cluster, dn)
    cluster.wait_for(lambda: server_certificate_der(ip, port) == before, timeout=10, what="the cluster certificate again")
