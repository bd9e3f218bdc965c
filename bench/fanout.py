"""Benchmark live fan-out: how long until N WebSocket spectators of one game have each move.

Run from the repository's virtualenv:
``python bench/fanout.py [--sizes 1000,5000,10000] [--moves 30] [--stuck 0,0.1]
[--clients-procs 4] [--only grandmaster|reference] [--server-env GM_NAME=VALUE]
[--edges 0,1,2] [--json out.json]``.

``--edges`` runs Grandmaster once per value: 0 is the single process, N a core with N edge
processes on its port (``GM_EDGES``, an embedded redis-server as the bus), the spectators
spread over the edges by the kernel; "server CPU" is then the core's own, "children" that
of the edges and Redis (or of the analysis pool: pass ``--server-env GM_ANALYSIS=0``).

For each size N and each never-reading fraction, the script runs two servers in turn, each in
its own fresh process on 127.0.0.1: Grandmaster (``python -m app`` with its default settings, a
temporary data directory, ``GM_MAX_SPECTATORS`` above N and any ``--server-env``) and the
reference, ``bench/reference_broadcast.py``, a bare ``websockets`` server that writes each move
with ``broadcast()`` (one write per client, the cost floor). N spectators, of which
``round(N * fraction)`` never read, are spread over ``--clients-procs`` client processes. Each
client process is one ``epoll`` loop over raw non-blocking sockets: it does the WebSocket
handshake itself, parses the unmasked server frames, answers pings with masked pongs, sends
nothing else, and stamps every message with ``time.monotonic_ns()`` when ``recv()`` returns it
(CLOCK_MONOTONIC is one clock for every process of the machine). Never-reading clients shrink
``SO_RCVBUF`` before connecting, finish the handshake and never read again.

Once every reading client has its snapshot, the driver waits ``--settle`` seconds and plays
``--warmup`` + ``--moves`` legal moves ``--spacing`` seconds apart (a seeded random game, the
same for both servers):

- Grandmaster: ``POST /api/games/{id}/moves`` as operator. The server publishes to spectators
  before it writes the HTTP response, so t0 (the move is acknowledged) is the instant the
  driver has the 200. The instant the POST was sent is the trigger.
- Reference: a command on a control WebSocket (sent at the trigger); the server broadcasts and
  answers with its own stamps, and t0 is the server's stamp taken as soon as ``broadcast()``
  returned.

Per measured move (warm-up moves are not timed):

- "all reached": from t0 until the last reading client had the move. The table gives its
  median and p99 over moves (nearest rank: with 30 moves the p99 is the worst move) and the
  median over every (client, move) pair ("per client"). Both servers finish writing to every
  socket before t0, so this only measures how far the clients' reading trails the server's
  writing: about 0, or negative, whenever the clients keep up.
- "from trigger": from the trigger until the last reading client had the move: what a
  spectator waits after the move is sent, the fan-out included.
- "first-to-last": from the first to the last reading client having the move, i.e. how long
  the server's write loop took as the clients saw it.
- "trigger-to-ack": Grandmaster's POST round trip (durable write and fan-out included), or
  the reference's control round trip.

"Missed" counts, over reading clients, the events with a ``seq`` after the client's first
snapshot, up to the last move, that never arrived (a later snapshot does not excuse a gap);
Grandmaster also fans out events other than moves (evaluations, clock checkpoints) and they
count too. Server RSS per spectator is VmRSS after the warm-up moves minus VmRSS once the game
exists and before anyone connects, over the N connections. Server CPU is that of the server
process; the CPU of its worker processes (Grandmaster's analysis pool) is noted separately.
With about 250 bytes per event, a run's events fit in the kernel socket buffers of a
never-reading client, so within a run the server never sees it as slow: the never-reading
runs measure what such sockets cost while they are still buffered by the kernel.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import errno
import json
import math
import multiprocessing
import os
import random
import re
import resource
import select
import signal
import socket
import struct
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import chess
import harness
import httpx
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

REFERENCE_SCRIPT = Path(__file__).resolve().parent / "reference_broadcast.py"
SERVERS = ("reference", "grandmaster")

# Client sockets close with RST (linger 0): no TIME_WAIT, so back-to-back runs of 10,000
# connections do not exhaust the ephemeral ports.
_LINGER_ABORT = struct.pack("ii", 1, 0)
_STUCK_RCVBUF = 4096
# Below glibc's mmap threshold: a bigger recv() buffer costs an mmap/munmap per call.
_RECV_BYTES = 16 * 1024
_SEQ = re.compile(rb'"seq":(\d+)')
_SNAPSHOT_PREFIX = b'{"type":"snapshot"'
_WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="

_CONNECTING, _HANDSHAKE, _OPEN, _STUCK, _CLOSED = range(5)


# --- client processes --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FleetPlan:
    """What one client process does: ``reading`` + ``stuck`` spectators on ``path``.

    ``connect_timeout_s`` bounds the connection phase (what is not open by then counts as
    a failure); ``lifetime_s`` bounds the whole process.
    """

    port: int
    path: str
    reading: int
    stuck: int
    connect_timeout_s: float
    lifetime_s: float
    max_in_flight: int = 64
    seed: int = 0


class _Conn:
    __slots__ = ("buf", "close_code", "is_stuck", "snapshot_seq", "snapshots", "sock", "state")

    def __init__(self, sock: socket.socket, is_stuck: bool) -> None:
        self.sock = sock
        self.is_stuck = is_stuck
        self.state = _CONNECTING
        self.buf = b""
        self.snapshot_seq: int | None = None
        self.snapshots = 0
        self.close_code: int | None = None


class _Reader(_Conn):
    __slots__ = ("times",)

    def __init__(self, sock: socket.socket, is_stuck: bool) -> None:
        super().__init__(sock, is_stuck)
        self.times: dict[int, int] = {}


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (payload at most 125 bytes, as for control frames)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload[:125]))
    return bytes((0x80 | opcode, 0x80 | len(masked))) + mask + masked


class _Fleet:
    """The spectators of one client process and its ``epoll`` loop."""

    def __init__(self, plan: FleetPlan) -> None:
        self.plan = plan
        self.addr = (harness.HOST, plan.port)
        self.request = (
            f"GET {plan.path} HTTP/1.1\r\nHost: {harness.HOST}:{plan.port}\r\n"
            "Upgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {_WS_KEY}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        kinds = [False] * plan.reading + [True] * plan.stuck
        random.Random(plan.seed).shuffle(kinds)
        self.to_open = kinds
        self.epoll = select.epoll()
        self.live: dict[int, _Conn] = {}
        self.readers: list[_Reader] = []
        self.stuck: list[_Conn] = []
        self.in_flight = 0
        self.awaiting_snapshot = 0
        self.failures: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()

    def run(self, pipe: Connection) -> None:
        """Connect, report, keep reading until the driver says ``finish`` (or time is up)."""
        start = time.monotonic()
        connect_deadline = start + self.plan.connect_timeout_s
        end = start + self.plan.lifetime_s
        self.epoll.register(pipe.fileno(), select.EPOLLIN)
        reported = False
        cpu_connected = 0.0
        while time.monotonic() < end:
            if not reported:
                self._fill()
                settled = not self.to_open and self.in_flight == 0 and not self.awaiting_snapshot
                if settled or time.monotonic() > connect_deadline:
                    self._give_up_pending()
                    cpu_connected = time.process_time()
                    pipe.send(("connected", self._connect_report(time.monotonic() - start)))
                    reported = True
            for fd, _ in self.epoll.poll(0.05 if not reported else 0.25, 8192):
                conn = self.live.get(fd)
                if conn is None:
                    if fd == pipe.fileno():
                        try:
                            command = pipe.recv()
                        except EOFError:
                            return
                        if command[0] == "finish":
                            result = self._result(*command[1:])
                            result["client_cpu_s"] = time.process_time() - cpu_connected
                            pipe.send(("result", result))
                            return
                    continue
                state = conn.state
                if state == _OPEN:
                    self._read(conn)  # type: ignore[arg-type]
                elif state == _CONNECTING:
                    self._on_connected(conn)
                elif state == _HANDSHAKE:
                    self._on_handshake(conn)

    def close(self) -> None:
        """Close every socket (with RST) and the epoll object."""
        for conn in self.readers + self.stuck + list(self.live.values()):
            with contextlib.suppress(OSError):
                conn.sock.close()
        self.epoll.close()

    # connecting

    def _fill(self) -> None:
        while self.to_open and self.in_flight < self.plan.max_in_flight:
            self._open(self.to_open.pop())

    def _open(self, is_stuck: bool) -> None:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:
            self.failures[f"socket: {errno.errorcode.get(exc.errno or 0, exc)}"] += 1
            return
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ABORT)
        if is_stuck:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _STUCK_RCVBUF)
        code = sock.connect_ex(self.addr)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.failures[f"connect: {errno.errorcode.get(code, code)}"] += 1
            return
        conn: _Conn = _Conn(sock, True) if is_stuck else _Reader(sock, False)
        self.live[sock.fileno()] = conn
        self.epoll.register(sock.fileno(), select.EPOLLOUT)
        self.in_flight += 1

    def _on_connected(self, conn: _Conn) -> None:
        code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._fail(conn, f"connect: {errno.errorcode.get(code, code)}")
            return
        try:
            conn.sock.send(self.request)
        except OSError as exc:
            self._fail(conn, f"send: {errno.errorcode.get(exc.errno or 0, exc)}")
            return
        conn.state = _HANDSHAKE
        self.epoll.modify(conn.sock.fileno(), select.EPOLLIN)

    def _on_handshake(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(_RECV_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail(conn, f"handshake: {errno.errorcode.get(exc.errno or 0, exc)}")
            return
        now = time.monotonic_ns()
        if not data:
            self._fail(conn, "handshake: eof")
            return
        conn.buf += data
        end = conn.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(conn.buf) > 16384:
                self._fail(conn, "handshake: oversized response")
            return
        status = conn.buf.split(b"\r\n", 1)[0].decode(errors="replace")
        if not status.startswith("HTTP/1.1 101"):
            self._fail(conn, f"handshake: {status[9:40]}")
            return
        rest = conn.buf[end + 4 :]
        conn.buf = b""
        self.in_flight -= 1
        if conn.is_stuck:
            # Never read again: the kernel buffers fill and the server sees a slow client.
            conn.state = _STUCK
            self.epoll.unregister(conn.sock.fileno())
            del self.live[conn.sock.fileno()]
            self.stuck.append(conn)
            return
        assert isinstance(conn, _Reader)
        conn.state = _OPEN
        self.readers.append(conn)
        self.awaiting_snapshot += 1
        if rest:
            conn.buf = self._frames(conn, rest, now)

    def _fail(self, conn: _Conn, reason: str) -> None:
        self.failures[reason] += 1
        self.in_flight -= 1
        self._forget(conn)

    def _give_up_pending(self) -> None:
        for conn in list(self.live.values()):
            if conn.state in (_CONNECTING, _HANDSHAKE):
                self._fail(conn, "timeout")
        if self.to_open:
            self.failures["not attempted: timeout"] += len(self.to_open)
            self.to_open.clear()

    def _forget(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if self.live.get(fd) is conn:
            del self.live[fd]
            self.epoll.unregister(fd)
        if isinstance(conn, _Reader) and conn.state == _OPEN and conn.snapshot_seq is None:
            self.awaiting_snapshot -= 1
        conn.state = _CLOSED
        conn.sock.close()

    # reading

    def _read(self, conn: _Reader) -> None:
        try:
            data = conn.sock.recv(_RECV_BYTES)
        except BlockingIOError:
            return
        except OSError as exc:
            self._drop(conn, errno.errorcode.get(exc.errno or 0, str(exc)))
            return
        now = time.monotonic_ns()
        if not data:
            self._drop(conn, "eof")
            return
        if conn.buf:
            data = conn.buf + data
        conn.buf = self._frames(conn, data, now)

    def _drop(self, conn: _Conn, reason: str) -> None:
        self.drops[reason] += 1
        self._forget(conn)

    def _frames(self, conn: _Reader, data: bytes, now: int) -> bytes:
        """Handle every complete frame of ``data``; returns the incomplete rest."""
        pos, size = 0, len(data)
        while size - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            end = pos + head + length
            if end > size:
                break
            opcode, start = b0 & 0x0F, pos + head
            pos = end
            if opcode == 0x1:
                if data.startswith(_SNAPSHOT_PREFIX, start):
                    self._snapshot(conn, data[start:end])
                    continue
                match = _SEQ.search(data, start, end)
                if match is not None:
                    conn.times.setdefault(int(match.group(1)), now)
            elif opcode == 0x9:
                with contextlib.suppress(OSError):
                    conn.sock.send(_client_frame(0xA, data[start:end]))
            elif opcode == 0x8:
                payload = data[start:end]
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                conn.close_code = code
                with contextlib.suppress(OSError):
                    conn.sock.send(_client_frame(0x8, payload[:2]))
                self._drop(conn, f"close {code}")
                return b""
        return data[pos:]

    def _snapshot(self, conn: _Reader, payload: bytes) -> None:
        seq = int(json.loads(payload)["game"]["seq"])
        conn.snapshots += 1
        if conn.snapshot_seq is None:
            conn.snapshot_seq = seq
            self.awaiting_snapshot -= 1

    # reporting

    def _connect_report(self, elapsed_s: float) -> dict[str, Any]:
        return {
            "reading": sum(1 for c in self.readers if c.state == _OPEN),
            "stuck": len(self.stuck),
            "failures": dict(self.failures),
            "without_snapshot": self.awaiting_snapshot,
            "connect_s": elapsed_s,
        }

    def _result(self, base_seq: int, last_seq: int, move_seqs: Sequence[int]) -> dict[str, Any]:
        times = array.array("q")
        missed = clients_missing = resnapshots = 0
        for conn in self.readers:
            got = conn.times
            times.extend(got.get(seq, 0) for seq in move_seqs)
            first = conn.snapshot_seq if conn.snapshot_seq is not None else base_seq
            lost = sum(1 for seq in range(first + 1, last_seq + 1) if seq not in got)
            missed += lost
            clients_missing += lost > 0
            resnapshots += max(0, conn.snapshots - 1)
        return {
            "times": times.tobytes(),
            "readers": len(self.readers),
            "missed": missed,
            "clients_missing": clients_missing,
            "resnapshots": resnapshots,
            "drops": dict(self.drops),
            "failures": dict(self.failures),
        }


def run_fleet(pipe: Connection, plan: FleetPlan) -> None:
    """Entry point of a client process: run one :class:`_Fleet` until told to finish.

    Sends ``("connected", report)`` once the connection phase is over and
    ``("result", result)`` after ``("finish", base_seq, last_seq, move_seqs)``. Ctrl-C is
    left to the driver, which terminates this process.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fleet = _Fleet(plan)
    try:
        fleet.run(pipe)
    finally:
        fleet.close()


