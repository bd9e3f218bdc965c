"""Shared fixtures: a real server on a real socket, in-process or as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import Settings, create_app
from app.factory import end_streams
from app.server import Server, uvicorn_config
from workers.store import Store

ROOT = Path(__file__).resolve().parent.parent


def examples(normal: int) -> int:
    """Hypothesis examples for a fuzz test: ``normal`` in the usual suite, 20 times as many
    with ``GM_TEST_FULL=1`` (``make test-full``)."""
    return normal * 20 if os.environ.get("GM_TEST_FULL") == "1" else normal


def free_socket() -> socket.socket:
    """A listening TCP socket on 127.0.0.1 with a port chosen by the kernel."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


# Ports for subprocesses that bind their own, below Linux's ephemeral range (32768-60999),
# from which bind() to port 0 and outgoing connections take theirs: one of these is never
# taken by the machine's own traffic in the moment before its server binds it. Each
# pytest-xdist process has a block of its own (gw0 to gw5; a single process has the
# first), so the two test processes of `make test` never hand out the same port.
_PORT_BLOCK = 2000
_PORTS_FROM = 20000
_BLOCKS = (32768 - _PORTS_FROM) // _PORT_BLOCK
_next_ports: Iterator[int] | None = None


def _own_ports() -> Iterator[int]:
    """This test process's ports, round and round, from a point set by its pid."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    first = _PORTS_FROM + index % _BLOCKS * _PORT_BLOCK
    ports = range(first, first + _PORT_BLOCK)
    start = os.getpid() % _PORT_BLOCK
    return itertools.cycle([*ports[start:], *ports[:start]])


def free_port() -> int:
    """A port that is free now and that nothing but the caller will take: for subprocesses
    that bind it themselves (see `_own_ports`)."""
    global _next_ports
    if _next_ports is None:
        _next_ports = _own_ports()
    for _ in range(_PORT_BLOCK):
        port = next(_next_ports)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use, or left in TIME_WAIT by an earlier server
            return port
    raise RuntimeError(f"none of this test process's {_PORT_BLOCK} ports is free")


class FakeTime:
    """A monotonic millisecond clock that tests move by hand."""

    def __init__(self, start_ms: int = 1_000_000) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


@dataclass
class LiveServer:
    """An app served by uvicorn on the test's event loop."""

    url: str
    operator_token: str
    data_dir: Path
    app: object
    client: httpx.AsyncClient

    def auth(self, token: str | None = None) -> dict[str, str]:
        """Headers carrying ``token`` (the operator's by default)."""
        return {"Authorization": f"Bearer {token or self.operator_token}"}

    async def create_game(self, **overrides: object) -> tuple[str, dict[str, str]]:
        """Create a game as operator; returns its id and the player tokens."""
        body: dict[str, object] = {
            "white": {"name": "White", "rating": 2700},
            "black": {"name": "Black", "rating": 2650},
            "clock": {"initial": 300, "increment": 2},
        }
        body.update(overrides)
        r = await self.client.post("/api/games", json=body, headers=self.auth())
        assert r.status_code == 201, r.text
        data = r.json()
        return data["game"]["id"], data["tokens"]

    async def started_game(self, **overrides: object) -> tuple[str, dict[str, str]]:
        """Create and start a game."""
        game_id, tokens = await self.create_game(**overrides)
        r = await self.client.post(f"/api/games/{game_id}/start", headers=self.auth())
        assert r.status_code == 200, r.text
        return game_id, tokens


@contextlib.asynccontextmanager
async def serve(
    data_dir: Path,
    *,
    now_ms: Callable[[], int] | None = None,
    store: Store | None = None,
    uvicorn_overrides: dict[str, Any] | None = None,
    **settings_overrides: Any,
) -> AsyncIterator[LiveServer]:
    """Run the real app under uvicorn on a kernel-chosen port until the block exits."""
    settings_overrides.setdefault("analysis", False)
    # Tests poll the server far faster than any person; the limit has its own test.
    settings_overrides.setdefault("anon_requests_per_s", 0)
    # Nor on connections per address (tests open many from 127.0.0.1; the caps have theirs).
    settings_overrides.setdefault("max_connections_per_ip", 0)
    settings = Settings(
        data_dir=data_dir, operator_token="operator-secret-token", **settings_overrides
    )
    kwargs: dict[str, object] = {}
    if now_ms is not None:
        kwargs["now_ms"] = now_ms
    if store is not None:
        kwargs["store"] = store
    app = create_app(settings, **kwargs)  # type: ignore[arg-type]
    sock = free_socket()
    config = uvicorn_config(app, settings, log_level="warning", **(uvicorn_overrides or {}))
    server = Server(config, on_stop=lambda: end_streams(app))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        try:
            yield LiveServer(url, "operator-secret-token", data_dir, app, client)
        finally:
            server.should_exit = True
            await task
            sock.close()


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """A real server with real clocks, fresh data directory."""
    async with serve(tmp_path / "data") as server:
        yield server


@pytest.fixture
def fake_time() -> FakeTime:
    """A hand-driven clock for game clocks."""
    return FakeTime()


@pytest.fixture
async def live_fake_time(tmp_path: Path, fake_time: FakeTime) -> AsyncIterator[LiveServer]:
    """A real server whose game clocks follow ``fake_time``."""
    async with serve(tmp_path / "data", now_ms=fake_time) as server:
        yield server


@dataclass
class ServerProcess:
    """``python -m app`` in a subprocess; ``kill()`` is a real SIGKILL."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_offset: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where the server's stderr (its log) goes; a file, so a chatty server never blocks."""
        return self.data_dir.parent / "server.log"

    def log_since(self, offset: int) -> str:
        """What the server logged after byte ``offset`` of its log."""
        with self.log_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def start(self, timeout_s: float = 30.0) -> None:
        """Start and wait until ``/healthz`` answers 200."""
        self.spawn()
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.log_since(self.log_offset)
                raise RuntimeError(f"server exited with {self.proc.returncode}: {err}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError("server did not become healthy")

    def spawn(self) -> None:
        """Start the process and return at once."""
        env = {
            **os.environ,
            "GM_OPERATOR_TOKEN": "operator-secret-token",
            "GM_ANALYSIS": "0",
            "GM_ANON_REQUESTS_PER_S": "0",
            "GM_MAX_CONNECTIONS_PER_IP": "0",
            **self.env,
        }
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    """A not yet started server subprocess with its own data directory."""
    proc = ServerProcess(tmp_path / "data")
    try:
        yield proc
    finally:
        proc.stop()


# Where Debian puts it (``make system-deps`` installs it).
DEBIAN_REDIS_SERVER = "/usr/bin/redis-server"


def redis_server_or_skip() -> str:
    """The redis-server binary: skip the test when it is missing, fail instead on CI."""
    path = shutil.which("redis-server") or shutil.which(DEBIAN_REDIS_SERVER)
    if path is not None:
        return path
    reason = "redis-server is not installed: apt-get install redis-server (make system-deps)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI must install it)")
    pytest.skip(reason)


@dataclass
class RedisServer:
    """A throwaway ``redis-server`` without persistence; ``stop()`` then ``start()`` restarts
    it empty on the same port (``kill()`` is a SIGKILL)."""

    binary: str
    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        """Start and wait until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # ``--save ''`` and no AOF: nothing is written; a restart starts empty.
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 1) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.02)
        raise TimeoutError("redis-server did not answer")

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running redis-server on a free port, stopped after the test."""
    server = RedisServer(redis_server_or_skip(), tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()
