"""Running the real server for a benchmark and reading its figures.

What ``bench/moves.py``, ``bench/lag.py`` and ``bench/fanout.py`` share: a server under test
as a subprocess on 127.0.0.1 (:class:`ServerProcess`; :class:`AppServer` is Grandmaster's own
``python -m app`` with a fresh operator token), the HTTP client and game setup the scenarios
drive it with, the CPU and memory its processes use (from ``/proc``, Linux), its Prometheus
``/metrics``, nearest-rank percentiles, and where and on which code the benchmark ran.

The scripts run as ``python bench/<name>.py``, so this directory is ``sys.path[0]`` and they
``import harness``. Nothing happens at import time.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CLOCK = {"initial": 5400, "increment": 30}
REQUEST_TIMEOUT_S = 30.0

_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)")


# --- the server's process ---


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """A server under test in a subprocess on 127.0.0.1, its output in ``log_path``.

    Subclasses say how to start it (:meth:`command`, on ``self.port``, a free port) and how
    to tell it is up (:meth:`wait_ready`). Use as a context manager: entering starts it in
    the repository's root and waits up to ``startup_timeout_s`` (when that raises, the
    process is stopped and the error re-raised); leaving stops it (SIGTERM, then SIGKILL
    after 15 s). ``new_session``: the process gets its own session, so a Ctrl-C at the
    terminal reaches only the benchmark, which then stops it.
    """

    name = "server"

    def __init__(
        self, log_path: Path, *, startup_timeout_s: float = 30.0, new_session: bool = False
    ) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self.new_session = new_session
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> tuple[list[str], dict[str, str]]:
        """The command line and the whole environment of the process."""
        raise NotImplementedError

    def wait_ready(self, timeout_s: float) -> None:
        """Return once the server answers; RuntimeError when it does not within ``timeout_s``."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        command, env = self.command()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.new_session,
            )
        try:
            self.wait_ready(self.startup_timeout_s)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def pid(self) -> int:
        """The server's process id (it must have been started)."""
        assert self.proc is not None
        return self.proc.pid

    def check_running(self) -> None:
        """Raise RuntimeError, with the end of the log, when the process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log; empty when it cannot be read."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cpu_seconds(self) -> float | None:
        """User + system CPU seconds the server process has used so far; None if unknown."""
        if self.proc is None:
            return None
        return process_cpu_seconds(self.proc.pid)

    def rss_kib(self) -> int:
        """VmRSS of the server process in KiB; RuntimeError when ``/proc`` does not say."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