class Fleet:
    """The driver's handle on the client processes of one run (a context manager).

    Leaving terminates every process that is still alive (then kills it).
    """

    def __init__(self, plans: Sequence[FleetPlan]) -> None:
        self.plans = plans
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self.pipes: list[Connection] = []

    def __enter__(self) -> Fleet:
        ctx = multiprocessing.get_context("spawn")
        try:
            for i, plan in enumerate(self.plans):
                ours, theirs = ctx.Pipe()
                proc = ctx.Process(target=run_fleet, args=(theirs, plan), name=f"fanout-{i}")
                proc.start()
                theirs.close()
                self.procs.append(proc)
                self.pipes.append(ours)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        for pipe in self.pipes:
            pipe.close()
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)

    def collect(self, kind: str, timeout_s: float) -> list[dict[str, Any]]:
        """One ``kind`` message from every process; RuntimeError when one dies or is late."""
        deadline = time.monotonic() + timeout_s
        replies = []
        for pipe, proc in zip(self.pipes, self.procs, strict=True):
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"{proc.name}: no {kind!r} report in {timeout_s:.0f} s")
            try:
                tag, body = pipe.recv()
            except EOFError:
                raise RuntimeError(f"{proc.name} exited ({proc.exitcode})") from None
            if tag != kind:
                raise RuntimeError(f"{proc.name}: expected {kind!r}, got {tag!r}")
            replies.append(body)
        return replies

    def finish(self, base_seq: int, last_seq: int, move_seqs: list[int]) -> None:
        """Tell every process to stop reading and report."""
        for pipe in self.pipes:
            pipe.send(("finish", base_seq, last_seq, move_seqs))


