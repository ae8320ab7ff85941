"""Tests of the local cluster itself (deploy/dev-cluster, ldap-schema/): slapd, the demo
DIT and its access rules, HAProxy, cluster.env, and kill/start of a node. Of the node
they need only `svcpkg serve` answering GET /healthz with JSON naming the node."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The keys of DESIGN.md's local cluster contract (plus HTTPS_PORT, HAPROXY_SOCKET,
# SVCPKG_BIN); NODE_<name>_IP and NODE_<name>_BOOTSTRAP come on top.
CONTRACT_KEYS = (
    "LDAP_URI LDAP_BASE LDAP_ADMIN_DN LDAP_ADMIN_PW SHARED_ROOT NODES "
    "SMTP_PORT SUBMISSION_PORT SMTPS_PORT POP3_PORT POP3S_PORT IMAP_PORT IMAPS_PORT "
    "IRC_PORT IRCS_PORT HTTP_PORT HTTPS_PORT AGENT_PORT DOMAIN USERS HAPROXY_SOCKET SVCPKG_BIN"
).split()

PROXIED = ["SMTP", "SUBMISSION", "SMTPS", "POP3", "POP3S", "IMAP", "IMAPS", "IRC", "IRCS",
           "HTTP", "HTTPS"]


def test_schema_check_passes():
    proc = subprocess.run([str(REPO / "ldap-schema" / "check-schema")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_slapd_answers(cluster):
    entries = cluster.ldapsearch(base=cluster.base, scope="base")
    assert [e["dn"] for e in entries] == [cluster.base]
    assert cluster.ldap_uri.startswith("ldap://127.0.0.1:")


def test_demo_users_groups_and_domain(cluster):
    people = {e["attrs"]["uid"][0]: e["attrs"] for e in
              cluster.ldapsearch("(objectClass=svcpkgMailUser)", base=f"ou=people,{cluster.base}")}
    assert set(people) == {"alice", "bob", "carol"}
    for uid, attrs in people.items():
        assert attrs["mail"] == [f"{uid}@{cluster.domain}"]
        assert "inetorgperson" in {v.lower() for v in attrs["objectclass"]}
        assert attrs["svcpkgaccountstatus"] == ["active"]
    assert people["alice"]["svcpkgmailalias"] == ["alice.smith@example.test"]
    assert people["bob"]["svcpkgquotabytes"] == ["10485760"]
    # every USERS address is a demo user
    assert set(cluster.users) == {f"{u}@{cluster.domain}" for u in people}

    # alias lookup the way a node does it
    found = cluster.ldapsearch("(&(objectClass=svcpkgMailUser)(|(mail=Alice.Smith@example.test)"
                               "(svcpkgMailAlias=Alice.Smith@example.test)))", attrs=["mail"])
    assert [e["attrs"]["mail"] for e in found] == [["alice@example.test"]]

    (team,) = cluster.ldapsearch("(&(objectClass=svcpkgMailGroup)(mail=team@example.test))")
    assert set(team["attrs"]["svcpkgmailmember"]) >= {"alice@example.test", "bob@example.test"}

    (domain,) = cluster.ldapsearch("(objectClass=svcpkgMailDomain)")
    assert domain["attrs"]["cn"] == [cluster.domain]


def test_cluster_and_node_entries_carry_dev_settings(cluster):
    (entry,) = cluster.ldapsearch(base=f"cn=cluster,ou=svcpkg,{cluster.base}", scope="base")
    a = entry["attrs"]
    assert a["svcpkgsharedroot"] == [str(cluster.shared_root)]
    assert cluster.shared_root.is_absolute() and cluster.shared_root.is_dir()
    assert a["svcpkgallowplaintextauthloopback"] == ["TRUE"]
    assert a["svcpkgheartbeatinterval"] == ["1"]
    assert a["svcpkgheartbeatstaleafter"] == ["4"]
    assert a["svcpkgconfigpollinterval"] == ["500"]
    assert a["svcpkglockstaletimeout"] == ["10"]
    for key, attr in [("SMTP", "smtp"), ("SUBMISSION", "submission"), ("SMTPS", "smtps"),
                      ("POP3", "pop3"), ("POP3S", "pop3s"), ("IMAP", "imap"), ("IMAPS", "imaps"),
                      ("IRC", "irc"), ("IRCS", "ircs"), ("HTTP", "http"), ("HTTPS", "https"),
                      ("AGENT", "agent")]:
        assert a[f"svcpkg{attr}port"] == [str(cluster.port(key))], key
    nodes = {e["attrs"]["cn"][0]: e["attrs"] for e in
             cluster.ldapsearch("(objectClass=svcpkgNode)", base=f"ou=nodes,ou=svcpkg,{cluster.base}")}
    for node in cluster.nodes:
        assert nodes[node]["svcpkglistenaddress"] == [cluster.node_ip(node)]


def test_schema_rejects_invalid_values(cluster):
    dn = f"cn=cluster,ou=svcpkg,{cluster.base}"
    # Integer syntax
    proc = cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\nreplace: svcpkgSmtpPort\n"
                              "svcpkgSmtpPort: twenty-five\n", check=False)
    assert proc.returncode != 0
    # SINGLE-VALUE
    proc = cluster.ldapmodify(f"dn: {dn}\nchangetype: modify\nadd: svcpkgLogLevel\n"
                              "svcpkgLogLevel: info\nsvcpkgLogLevel: debug\n", check=False)
    assert proc.returncode != 0


def test_user_binds_with_password(cluster):
    for address, password in cluster.users.items():
        dn = cluster.user_dn(address.split("@")[0])
        proc = cluster.ldapwhoami(dn, password)
        assert proc.returncode == 0, proc.stderr
        assert dn in proc.stdout
        wrong = cluster.ldapwhoami(dn, password + "x")
        assert wrong.returncode == 49, wrong.stderr  # invalidCredentials


def test_user_reads_own_entry_but_no_other_password(cluster):
    alice, alice_pw = cluster.user_dn("alice"), cluster.users["alice@example.test"]
    (own,) = cluster.ldapsearch(base=alice, scope="base", bind_dn=alice, password=alice_pw)
    assert own["attrs"]["mail"] == ["alice@example.test"]
    others = cluster.ldapsearch("(uid=bob)", attrs=["userPassword"], bind_dn=alice, password=alice_pw)
    assert all("userpassword" not in e["attrs"] for e in others)
    assert others == []  # a user sees no other entry at all


def test_node_account_reads_directory_but_not_passwords(cluster):
    bootstrap = dict(
        (k.strip(), v.strip()) for k, v in
        (line.split("=", 1) for line in Path(cluster.bootstrap(cluster.nodes[0])).read_text().splitlines()
         if "=" in line and not line.lstrip().startswith("#")))
    password = Path(bootstrap["bind_password_file"]).read_text().splitlines()[0]
    entries = cluster.ldapsearch("(objectClass=svcpkgMailUser)", attrs=["mail", "userPassword"],
                                 bind_dn=bootstrap["bind_dn"], password=password)
    assert len(entries) == 3
    assert all("userpassword" not in e["attrs"] for e in entries)
    settings = cluster.ldapsearch("(objectClass=svcpkgSettings)", base=f"ou=svcpkg,{cluster.base}",
                                  bind_dn=bootstrap["bind_dn"], password=password)
    assert len(settings) == 1 + len(cluster.nodes)


def test_anonymous_reads_nothing(cluster):
    assert cluster.ldapsearch(bind_dn="", password=None) == []


def test_bootstrap_files(cluster):
    for node in cluster.nodes:
        path = Path(cluster.bootstrap(node))
        keys = {}
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, value = line.split("=", 1)
                keys[key.strip()] = value.strip()
        assert set(keys) == {"ldap_uri", "bind_dn", "bind_password_file", "base_dn", "node"}
        assert keys["node"] == node
        assert keys["ldap_uri"] == cluster.ldap_uri
        assert keys["base_dn"] == cluster.base
        mode = stat.S_IMODE(os.stat(keys["bind_password_file"]).st_mode)
        assert mode == 0o600, oct(mode)


def test_cluster_env_has_every_contract_key(cluster):
    env = cluster.env  # parsed from cluster.env by the fixture
    missing = [k for k in CONTRACT_KEYS if k not in env]
    assert not missing
    assert env["NODES"].split() == [f"n{i}" for i in range(1, len(env["NODES"].split()) + 1)]
    for i, node in enumerate(cluster.nodes, start=1):
        assert env[f"NODE_{node}_IP"] == f"127.0.0.{10 + i}"
        assert Path(env[f"NODE_{node}_BOOTSTRAP"]).is_file()
    for key in [k for k in env if k.endswith("_PORT")]:
        assert 0 < int(env[key]) < 65536
    assert env["DOMAIN"] == "example.test"
    assert re.fullmatch(r"(\S+@example\.test:\S+)( \S+@example\.test:\S+)*", env["USERS"])
    # the shell reads the same values
    out = subprocess.run(["bash", "-c", 'set -eu; source "$1"; printf "%s\\n" "$USERS" "$NODES" "$LDAP_URI"',
                          "_", str(cluster.state / "cluster.env")], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [env["USERS"], env["NODES"], env["LDAP_URI"]]


def test_nodes_answer_healthz(cluster):
    for node in cluster.nodes:
        status, body = cluster.healthz(node)
        assert status == 200
        assert body and body.get("node") == node


def test_haproxy_listens_and_routes(cluster):
    for key in PROXIED:
        with socket.create_connection(("127.0.0.1", cluster.port(key)), timeout=3):
            pass
    # the agent port is not proxied
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", cluster.port("AGENT")), timeout=3).close()
    info = cluster.haproxy_command("show info")
    assert "Name: HAProxy" in info
    servers = cluster.haproxy_servers()
    for node in cluster.nodes:
        assert ("http", node) in servers
        assert ("smtp", node) in servers
    cluster.wait_for(lambda: all(servers_up(cluster, "http", n) for n in cluster.nodes),
                     what="every node UP in HAProxy's http backend")
    seen = set()
    for _ in range(4 * len(cluster.nodes)):
        status, body = cluster.healthz()
        assert status == 200
        seen.add(body["node"])
    assert seen <= set(cluster.nodes) and seen


def servers_up(cluster, backend, node):
    return cluster.haproxy_servers()[(backend, node)]["status"].startswith("UP")


def test_kill_and_start_node(cluster):
    node = cluster.nodes[-1]
    before = cluster.node_pid(node)
    assert before and Path(f"/proc/{before}").exists()
    try:
        cluster.kill(node)
        assert cluster.node_pid(node) is None
        status_proc = cluster.dev_cluster("status", check=False)
        assert status_proc.returncode != 0
        assert re.search(rf"^{node}\s+stopped", status_proc.stdout, re.M), status_proc.stdout
        with pytest.raises(OSError):
            socket.create_connection((cluster.node_ip(node), cluster.port("HTTP")), timeout=2).close()
        cluster.wait_for(lambda: not servers_up(cluster, "http", node), timeout=15,
                         what=f"HAProxy to mark {node} DOWN")
        # the others keep serving through HAProxy
        status, body = cluster.healthz()
        assert status == 200 and body["node"] != node
    finally:
        cluster.start(node)
    after = cluster.node_pid(node)
    assert after and after != before
    status, body = cluster.healthz(node)
    assert status == 200 and body["node"] == node
    cluster.wait_for(lambda: servers_up(cluster, "http", node), timeout=15,
                     what=f"HAProxy to mark {node} UP again")


def test_up_again_is_a_no_op(cluster):
    pids = {n: cluster.node_pid(n) for n in cluster.nodes}
    args = ["up", "--nodes", str(len(cluster.nodes))]
    proc = cluster.dev_cluster(*args)
    assert "already running" in proc.stderr
    assert {n: cluster.node_pid(n) for n in cluster.nodes} == pids
