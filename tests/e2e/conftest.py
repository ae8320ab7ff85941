"""End-to-end fixtures: a real local cluster (deploy/dev-cluster) shared by the session.

Environment:
  SVCPKG_BIN          node binary (default: dev-cluster runs `swift build`)
  SVCPKG_TEST_NODES   number of nodes (default 3)
  SVCPKG_TEST_STATE   use this state dir instead of a fresh temporary one; the
                      cluster is then left running after the tests
  SVCPKG_TEST_KEEP=1  leave the cluster running after the tests

Use the `cluster` fixture; see the Cluster class for its helpers.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEV_CLUSTER = REPO / "deploy" / "dev-cluster"
LOG_TAIL_LINES = 60

_LDAP_ENV = dict(os.environ, LDAPNOINIT="1")


def parse_env_file(path: Path) -> dict[str, str]:
    """Parses the KEY='value' lines dev-cluster writes (shell quoting)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, rest = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=value: {line!r}")
        words = shlex.split(rest)
        env[key] = words[0] if words else ""
    return env


def parse_ldif(text: str) -> list[dict]:
    """Parses unwrapped `ldapsearch -LLL -o ldif_wrap=no` output into
    [{"dn": str, "attrs": {name_lower: [values]}}]."""
    import base64

    entries = []
    for block in text.strip().split("\n\n"):
        dn = None
        attrs: dict[str, list[str]] = {}
        for line in block.splitlines():
            if not line or line.startswith("#"):
                continue
            if ":: " in line:
                name, value = line.split(":: ", 1)
                value = base64.b64decode(value).decode("utf-8", "replace")
            elif ": " in line:
                name, value = line.split(": ", 1)
            else:
                name, value = line.rstrip(":"), ""
            if name.lower() == "dn":
                dn = value
            else:
                attrs.setdefault(name.lower(), []).append(value)
        if dn is not None:
            entries.append({"dn": dn, "attrs": attrs})
    return entries