# --- servers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stamp:
    """One move: its ``seq`` and the monotonic instants around it (ns).

    ``sent_ns``: the driver sent the trigger; ``t0_ns``: acknowledged (Grandmaster: the driver
    has the 200; reference: the server's stamp once ``broadcast()`` returned); ``ack_ns``:
    the driver has the answer; ``write_ns``: how long ``broadcast()`` took (reference only).
    """

    seq: int
    sent_ns: int
    t0_ns: int
    ack_ns: int
    write_ns: int | None = None


def _tree_cpu_s(pid: int) -> tuple[float, float]:
    """User + system CPU seconds of process ``pid`` and of its live descendants.

    Descendants are the server's worker processes (Grandmaster's analysis pool).
    """
    tree = harness.process_tree(pid)
    own = tree[pid].cpu_s if pid in tree else 0.0
    return own, sum(info.cpu_s for child, info in tree.items() if child != pid)


class GrandmasterServer(harness.AppServer):
    """``python -m app`` with a fresh data directory; moves are POSTed as operator.

    Runs in its own session with ``GM_LOG_LEVEL=warning``, a spectator cap above
    ``spectators`` and then ``extra_env``.
    """

    name = "grandmaster"

    def __init__(
        self, spectators: int, work_dir: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        env = {
            "GM_MAX_SPECTATORS": str(spectators + 1000),
            "GM_LOG_LEVEL": "warning",
            **(extra_env or {}),
        }
        log_path = work_dir / f"{self.name}.log"
        super().__init__(work_dir / "gm-data", log_path, env, new_session=True)
        self.game = ""
        self.path = ""

    def _client(self) -> httpx.Client:
        assert self.http is not None
        return self.http

    def _auth(self) -> dict[str, str]:
        return harness.auth(self.operator_token)

    def prepare(self) -> int:
        """Create and start a game (the start event is seq 1)."""
        body = {
            "white": {"name": "Fan", "rating": 2700},
            "black": {"name": "Out"},
            "clock": harness.CLOCK,
        }
        r = self._client().post("/api/games", json=body, headers=self._auth())
        if r.status_code != 201:
            raise RuntimeError(f"create game: {r.status_code} {r.text[:200]}")
        self.game = r.json()["game"]["id"]
        r = self._client().post(f"/api/games/{self.game}/start", headers=self._auth())
        if r.status_code != 200:
            raise RuntimeError(f"start game: {r.status_code} {r.text[:200]}")
        self.path = f"/ws/games/{self.game}"
        return int(r.json()["seq"])

    def spectators(self) -> int:
        """``spectators`` of ``GET /api/games/{id}``."""
        r = self._client().get(f"/api/games/{self.game}")
        return int(r.json()["spectators"])

    def move(self, ply: int, uci: str, san: str, fen: str) -> Stamp:
        """``POST /api/games/{id}/moves``; t0 is the arrival of the 200."""
        url = f"/api/games/{self.game}/moves"
        body = {"move": uci, "ply": ply}
        sent = time.monotonic_ns()
        r = self._client().post(url, json=body, headers=self._auth())
        acked = time.monotonic_ns()
        if r.status_code != 200:
            raise RuntimeError(f"move {uci}: {r.status_code} {r.text[:200]}")
        return Stamp(int(r.json()["seq"]), sent, acked, acked)


class ReferenceServer(harness.ServerProcess):
    """``bench/reference_broadcast.py``; moves are commands on its control WebSocket.

    Runs in its own session; ``spectators`` and ``extra_env`` are not used (the signature
    is Grandmaster's).
    """

    name = "reference"

    def __init__(
        self, spectators: int, work_dir: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        super().__init__(work_dir / f"{self.name}.log", new_session=True)
        self.control: ClientConnection | None = None
        self._stack = contextlib.ExitStack()
        self.path = "/spectate"

    def command(self) -> tuple[list[str], dict[str, str]]:
        """The reference script on this port."""
        return [sys.executable, str(REFERENCE_SCRIPT), "--port", str(self.port)], dict(os.environ)

    def wait_ready(self, timeout_s: float) -> None:
        """Open the control connection, retrying until the server listens."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_running()
            try:
                url = f"ws://{harness.HOST}:{self.port}/control"
                connection = ws_connect(url, compression=None, open_timeout=2)
                self.control = self._stack.enter_context(connection)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"reference not listening in {timeout_s} s:\n{self.log_tail()}")

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()
        super().__exit__(*exc_info)

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.control is not None
        self.control.send(json.dumps(command))
        reply: dict[str, Any] = json.loads(self.control.recv(timeout=30))
        return reply

    def prepare(self) -> int:
        """Nothing to create; snapshots carry seq 0."""
        return 0

    def spectators(self) -> int:
        """The server's own count."""
        return int(self._ask({"cmd": "count"})["spectators"])

    def move(self, ply: int, uci: str, san: str, fen: str) -> Stamp:
        """Trigger one broadcast; t0 is the server's stamp after ``broadcast()``."""
        sent = time.monotonic_ns()
        reply = self._ask({"cmd": "move", "ply": ply, "uci": uci, "san": san, "fen": fen})
        acked = time.monotonic_ns()
        write_ns = reply["post_ns"] - reply["pre_ns"]
        return Stamp(int(reply["seq"]), sent, int(reply["post_ns"]), acked, write_ns)


# The servers under test: the same constructor, ``name``, ``port``, ``path`` and methods.
Contender = GrandmasterServer | ReferenceServer


# --- the driver ----------------------------------------------------------------------------


@dataclass(slots=True)
class RunResult:
    """The figures of one (server, N, never-reading) run; times in ms, memory in KiB."""

    server: str
    spectators: int
    never_reading: int
    edges: int = 0
    connected_reading: int = 0
    connected_stuck: int = 0
    connect_failures: dict[str, int] = field(default_factory=dict)
    connect_s: float = math.nan
    moves_measured: int = 0
    all_reached_median_ms: float = math.nan
    all_reached_p99_ms: float = math.nan
    per_client_median_ms: float = math.nan
    per_client_p99_ms: float = math.nan
    from_trigger_median_ms: float = math.nan
    from_trigger_p99_ms: float = math.nan
    spread_median_ms: float = math.nan
    ack_median_ms: float = math.nan
    write_median_ms: float | None = None
    missed: int = 0
    clients_missing: int = 0
    resnapshots: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    rss_end_kib: int = 0
    rss_kib_per_spectator: float = math.nan
    server_cpu_ms_per_move: float = math.nan
    workers_cpu_ms_per_move: float = math.nan
    # Events with a seq besides the moves (evaluations, clock checkpoints), up to the last move.
    other_events: int = 0
    client_cpu_s: float = math.nan
    per_move_all_reached_ms: list[float] = field(default_factory=list)
    per_move_from_trigger_ms: list[float] = field(default_factory=list)
    per_move_ack_ms: list[float] = field(default_factory=list)
    per_move_spread_ms: list[float] = field(default_factory=list)
    # Per client process: when its last reading client had each move (ms after t0).
    per_process_all_reached_ms: list[list[float]] = field(default_factory=list)
    error: str | None = None


def scripted_line(plies: int, seed: int) -> list[tuple[str, str, str]]:
    """A seeded random legal line of ``plies`` moves that does not end the game.

    Each item is ``(uci, san, fen after the move)``.
    """
    rng = random.Random(seed)
    for _ in range(1000):
        board = chess.Board()
        line: list[tuple[str, str, str]] = []
        while len(line) < plies and not board.is_game_over(claim_draw=True):
            move = rng.choice(list(board.legal_moves))
            san = board.san(move)
            board.push(move)
            line.append((move.uci(), san, board.fen()))
        if len(line) == plies and not board.is_game_over(claim_draw=True):
            return line
    raise RuntimeError("no line found")


def raise_file_limit() -> int:
    """Lift the soft open-file limit to the hard one (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return int(target)


def split(total: int, parts: int) -> list[int]:
    """``total`` spread over ``parts`` as evenly as possible."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_one(
    server_cls: type[Contender],
    n: int,
    fraction: float,
    line: list[tuple[str, str, str]],
    args: argparse.Namespace,
    work_dir: Path,
    edges: int = 0,
) -> RunResult:
    """One run: a fresh server, N spectators, the moves, the figures.

    With ``edges``, Grandmaster is a core with that many edge processes on its port
    (``GM_EDGES``): the spectators are theirs, and the core's own CPU is the server's.
    Failures (server refusing, clients not reporting) end the run with ``error`` set.
    """
    stuck = round(n * fraction)
    name = server_cls.name if not edges else f"{server_cls.name}+{edges} edges"
    result = RunResult(name, n, stuck)
    result.edges = edges
    connect_timeout_s = 30.0 + n / 200
    lifetime_s = connect_timeout_s + len(line) * args.spacing + 90.0
    shares = zip(
        split(n - stuck, args.clients_procs), split(stuck, args.clients_procs), strict=True
    )
    try:
        extra_env = dict(args.server_env) if server_cls is GrandmasterServer else {}
        if edges:
            extra_env["GM_EDGES"] = str(edges)
        with server_cls(n, work_dir, extra_env) as server:
            base_seq = server.prepare()
            print(f"    {server.name} pid {server.pid}, port {server.port}", flush=True)
            result.rss_before_kib = server.rss_kib()
            plans = [
                FleetPlan(server.port, server.path, r, s, connect_timeout_s, lifetime_s, seed=i)
                for i, (r, s) in enumerate(shares)
            ]
            with Fleet(plans) as fleet:
                reports = fleet.collect("connected", connect_timeout_s + 30)
                _note_connect(result, reports)
                print(
                    f"    connected {result.connected_reading}+{result.connected_stuck}"
                    f" in {result.connect_s:.1f} s; moving",
                    flush=True,
                )
                _wait_count(server, result.connected_reading + result.connected_stuck)
                # Let once-a-second housekeeping (spectator counts) pass before the moves.
                time.sleep(args.settle)
                stamps, cpu0, cpu1 = _play(server, result, line, args)
                time.sleep(args.grace)
                fleet.finish(base_seq, stamps[-1].seq, [s.seq for s in stamps])
                replies = fleet.collect("result", 60)
            _summarise(result, stamps[args.warmup :], replies, len(stamps), args.warmup)
            result.server_cpu_ms_per_move = (cpu1[0] - cpu0[0]) * 1000 / args.moves
            result.workers_cpu_ms_per_move = (cpu1[1] - cpu0[1]) * 1000 / args.moves
            result.other_events = stamps[-1].seq - base_seq - len(stamps)
    except Exception as exc:  # one failed run must not lose the others' figures
        result.error = f"{type(exc).__name__}: {exc}"[:500]
    return result


def _note_connect(result: RunResult, reports: list[dict[str, Any]]) -> None:
    failures: Counter[str] = Counter()
    for report in reports:
        failures.update(report["failures"])
    result.connected_reading = sum(r["reading"] for r in reports)
    result.connected_stuck = sum(r["stuck"] for r in reports)
    result.connect_failures = dict(failures)
    result.connect_s = max(r["connect_s"] for r in reports)


def _wait_count(server: Contender, connected: int) -> None:
    """Until the server counts every connected spectator (at most 15 s)."""
    deadline = time.monotonic() + 15
    while server.spectators() < connected and time.monotonic() < deadline:
        time.sleep(0.1)


def _play(
    server: Contender,
    result: RunResult,
    line: list[tuple[str, str, str]],
    args: argparse.Namespace,
) -> tuple[list[Stamp], tuple[float, float], tuple[float, float]]:
    """Play ``line`` at the configured spacing; RSS after the warm-up, CPU over the rest."""
    stamps = []
    begin = time.monotonic()
    cpu0 = _tree_cpu_s(server.pid)
    for ply, (uci, san, fen) in enumerate(line):
        if ply == max(args.warmup, 1):
            result.rss_after_kib = server.rss_kib()
        if ply == args.warmup:
            cpu0 = _tree_cpu_s(server.pid)
        time.sleep(max(0.0, begin + ply * args.spacing - time.monotonic()))
        stamps.append(server.move(ply, uci, san, fen))
    time.sleep(args.spacing)
    cpu1 = _tree_cpu_s(server.pid)
    result.rss_end_kib = server.rss_kib()
    if not result.rss_after_kib:
        result.rss_after_kib = result.rss_end_kib
    return stamps, cpu0, cpu1


def _summarise(
    result: RunResult,
    measured: list[Stamp],
    replies: list[dict[str, Any]],
    stride: int,
    first: int,
) -> None:
    """Fill the timings, losses and memory of ``result`` from the client processes' arrays."""
    columns: list[list[int]] = [[] for _ in measured]
    drops: Counter[str] = Counter()
    for reply in replies:
        times = array.array("q")
        times.frombytes(reply["times"])
        latest = []
        for j, stamp in enumerate(measured):
            column = [t for t in times[first + j :: stride] if t]
            columns[j].extend(column)
            latest.append(round((max(column) - stamp.t0_ns) * 1e-6, 2) if column else math.nan)
        result.per_process_all_reached_ms.append(latest)
        result.missed += reply["missed"]
        result.clients_missing += reply["clients_missing"]
        result.resnapshots += reply["resnapshots"]
        drops.update(reply["drops"])
    result.drops = dict(drops)
    result.client_cpu_s = sum(r["client_cpu_s"] for r in replies)
    result.moves_measured = len(measured)
    ms = 1e-6
    spans = [(min(col), max(col), s) for col, s in zip(columns, measured, strict=True) if col]
    result.per_move_all_reached_ms = [round((last - s.t0_ns) * ms, 2) for _, last, s in spans]
    result.per_move_from_trigger_ms = [round((last - s.sent_ns) * ms, 2) for _, last, s in spans]
    result.per_move_spread_ms = [round((last - first) * ms, 2) for first, last, _ in spans]
    result.per_move_ack_ms = [round((s.ack_ns - s.sent_ns) * ms, 2) for s in measured]
    all_reached = sorted(result.per_move_all_reached_ms)
    from_trigger = sorted(result.per_move_from_trigger_ms)
    per_client = sorted(
        (t - s.t0_ns) * ms for col, s in zip(columns, measured, strict=True) for t in col
    )
    result.all_reached_median_ms = harness.percentile(all_reached, 50)
    result.all_reached_p99_ms = harness.percentile(all_reached, 99)
    result.per_client_median_ms = harness.percentile(per_client, 50)
    result.per_client_p99_ms = harness.percentile(per_client, 99)
    result.from_trigger_median_ms = harness.percentile(from_trigger, 50)
    result.from_trigger_p99_ms = harness.percentile(from_trigger, 99)
    result.spread_median_ms = harness.percentile(sorted(result.per_move_spread_ms), 50)
    result.ack_median_ms = harness.percentile(sorted(result.per_move_ack_ms), 50)
    writes = sorted(s.write_ns * ms for s in measured if s.write_ns is not None)
    result.write_median_ms = harness.percentile(writes, 50) if writes else None
    connected = result.connected_reading + result.connected_stuck
    if connected:
        result.rss_kib_per_spectator = (result.rss_after_kib - result.rss_before_kib) / connected


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _ratio(ours: float, reference: float) -> str:
    if math.isnan(ours) or math.isnan(reference):
        return "-"
    if reference < 1.0:
        return "n/a (reference < 1 ms)"
    if ours <= 0:
        return "n/a (all reached before t0)"
    return f"{ours / reference:.2f}x"


_COLUMNS = (
    "server",
    "spectators",
    "never-reading",
    "connected (reading+stuck)",
    "all-reached median ms",
    "all-reached p99 ms",
    "per-client median ms",
    "from trigger median ms",
    "from trigger p99 ms",
    "first-to-last median ms",
    "trigger-to-ack median ms",
    "missed",
    "RSS KiB/spectator",
    "server CPU ms/move",
    "children CPU ms/move",
    "CPU us/spectator-message",
)


def _plain_ratio(ours: float, base: float) -> str:
    if math.isnan(ours) or math.isnan(base) or base <= 0:
        return "-"
    return f"{ours / base:.2f}x"


def _per_message_us(r: RunResult) -> float:
    """CPU of the whole server (core, edges, Redis) per move and spectator, in us."""
    if not r.connected_reading:
        return math.nan
    return (r.server_cpu_ms_per_move + r.workers_cpu_ms_per_move) * 1000 / r.connected_reading


def table(results: list[RunResult]) -> str:
    """The markdown table (one row per run), the Grandmaster/reference ratios and notes."""
    rows = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for r in results:
        cells = [
            r.server,
            str(r.spectators),
            str(r.never_reading),
            f"{r.connected_reading}+{r.connected_stuck}",
            _fmt(r.all_reached_median_ms),
            _fmt(r.all_reached_p99_ms),
            _fmt(r.per_client_median_ms),
            _fmt(r.from_trigger_median_ms),
            _fmt(r.from_trigger_p99_ms),
            _fmt(r.spread_median_ms),
            _fmt(r.ack_median_ms),
            str(r.missed),
            _fmt(r.rss_kib_per_spectator),
            _fmt(r.server_cpu_ms_per_move),
            _fmt(r.workers_cpu_ms_per_move),
            _fmt(_per_message_us(r), 2),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    lines = ["\n".join(rows), ""]
    by_key = {(r.server, r.spectators, r.never_reading): r for r in results}
    for r in results:
        ref = by_key.get(("reference", r.spectators, r.never_reading))
        if r.server != "grandmaster" or ref is None:
            continue
        lines.append(
            f"Grandmaster/broadcast at N={r.spectators}, never-reading={r.never_reading}: "
            f"all-reached median {_ratio(r.all_reached_median_ms, ref.all_reached_median_ms)}, "
            f"p99 {_ratio(r.all_reached_p99_ms, ref.all_reached_p99_ms)}; "
            f"from trigger median {_ratio(r.from_trigger_median_ms, ref.from_trigger_median_ms)}, "
            f"p99 {_ratio(r.from_trigger_p99_ms, ref.from_trigger_p99_ms)}; "
            f"first-to-last median {_ratio(r.spread_median_ms, ref.spread_median_ms)}"
        )
    single = {(r.spectators, r.never_reading): r for r in results if r.server == "grandmaster"}
    for r in results:
        base = single.get((r.spectators, r.never_reading))
        if not r.edges or base is None:
            continue
        lines.append(
            f"{r.server}/single process at N={r.spectators}: core CPU per move "
            f"{_fmt(r.server_cpu_ms_per_move)} vs {_fmt(base.server_cpu_ms_per_move)} ms; "
            f"CPU per spectator-message {_plain_ratio(_per_message_us(r), _per_message_us(base))}"
        )
    lines.append("")
    for r in results:
        notes = []
        if r.error:
            notes.append(f"error: {r.error}")
        if r.connect_failures:
            notes.append(f"connect failures {r.connect_failures}")
        if r.clients_missing:
            notes.append(f"{r.clients_missing} reading clients missed messages")
        if r.drops:
            notes.append(f"closed during run {r.drops}")
        if r.resnapshots:
            notes.append(f"{r.resnapshots} extra snapshots")
        if r.write_median_ms is not None:
            notes.append(f"broadcast() itself {r.write_median_ms:.1f} ms")
        if r.other_events:
            notes.append(f"{r.other_events} events besides the moves (evals, clock checkpoints)")
        if r.workers_cpu_ms_per_move >= 1:
            notes.append(f"worker processes CPU {r.workers_cpu_ms_per_move:.0f} ms/move")
        notes.append(f"connect {r.connect_s:.1f} s, client CPU {r.client_cpu_s:.1f} s")
        lines.append(f"- {r.server} N={r.spectators} stuck={r.never_reading}: " + "; ".join(notes))
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000", help="spectator counts N")
    parser.add_argument("--moves", type=int, default=30, help="measured moves per run")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured moves first")
    parser.add_argument("--spacing", type=float, default=0.4, help="seconds between moves")
    parser.add_argument(
        "--settle", type=float, default=1.5, help="seconds between connecting and moving"
    )
    parser.add_argument("--grace", type=float, default=2.0, help="seconds after the last move")
    parser.add_argument("--stuck", default="0,0.1", help="never-reading fractions of N")
    parser.add_argument("--clients-procs", type=int, default=4, help="client processes")
    parser.add_argument("--only", choices=SERVERS, help="run one server only")
    parser.add_argument("--seed", type=int, default=1, help="seed of the scripted game")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="GM_NAME=VALUE",
        help="extra setting for Grandmaster (repeatable), e.g. GM_ANALYSIS=0",
    )
    parser.add_argument(
        "--edges",
        default="0",
        help="Grandmaster's edge processes per run (0: the single process), e.g. 0,1,2",
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    args.edges = [int(e) for e in args.edges.split(",") if e]
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.stuck = [float(s) for s in args.stuck.split(",") if s]
    pairs = [item.partition("=") for item in args.server_env]
    if any(not name.startswith("GM_") or not sep for name, sep, _ in pairs):
        parser.error("--server-env takes GM_NAME=VALUE")
    args.server_env = {name: value for name, _, value in pairs}
    if args.moves < 1 or args.warmup < 0 or args.clients_procs < 1:
        parser.error("--moves and --clients-procs must be positive, --warmup not negative")
    return args


def runs(args: argparse.Namespace) -> Iterator[tuple[type[Contender], int, float, int]]:
    """Every (server, N, fraction, edges) in order: the servers back to back per setting,
    Grandmaster once per ``--edges`` value."""
    classes: list[type[Contender]] = [ReferenceServer, GrandmasterServer]
    for n in args.sizes:
        for fraction in args.stuck:
            for cls in classes:
                if args.only not in (None, cls.name):
                    continue
                for edges in args.edges if cls is GrandmasterServer else [0]:
                    yield cls, n, fraction, edges


def main(argv: Sequence[str] | None = None) -> int:
    """Run the matrix, print the table; 1 when a run failed."""
    args = parse_args(argv)
    limit = raise_file_limit()
    needed = max(args.sizes) + 200
    if limit < needed:
        print(f"warning: open-file limit {limit} < {needed}: large runs will fail", file=sys.stderr)
    line = scripted_line(args.warmup + args.moves, args.seed)
    results: list[RunResult] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gm-fanout-") as tmp:
        for i, (cls, n, fraction, edges) in enumerate(runs(args)):
            work_dir = Path(tmp) / f"run{i}"
            work_dir.mkdir()
            print(
                f"[{time.monotonic() - began:6.0f} s] {cls.name} N={n} stuck={fraction}"
                + (f" edges={edges}" if edges else ""),
                flush=True,
            )
            result = run_one(cls, n, fraction, line, args, work_dir, edges)
            results.append(result)
            print(
                f"    all-reached median {_fmt(result.all_reached_median_ms)} ms, "
                f"p99 {_fmt(result.all_reached_p99_ms)} ms, missed {result.missed}, "
                f"RSS {_fmt(result.rss_kib_per_spectator)} KiB/spectator"
                + (f", error: {result.error}" if result.error else ""),
                flush=True,
            )
    wall_s = time.monotonic() - began
    print()
    print(table(results))
    print(
        f"\nwall time {wall_s:.0f} s, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"revision {harness.code_version()}, Grandmaster settings {args.server_env or 'default'}"
    )
    if args.json is not None:
        payload = {
            "wall_s": wall_s,
            "revision": harness.code_version(),
            "argv": sys.argv[1:],
            "cpus": os.cpu_count(),
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 1 if any(r.error for r in results) else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    # SIGTERM and SIGINT (even where a shell started us with SIGINT ignored) unwind the
    # runs, so every server and client process is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
