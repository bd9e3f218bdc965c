"""One machine, every core: ``python -m app --edges N`` runs a core and N edge processes
on one listening port.

Every process binds the port with ``SO_REUSEPORT``, so the kernel spreads connections over
them; the core also listens on a private loopback port, where its edges reach it. Without
``GM_BUS`` a ``redis-server`` is started for them on a Unix socket in the data directory
(and stopped with the core). A supervisor thread restarts an edge that dies (its
spectators reconnect to the others with ``since=`` meanwhile) and stops every child when
the core stops.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


def _die_with_parent(parent: int) -> None:
    """In a child of process `parent`, before exec: SIGTERM it when its parent (the core)
    dies, even by SIGKILL, so no edge or redis-server outlives its core (Linux; elsewhere
    nothing)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            # The core died between the fork and the line above: no signal will come.
            os._exit(1)


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``SO_REUSEPORT`` when asked)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


class EmbeddedRedis:
    """A ``redis-server`` on a Unix socket in ``directory``, without persistence."""

    def __init__(self, directory: Path) -> None:
        self.socket_path = directory / "redis.sock"
        self._directory = directory
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The bus URL of this server."""
        return f"unix://{self.socket_path}"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start it and wait until it answers; RuntimeError if it cannot run."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("--edges without GM_BUS needs redis-server (apt-get install it)")
        self._directory.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        # Our own arguments, the binary found on PATH: nothing from a request.
        self._proc = subprocess.Popen(  # noqa: S603
            [
                binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket_path),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=functools.partial(_die_with_parent, os.getpid()),
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}")
            if self.socket_path.exists():
                return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Stop it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()


class EdgeSupervisor:
    """Runs N edge processes for a core and restarts any that dies."""

    def __init__(self, count: int, env: dict[str, str]) -> None:
        self._count = count
        self._env = env
        self._procs: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="gm-edges", daemon=True)
        self.restarts = 0

    def start(self) -> None:
        """Start the edges and the watching thread."""
        self._procs = [self._spawn() for _ in range(self._count)]
        self._thread.start()

    def pids(self) -> list[int]:
        """The edges' process ids now."""
        return [p.pid for p in self._procs]

    def stop(self) -> None:
        """SIGTERM every edge (their spectators get 1012) and wait for them."""
        self._stopping.set()
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "app"],
            env=self._env,
            preexec_fn=functools.partial(_die_with_parent, os.getpid()),
        )

    def _watch(self) -> None:
        # Per edge: quick failures in a row, and when it may be started again (monotonic s).
        failures = [0] * len(self._procs)
        started = [time.monotonic()] * len(self._procs)
        due: list[float | None] = [None] * len(self._procs)
        while not self._stopping.wait(0.5):
            now = time.monotonic()
            for i, proc in enumerate(self._procs):
                if self._stopping.is_set():
                    return
                if due[i] is not None:
                    if now >= due[i]:  # type: ignore[operator]
                        due[i] = None
                        started[i] = now
                        self._procs[i] = self._spawn()
                    continue
                if proc.poll() is None:
                    if now - started[i] > 30:
                        failures[i] = 0
                    continue
                # An edge that keeps dying at start (a bad setting) is retried less and
                # less often, not in a loop: 0.5 s, 1 s, 2 s ... up to a minute.
                failures[i] += 1
                wait_s = min(60.0, 0.5 * 2 ** (failures[i] - 1))
                log.warning(
                    "edge %d exited with %s: starting it again in %.1f s",
                    proc.pid,
                    proc.returncode,
                    wait_s,
                )
                self.restarts += 1
                due[i] = now + wait_s


def edge_environment(
    host: str, port: int, bus: str, core_url: str, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of an edge process of this machine's cluster."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            "GM_ROLE": "edge",
            "GM_BUS": bus,
            "GM_CORE_URL": core_url,
            "GM_HOST": host,
            "GM_PORT": str(port),
            "GM_EDGES": "0",
            "GM_REUSE_PORT": "1",
        }
    )
    return env