class Cluster:
    """A running dev cluster, described by its cluster.env."""

    def __init__(self, state: Path, env: dict[str, str]):
        self.state = state
        self.env = env

    # ---- plain values
    def __getitem__(self, key: str) -> str:
        return self.env[key]

    @property
    def nodes(self) -> list[str]:
        return self.env["NODES"].split()

    def node_ip(self, node: str) -> str:
        return self.env[f"NODE_{node}_IP"]

    def bootstrap(self, node: str) -> str:
        return self.env[f"NODE_{node}_BOOTSTRAP"]

    def port(self, service: str) -> int:
        """port("smtp") / port("SMTP") / port("SMTP_PORT") -> int"""
        key = service.upper()
        if not key.endswith("_PORT"):
            key += "_PORT"
        return int(self.env[key])

    @property
    def ports(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.env.items() if k.endswith("_PORT")}

    @property
    def ldap_uri(self) -> str:
        return self.env["LDAP_URI"]

    @property
    def base(self) -> str:
        return self.env["LDAP_BASE"]

    @property
    def admin_dn(self) -> str:
        return self.env["LDAP_ADMIN_DN"]

    @property
    def admin_pw(self) -> str:
        return self.env["LDAP_ADMIN_PW"]

    @property
    def shared_root(self) -> Path:
        return Path(self.env["SHARED_ROOT"])

    @property
    def domain(self) -> str:
        return self.env["DOMAIN"]

    @property
    def users(self) -> dict[str, str]:
        """{address: password} of the demo users."""
        return dict(pair.split(":", 1) for pair in self.env["USERS"].split())

    @property
    def bin(self) -> str:
        return self.env["SVCPKG_BIN"]

    @property
    def haproxy_socket(self) -> str:
        return self.env["HAPROXY_SOCKET"]

    def user_dn(self, uid: str) -> str:
        return f"uid={uid},ou=people,{self.base}"

    # ---- LDAP (ldap-utils command line tools)
    def _bind_args(self, bind_dn, password):
        if bind_dn is None:
            bind_dn, password = self.admin_dn, self.admin_pw
        if bind_dn == "":
            return ["-x"]  # anonymous
        return ["-x", "-D", bind_dn, "-w", password]

    def ldapsearch(self, filter="(objectClass=*)", attrs=(), base=None, scope="sub",
                   bind_dn=None, password=None, check=True) -> list[dict]:
        """Search (as admin unless bind_dn/password given; bind_dn="" = anonymous).
        Returns parse_ldif() entries; "No such object" gives []."""
        cmd = ["ldapsearch", "-LLL", "-o", "ldif_wrap=no", "-H", self.ldap_uri,
               *self._bind_args(bind_dn, password), "-b", base or self.base, "-s", scope,
               filter, *attrs]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_LDAP_ENV, timeout=30)
        if proc.returncode == 32:
            return []
        if check and proc.returncode != 0:
            raise AssertionError(f"ldapsearch failed ({proc.returncode}): {proc.stderr.strip()}")
        return parse_ldif(proc.stdout)

    def ldapmodify(self, ldif_text: str, bind_dn=None, password=None, check=True,
                   add=False) -> subprocess.CompletedProcess:
        """Applies LDIF with `ldapmodify -x -D admin -w pw` (or the given bind)."""
        cmd = ["ldapmodify", "-H", self.ldap_uri, *self._bind_args(bind_dn, password)]
        if add:
            cmd.append("-a")
        proc = subprocess.run(cmd, input=ldif_text, capture_output=True, text=True,
                              env=_LDAP_ENV, timeout=30)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"ldapmodify failed ({proc.returncode}): {proc.stderr.strip()}\n{ldif_text}")
        return proc

    def ldapwhoami(self, bind_dn: str, password: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ldapwhoami", "-H", self.ldap_uri, "-x", "-D", bind_dn, "-w", password],
                              capture_output=True, text=True, env=_LDAP_ENV, timeout=30)

    # ---- the node binary and dev-cluster
    def run_svcpkg(self, args, node: str | None = None, check=False, timeout=60,
                   **kwargs) -> subprocess.CompletedProcess:
        """Runs `$SVCPKG_BIN <args> --bootstrap <node's bootstrap.conf>`."""
        node = node or self.nodes[0]
        cmd = [self.bin, *args, "--bootstrap", self.bootstrap(node)]
        return subprocess.run(cmd, capture_output=True, text=True, check=check,
                              timeout=timeout, **kwargs)

    def dev_cluster(self, *args, check=True, timeout=300) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(DEV_CLUSTER), *args, "--state", str(self.state)],
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"dev-cluster {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc

    def kill(self, node: str) -> None:
        """kill -9 the node (dev-cluster kill)."""
        self.dev_cluster("kill", node)

    def start(self, node: str) -> None:
        """Starts a stopped node again and waits for its /healthz (dev-cluster start)."""
        self.dev_cluster("start", node)

    def node_pid(self, node: str) -> int | None:
        path = self.state / "nodes" / node / "pid"
        try:
            return int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def node_log(self, node: str) -> str:
        path = self.state / "nodes" / node / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ---- HTTP and HAProxy
    def http_get(self, url: str, timeout=5) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def healthz(self, node: str | None = None) -> tuple[int, dict | None]:
        """GET /healthz of a node (or through HAProxy when node is None)."""
        host = self.node_ip(node) if node else "127.0.0.1"
        status, body = self.http_get(f"http://{host}:{self.port('HTTP')}/healthz")
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None

    def haproxy_command(self, command: str, timeout=5) -> str:
        """Sends one command to HAProxy's admin socket ("show stat", "disable server ...")."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(self.haproxy_socket)
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def haproxy_servers(self) -> dict[tuple[str, str], dict[str, str]]:
        """{(backend, server): stat row} from `show stat`."""
        lines = self.haproxy_command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = {}
        for line in lines[1:]:
            fields = line.split(",")
            if len(fields) < 2 or fields[1] in ("FRONTEND", "BACKEND"):
                continue
            rows[(fields[0], fields[1])] = dict(zip(header, fields))
        return rows

    def wait_for(self, predicate, timeout=10.0, interval=0.2, what="condition"):
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)

    def log_tails(self, lines=LOG_TAIL_LINES) -> str:
        parts = []
        logs = sorted((self.state / "nodes").glob("*/log")) + [self.state / "slapd" / "log",
                                                               self.state / "haproxy" / "log"]
        for path in logs:
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"----- {path} (last {len(text)} lines) -----\n" + "\n".join(text))
        return "\n".join(parts)


_session_state: dict = {"cluster": None, "failed": False}


def _run_dev_cluster(args, timeout):
    return subprocess.run([str(DEV_CLUSTER), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Cluster:
    fixed_state = os.environ.get("SVCPKG_TEST_STATE")
    state = Path(fixed_state) if fixed_state else tmp_path_factory.mktemp("cluster")
    keep = bool(fixed_state) or os.environ.get("SVCPKG_TEST_KEEP") == "1"
    nodes = os.environ.get("SVCPKG_TEST_NODES", "3")
    args = ["up", "--nodes", nodes, "--state", str(state)]
    if os.environ.get("SVCPKG_BIN"):
        args += ["--bin", os.environ["SVCPKG_BIN"]]
    # Generous: without SVCPKG_BIN, `up` runs `swift build` first.
    proc = _run_dev_cluster(args, timeout=1800)
    if proc.returncode != 0:
        _run_dev_cluster(["down", "--state", str(state)], timeout=120)
        pytest.fail(f"deploy/dev-cluster {' '.join(args)} failed ({proc.returncode}):\n"
                    f"{proc.stdout}{proc.stderr}", pytrace=False)
    c = Cluster(state, parse_env_file(state / "cluster.env"))
    _session_state["cluster"] = c
    try:
        yield c
    finally:
        if _session_state["failed"]:
            _session_state["log_dump"] = c.log_tails()
        if not keep:
            down = _run_dev_cluster(["down", "--state", str(state)], timeout=120)
            if down.returncode != 0:
                print(f"dev-cluster down failed:\n{down.stdout}{down.stderr}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and "cluster" in getattr(item, "fixturenames", ()):
        _session_state["failed"] = True
        c = _session_state.get("cluster")
        if c is not None:
            report.sections.append(("dev cluster logs", f"state dir: {c.state}\n" + c.log_tails(40)))


def pytest_terminal_summary(terminalreporter):
    dump = _session_state.get("log_dump")
    if dump:
        terminalreporter.write_sep("=", "dev cluster logs at teardown (tests failed)")
        terminalreporter.write_line(dump)