class AppServer(ServerProcess):
    """``python -m app`` with its own data directory and a fresh operator token.

    ``env`` is added to this process's environment (after ``GM_OPERATOR_TOKEN``). Ready
    means ``/healthz`` answers 200; from then on ``http`` is a synchronous client on the
    server (30 s timeout), closed when the server is stopped.
    """

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        *,
        startup_timeout_s: float = 30.0,
        new_session: bool = False,
    ) -> None:
        super().__init__(log_path, startup_timeout_s=startup_timeout_s, new_session=new_session)
        self.data_dir = data_dir
        self.env = dict(env or {})
        self.operator_token = secrets.token_urlsafe(24)
        self.http: httpx.Client | None = None

    @property
    def url(self) -> str:
        """The base URL."""
        return f"http://{HOST}:{self.port}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        """``python -m app`` on this port and data directory, with the operator token."""
        # Load benchmarks run thousands of clients from one address: no per-address limits,
        # and no cap on connections in all.
        env = {
            **os.environ,
            "GM_OPERATOR_TOKEN": self.operator_token,
            "GM_ANON_REQUESTS_PER_S": "0",
            "GM_MAX_CONNECTIONS_PER_IP": "0",
            "GM_MAX_CONNECTIONS": "0",
            **self.env,
        }
        command = [sys.executable, "-m", "app", "--host", HOST, "--port", str(self.port)]
        return [*command, "--data-dir", str(self.data_dir)], env

    def wait_ready(self, timeout_s: float) -> None:
        """Poll ``/healthz``; RuntimeError when the server exits or is not healthy in time."""
        self.http = httpx.Client(base_url=self.url, timeout=30.0, trust_env=False)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_running()
            with contextlib.suppress(httpx.TransportError):
                if self.http.get("/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(
            f"{self.name} did not become healthy in {timeout_s} s:\n{self.log_tail()}"
        )

    def __exit__(self, *exc_info: object) -> None:
        if self.http is not None:
            self.http.close()
        super().__exit__(*exc_info)


# --- talking to Grandmaster ---


def auth(token: str) -> dict[str, str]:
    """Bearer authorisation headers."""
    return {"Authorization": f"Bearer {token}"}


def async_client(url: str, connections: int) -> httpx.AsyncClient:
    """An HTTP/1.1 client on ``url`` keeping up to ``connections`` connections alive.

    Requests time out after ``REQUEST_TIMEOUT_S``; proxies from the environment are ignored.
    The caller closes it (``async with``).
    """
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout, trust_env=False)


async def start_game(
    client: httpx.AsyncClient, operator_token: str, players: tuple[str, str]
) -> tuple[str, dict[str, str]]:
    """Create and start a game as operator (rated 2700 each, ``CLOCK``).

    ``players`` are White's and Black's names. Returns the game's id and its player tokens;
    raises RuntimeError (with the status and body) when the server refuses either step.
    """
    white, black = players
    body = {
        "white": {"name": white, "rating": 2700},
        "black": {"name": black, "rating": 2700},
        "clock": CLOCK,
    }
    r = await client.post("/api/games", json=body, headers=auth(operator_token))
    if r.status_code != 201:
        raise RuntimeError(f"create {r.status_code}: {r.text[:200]}")
    data = r.json()
    game_id: str = data["game"]["id"]
    r = await client.post(f"/api/games/{game_id}/start", headers=auth(operator_token))
    if r.status_code != 200:
        raise RuntimeError(f"start {r.status_code}: {r.text[:200]}")
    tokens: dict[str, str] = data["tokens"]
    return game_id, tokens


# --- processes and CPU, from /proc (Linux) ---


@dataclass(frozen=True, slots=True)
class ProcInfo:
    """One process of the server's tree: its role, name, nice value and CPU seconds so far."""

    role: str
    comm: str
    nice: int
    cpu_s: float


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds process ``pid`` has used so far; None when it is unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name; utime and stime are fields 14, 15.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> dict[int, ProcInfo]:
    """``root`` and its descendants from ``/proc`` (Linux; empty elsewhere), by pid.

    Roles: ``server`` (the root), ``engine`` (UCI engine processes, named ``stockfish*``),
    ``worker`` (other grandchildren: the analysis processes forked by the forkserver) and
    ``helper`` (the forkserver, the resource tracker and anything else).
    """
    clk = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    stats: dict[int, tuple[str, int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1 : text.rindex(")")]
        # Fields after the command name: state is field 3, so field n is at index n - 3.
        rest = text.rsplit(")", 1)[1].split()
        pid = int(entry.name)
        parents[pid] = int(rest[1])
        stats[pid] = (comm, int(rest[16]), (int(rest[11]) + int(rest[12])) / clk)
    if root not in stats:
        return {}
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    tree: dict[int, ProcInfo] = {}
    frontier = [(root, 0)]
    while frontier:
        pid, depth = frontier.pop()
        comm, nice, cpu_s = stats[pid]
        if depth == 0:
            role = "server"
        elif comm.startswith("stockfish"):
            role = "engine"
        elif depth == 2:
            role = "worker"
        else:
            role = "helper"
        tree[pid] = ProcInfo(role, comm, nice, cpu_s)
        frontier.extend((child, depth + 1) for child in children.get(pid, ()))
    return tree


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot, from ``/proc/stat`` (Linux), else None."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    ticks = [int(x) for x in first[1:9]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


# --- figures ---


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence; NaN when it is empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def parse_metrics(text: str) -> dict[str, float]:
    """Samples of a Prometheus text exposition, keyed by name plus labels as written."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        with contextlib.suppress(ValueError):
            samples[name + (labels or "")] = float(value)
    return samples


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    """``GET /metrics``, parsed; empty when it fails (the figures are then left out)."""
    try:
        r = await client.get("/metrics")
    except httpx.HTTPError:
        return {}
    return parse_metrics(r.text) if r.status_code == 200 else {}


# --- provenance ---


def code_version() -> str:
    """The commit the server runs, ``+dirty`` when its packages have uncommitted changes.

    ``unknown`` when git is missing or this is not a checkout.
    """
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "-uno", "--", "app", "engine", "workers"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine(**at_start: Any) -> dict[str, Any]:
    """Where the benchmark runs, as a JSON-ready dict.

    Usable cores, then ``at_start`` (the caller's load figures) in its order, then the
    server's code version and the Python and platform it runs on.
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "nproc": usable or os.cpu_count(),
        **at_start,
        "code": code_version(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }
