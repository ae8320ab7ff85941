"""Acceptance tests of the foundation (issue 2) against a real multi-node dev cluster:
live config from LDAP (ldapmodify -> node within 2 s), drain through HAProxy's agent-check,
config sources, bad values, LDAP outage, heartbeats, `svcpkg check`, SIGTERM drain and
the installable image."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIVE_CONFIG_DEADLINE = 2.0  # seconds, from the issue: ldapmodify reaches a running node within 2 s


def node_dn(cluster, node: str) -> str:
    return f"cn={node},ou=nodes,ou=svcpkg,{cluster.base}"


def cluster_dn(cluster) -> str:
    return f"cn=cluster,ou=svcpkg,{cluster.base}"


def set_attr(cluster, dn: str, attr: str, value: str | None, check=True):
    """replace (value given) or delete (None) one attribute with ldapmodify."""
    if value is None:
        ldif = f"dn: {dn}\nchangetype: modify\ndelete: {attr}\n"
    else:
        ldif = f"dn: {dn}\nchangetype: modify\nreplace: {attr}\n{attr}: {value}\n"
    return cluster.ldapmodify(ldif, check=check)


def clear_attr(cluster, dn: str, attr: str):
    """Deletes the attribute if present (for cleanup)."""
    set_attr(cluster, dn, attr, None, check=False)


def agent_reply(cluster, node: str) -> str:
    with socket.create_connection((cluster.node_ip(node), cluster.port("AGENT")), timeout=3) as sock:
        data = b""
        while chunk := sock.recv(256):
            data += chunk
    return data.decode()


def config_json(cluster, node: str, about: str | None = None) -> dict:
    args = ["config", "show", "--json", "--cache-dir", str(cluster.state / "nodes" / node / "cache")]
    if about:
        args += ["--node", about]
    proc = cluster.run_svcpkg(args, node=node)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def wait_timed(cluster, predicate, what: str, deadline: float) -> float:
    """Polls every 50 ms; returns the seconds it took, failing past `deadline`."""
    start = time.monotonic()
    cluster.wait_for(predicate, timeout=deadline, interval=0.05, what=what)
    return time.monotonic() - start


def nodes_behind_haproxy(cluster, requests=30) -> dict[str, int]:
    seen: dict[str, int] = {}
    for _ in range(requests):
        status, body = cluster.healthz()  # through HAProxy on 127.0.0.1
        assert status == 200 and body, f"HAProxy answered {status}"
        seen[body["node"]] = seen.get(body["node"], 0) + 1
    return seen


# --------------------------------------------------------------------------- drain

def test_drain_and_back_through_ldap_and_haproxy(cluster):
    first, second = cluster.nodes[0], cluster.nodes[1]
    assert agent_reply(cluster, second).startswith("ready up ")
    cluster.wait_for(lambda: second in nodes_behind_haproxy(cluster), what=f"HAProxy to use {second}")

    set_attr(cluster, node_dn(cluster, second), "svcpkgNodeState", "drain")
    took = wait_timed(cluster, lambda: agent_reply(cluster, second) == "drain\n",
                      f"{second}'s agent to say drain", LIVE_CONFIG_DEADLINE)
    print(f"ldapmodify -> agent-check drain: {took:.2f}s")
    assert agent_reply(cluster, first).startswith("ready up ")  # the other node is unaffected
    cluster.wait_for(lambda: "DRAIN" in cluster.haproxy_servers()[("http", second)]["status"],
                     timeout=5, what="HAProxy to mark the server DRAIN")
    seen = nodes_behind_haproxy(cluster)
    assert second not in seen and first in seen, seen
    status, health = cluster.healthz(second)
    assert status == 200 and health["state"] == "drain"

    set_attr(cluster, node_dn(cluster, second), "svcpkgNodeState", "active")
    took = wait_timed(cluster, lambda: agent_reply(cluster, second).startswith("ready up "),
                      f"{second}'s agent to say ready", LIVE_CONFIG_DEADLINE)
    print(f"ldapmodify -> agent-check ready: {took:.2f}s")
    cluster.wait_for(lambda: cluster.haproxy_servers()[("http", second)]["status"] == "UP",
                     timeout=5, what="HAProxy to mark the server UP")
    cluster.wait_for(lambda: second in nodes_behind_haproxy(cluster), what=f"HAProxy to use {second} again")


def test_maint_state_takes_node_out(cluster):
    node = cluster.nodes[-1]
    try:
        set_attr(cluster, node_dn(cluster, node), "svcpkgNodeState", "maint")
        wait_timed(cluster, lambda: agent_reply(cluster, node) == "maint\n", "maint", LIVE_CONFIG_DEADLINE)
        cluster.wait_for(lambda: "MAINT" in cluster.haproxy_servers()[("http", node)]["status"],
                         timeout=5, what="HAProxy MAINT")
    finally:
        clear_attr(cluster, node_dn(cluster, node), "svcpkgNodeState")
    wait_timed(cluster, lambda: agent_reply(cluster, node).startswith("ready up "), "ready", LIVE_CONFIG_DEADLINE)
    cluster.wait_for(lambda: cluster.haproxy_servers()[("http", node)]["status"] == "UP", timeout=5,
                     what="HAProxy UP after maint")


# --------------------------------------------------------------------------- config sources

def test_cluster_default_and_node_override(cluster):
    first, second = cluster.nodes[0], cluster.nodes[1]
    try:
        set_attr(cluster, cluster_dn(cluster), "svcpkgMaxConnections", "5000")
        set_attr(cluster, node_dn(cluster, second), "svcpkgMaxConnections", "7000")
        one = config_json(cluster, first)["settings"]["svcpkgMaxConnections"]
        two = config_json(cluster, second)["settings"]["svcpkgMaxConnections"]
        assert one == {"values": ["5000"], "source": "cluster", "dn": cluster_dn(cluster)}
        assert two == {"values": ["7000"], "source": "node", "dn": node_dn(cluster, second)}
        # --node shows another node's view from anywhere
        assert config_json(cluster, first, about=second)["settings"]["svcpkgMaxConnections"]["values"] == ["7000"]
        # a setting nobody set is the built-in default
        assert config_json(cluster, first)["settings"]["svcpkgDrainTimeout"] == {"values": ["30"], "source": "default"}
        # and the table form names the source too
        table = cluster.run_svcpkg(["config", "show"], node=second).stdout
        line = next(l for l in table.splitlines() if l.startswith("svcpkgMaxConnections"))
        assert "7000" in line and f"node ({node_dn(cluster, second)})" in line
    finally:
        clear_attr(cluster, node_dn(cluster, second), "svcpkgMaxConnections")
        clear_attr(cluster, cluster_dn(cluster), "svcpkgMaxConnections")
    assert config_json(cluster, second)["settings"]["svcpkgMaxConnections"]["source"] == "default"


def test_listener_rebinds_live_on_port_change(cluster):
    node = cluster.nodes[-1]
    ip, old_port, new_port = cluster.node_ip(node), cluster.port("HTTP"), cluster.port("HTTP") + 1000
    pid = cluster.node_pid(node)
    try:
        set_attr(cluster, node_dn(cluster, node), "svcpkgHttpPort", str(new_port))

        def serves_on_new_port():
            status, _ = cluster.http_get(f"http://{ip}:{new_port}/healthz", timeout=1) if port_open(ip, new_port) else (0, b"")
            return status == 200

        took = wait_timed(cluster, serves_on_new_port, "HTTP on the new port", LIVE_CONFIG_DEADLINE + 1)
        print(f"ldapmodify -> HTTP rebound on :{new_port}: {took:.2f}s")
        cluster.wait_for(lambda: not port_open(ip, old_port), timeout=3, what="old port to close")
    finally:
        clear_attr(cluster, node_dn(cluster, node), "svcpkgHttpPort")
    cluster.wait_for(lambda: port_open(ip, old_port), timeout=5, what="HTTP back on the old port")
    assert cluster.node_pid(node) == pid, "the node restarted; it must rebind live"


def port_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- bad values

def test_bad_values_are_reported_and_old_value_stays(cluster):
    node = cluster.nodes[1]
    dn = node_dn(cluster, node)
    # slapd's own syntax check already refuses a non-integer port; nothing changes.
    refused = set_attr(cluster, dn, "svcpkgHttpPort", "abc", check=False)
    assert refused.returncode != 0 and "svcpkgHttpPort" in refused.stderr
    # A value slapd accepts but our rule refuses.
    try:
        set_attr(cluster, dn, "svcpkgHttpPort", "70000")

        def reported():
            status, health = cluster.healthz(node)  # still on the old port: the old value is in force
            return status == 200 and any(dn in p and "svcpkgHttpPort" in p for p in health["config"]["problems"])

        wait_timed(cluster, reported, "the problem in /healthz", LIVE_CONFIG_DEADLINE)
        status, health = cluster.healthz(node)
        assert health["status"] == "degraded"
        problem = next(p for p in health["config"]["problems"] if "svcpkgHttpPort" in p)
        assert "70000" in problem and f"keeping {cluster.port('HTTP')}" in problem
        assert f"{dn}: svcpkgHttpPort" in cluster.node_log(node)
        shown = config_json(cluster, node)
        assert shown["settings"]["svcpkgHttpPort"]["values"] == [str(cluster.port("HTTP"))]
        assert shown["problems"][0]["dn"] == dn and shown["problems"][0]["attribute"] == "svcpkgHttpPort"
        # A bad state value leaves the node serving in its old state.
        set_attr(cluster, dn, "svcpkgNodeState", "sleeping")
        cluster.wait_for(lambda: any("svcpkgNodeState" in p for p in cluster.healthz(node)[1]["config"]["problems"]),
                         timeout=LIVE_CONFIG_DEADLINE, what="state problem")
        assert agent_reply(cluster, node).startswith("ready up ")
    finally:
        clear_attr(cluster, dn, "svcpkgHttpPort")
        clear_attr(cluster, dn, "svcpkgNodeState")
    cluster.wait_for(lambda: cluster.healthz(node)[1]["config"]["problems"] == [], timeout=3,
                     what="problems to clear")


# --------------------------------------------------------------------------- LDAP outage

def test_ldap_outage_nodes_serve_from_cache_and_reconnect(cluster):
    pids = {n: cluster.node_pid(n) for n in cluster.nodes}
    restarted = cluster.nodes[-1]
    cluster.dev_cluster("kill", "slapd")
    try:
        for node in cluster.nodes:
            cluster.wait_for(lambda node=node: cluster.healthz(node)[1]["ldap"]["reachable"] is False,
                             timeout=5, what=f"{node} to report LDAP down")
            status, health = cluster.healthz(node)
            assert status == 200 and health["status"] == "degraded"
            assert "Can't contact LDAP server" in health["ldap"]["error"]
            assert metrics(cluster, node)["svcpkg_ldap_reachable"] == 0
        # A node restarted while LDAP is down starts from its on-disk cache.
        cluster.kill(restarted)
        cluster.start(restarted)
        status, health = cluster.healthz(restarted)
        assert status == 200 and health["config"]["source"] == "cache"
        assert "LDAP unreachable at start" in cluster.node_log(restarted)
        # HAProxy keeps routing to them
        assert nodes_behind_haproxy(cluster, 10)
    finally:
        cluster.dev_cluster("start", "slapd")
    for node in cluster.nodes:
        cluster.wait_for(lambda node=node: cluster.healthz(node)[1]["ldap"]["reachable"] is True,
                         timeout=5, what=f"{node} to reconnect to LDAP")
        status, health = cluster.healthz(node)
        assert health["config"]["source"] == "ldap" and health["status"] == "ok"
    for node in cluster.nodes:
        if node != restarted:
            assert cluster.node_pid(node) == pids[node], f"{node} restarted"
    # live config works again after the reconnect
    node = cluster.nodes[0]
    try:
        set_attr(cluster, node_dn(cluster, node), "svcpkgNodeState", "drain")
        wait_timed(cluster, lambda: agent_reply(cluster, node) == "drain\n", "drain after reconnect", LIVE_CONFIG_DEADLINE)
    finally:
        clear_attr(cluster, node_dn(cluster, node), "svcpkgNodeState")
    cluster.wait_for(lambda: agent_reply(cluster, node).startswith("ready"), timeout=3, what="ready")


# --------------------------------------------------------------------------- metrics

def metrics_text(cluster, node: str) -> str:
    status, body = cluster.http_get(f"http://{cluster.node_ip(node)}:{cluster.port('HTTP')}/metrics")
    assert status == 200
    return body.decode()


def metrics(cluster, node: str) -> dict[str, float]:
    """Samples of the Prometheus text format: {'name{labels}': value}."""
    samples = {}
    for line in metrics_text(cluster, node).splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_endpoint(cluster):
    node = cluster.nodes[0]
    assert "# HELP svcpkg_config_age_seconds" in metrics_text(cluster, node)
    samples = metrics(cluster, node)
    assert samples["svcpkg_ldap_reachable"] == 1 and samples["svcpkg_shared_tree_writable"] == 1
    assert samples['svcpkg_node_state{state="active"}'] == 1 and samples['svcpkg_node_state{state="drain"}'] == 0
    assert samples["svcpkg_config_problems"] == 0 and samples["svcpkg_config_age_seconds"] < 5
    # counters from the modules appear once used
    import smtplib
    with smtplib.SMTP(cluster.node_ip(node), cluster.port("SMTP"), timeout=10) as client:
        client.sendmail("x@remote.test", ["alice@example.test"], b"Subject: metrics\r\n\r\nhi\r\n")
    assert metrics(cluster, node)['svcpkg_smtp_messages_accepted_total{port="mx"}'] >= 1


# --------------------------------------------------------------------------- heartbeats

def cluster_status(cluster, via: str) -> dict[str, dict]:
    proc = cluster.run_svcpkg(["cluster", "status", "--json"], node=via)
    assert proc.returncode == 0, proc.stderr
    return {row["node"]: row for row in json.loads(proc.stdout)["nodes"]}


def test_heartbeat_goes_stale_after_kill_and_recovers(cluster):
    victim, observer = cluster.nodes[0], cluster.nodes[1]
    rows = cluster_status(cluster, observer)
    assert set(rows) >= set(cluster.nodes)
    assert all(rows[n]["status"] == "alive" for n in cluster.nodes), rows
    assert rows[victim]["address"] == cluster.node_ip(victim)
    cluster.kill(victim)
    try:
        row = cluster.wait_for(lambda: (r := cluster_status(cluster, observer)[victim])["status"] == "stale" and r,
                               timeout=15, what=f"{victim}'s heartbeat to go stale")
        assert row["heartbeat_age"] > 4  # svcpkgHeartbeatStaleAfter in the dev cluster
        table = cluster.run_svcpkg(["cluster", "status"], node=observer).stdout
        assert any(l.startswith(victim) and "stale" in l for l in table.splitlines()), table
    finally:
        cluster.start(victim)
    cluster.wait_for(lambda: cluster_status(cluster, observer)[victim]["status"] == "alive", timeout=10,
                     what=f"{victim} alive again")


def test_sigterm_drains_and_reports_stopped(cluster):
    node = cluster.nodes[-1]
    pid = cluster.node_pid(node)
    os.kill(pid, signal.SIGTERM)
    try:
        cluster.wait_for(lambda: not Path(f"/proc/{pid}").exists() or
                         Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z",
                         timeout=15, what="the node to exit after SIGTERM")
        assert "draining" in cluster.node_log(node) and "stopped" in cluster.node_log(node)
        assert cluster_status(cluster, cluster.nodes[0])[node]["status"] == "stopped"
    finally:
        cluster.start(node)


# --------------------------------------------------------------------------- svcpkg check

def write_bootstrap(cluster, tmp_path: Path, **changes) -> Path:
    text = Path(cluster.bootstrap(cluster.nodes[0])).read_text()
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in changes:
            line = f"{key} = {changes.pop(key)}"
        lines.append(line)
    lines += [f"{k} = {v}" for k, v in changes.items()]
    path = tmp_path / "bootstrap.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_check(cluster, bootstrap: Path) -> subprocess.CompletedProcess:
    return subprocess.run([cluster.bin, "check", "--bootstrap", str(bootstrap)], capture_output=True,
                          text=True, timeout=60)


def test_check_passes_on_a_good_node(cluster):
    proc = cluster.run_svcpkg(["check"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok: shared tree" in proc.stdout


def test_check_wrong_ldap_uri(cluster, tmp_path):
    proc = run_check(cluster, write_bootstrap(cluster, tmp_path, ldap_uri="ldap://127.0.0.1:1"))
    assert proc.returncode != 0
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and "cannot reach LDAP at ldap://127.0.0.1:1" in errors[0], proc.stderr


def test_check_wrong_bind_password(cluster, tmp_path):
    pw = tmp_path / "wrong.pw"
    pw.write_text("not-the-password\n")
    proc = run_check(cluster, write_bootstrap(cluster, tmp_path, bind_password_file=str(pw)))
    assert proc.returncode != 0
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and "bind as cn=svcpkg-node" in errors[0] and "rejected" in errors[0], proc.stderr


def test_check_missing_shared_root(cluster, tmp_path):
    ghost = "ghost"
    missing = tmp_path / "not-mounted"
    cluster.ldapmodify(
        f"dn: {node_dn(cluster, ghost)}\nchangetype: add\nobjectClass: svcpkgNode\nobjectClass: svcpkgSettings\n"
        f"cn: {ghost}\nsvcpkgSharedRoot: {missing}\n")
    try:
        proc = run_check(cluster, write_bootstrap(cluster, tmp_path, node=ghost))
    finally:
        cluster.ldapmodify(f"dn: {node_dn(cluster, ghost)}\nchangetype: delete\n")
    assert proc.returncode != 0
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and "shared tree" in errors[0] and str(missing) in errors[0], proc.stderr
    assert not missing.exists()


def test_check_missing_bootstrap_and_password_file(cluster, tmp_path):
    proc = run_check(cluster, tmp_path / "nope.conf")
    assert proc.returncode != 0 and "nope.conf" in proc.stderr and "no such file" in proc.stderr
    proc = run_check(cluster, write_bootstrap(cluster, tmp_path, bind_password_file=str(tmp_path / "none.pw")))
    assert proc.returncode != 0 and "none.pw" in proc.stderr


# --------------------------------------------------------------------------- the image

def test_image_has_binary_unit_template_and_schema(cluster, tmp_path):
    out = tmp_path / "dist"
    proc = subprocess.run([str(REPO / "ServicePackage" / "build-image"), "--binary", cluster.bin, "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    tarball = Path(proc.stdout.strip().splitlines()[-1])
    assert tarball.exists() and (out / (tarball.name + ".sha256")).exists()
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        top = tarball.name.removesuffix(".tar.gz")
        for needed in ["bin/svcpkg", "lib/systemd/system/svcpkg.service", "etc/svcpkg/bootstrap.conf.example",
                       "share/svcpkg/ldap-schema/svcpkg.schema", "share/svcpkg/ldap-schema/svcpkg.ldif",
                       "share/svcpkg/ldap-schema/SETTINGS.md", "VERSION"]:
            assert f"{top}/{needed}" in names, needed
        tar.extractall(tmp_path / "x")
    binary = tmp_path / "x" / top / "bin" / "svcpkg"
    version = (tmp_path / "x" / top / "VERSION").read_text().strip()
    assert subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip() == version
    assert top.startswith(f"svcpkg-{version}-linux-")
