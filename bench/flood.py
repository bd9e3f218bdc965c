"""Floods of reads against a real server, and what they do to health checks and moves.

A data directory is filled with ``--finished`` finished games and 199 games in progress (as
``bench/startup.py`` writes them: real events of random games, 60 plies each); then a real
server (``python -m app``, analysis off) starts on it, and the bench adds through the API a
long game (``--long-plies`` half-moves, relayed by the operator) and the games a probing
player moves in (90 minutes each, so the clock never matters). Each mix then runs for
``--seconds`` (after one second of connecting), ``--runs`` times:

- ``idle``: no flood (the probes alone, the floor);
- ``list``: 200 connections reading ``GET /api/games`` pages (the first page, filtered by
  status, and pages deeper in the history by ``cursor``), each sending its next request as
  soon as the answer is in;
- ``game``: 2,000 connections reading ``GET /api/games/{id}`` of the long game;
- ``pgn``: 200 connections reading PGN: the long game's, and 50 others';
- ``anon``: 1,000 connections from 25 client addresses (127.0.1.x), reading games, lists
  and PGN without a token; once on a server without the per-address limit
  (``GM_ANON_REQUESTS_PER_S=0``) and once (``anon-limited``) with its default (20 a second,
  bursts of 60), where most of them are answered 429;
- ``mix``: 100 list readers, 1,000 long-game readers, 100 PGN readers and 300 anonymous
  clients from 10 addresses at once.

During each run one connection asks ``GET /healthz`` every 10 ms, and one player moves in
a game of its own every 50 ms (``POST /api/games/{id}/moves`` with its token; each move is
acknowledged once durably written; a fresh game every 80 half-moves), each waiting for the
answer before the next one: their p50 and p99 are the figures; the goal is a p99 under
50 ms in every mix. Beside them: the server's CPU, its event-loop lag probe (from
``/metrics``) and how long its loop thread waited for a CPU while runnable (from
``/proc/<pid>/schedstat``: on a shared machine, the share of the delays that is not the
server's own). The flood's own answers (per second, by status) are counted too. The flood
clients run in ``--procs`` processes at ``nice`` 19, so that the server and the probes (at
the bench's own priority) get the CPU first, as they would with the clients on other
machines (at ``nice`` 0 the clients of 2,000 connections take most of it); every client
speaks HTTP/1.1 over raw keep-alive sockets (no client library in the way).

    python bench/flood.py [--runs 3] [--seconds 6] [--only game,mix] [--finished 2000]
        [--long-plies 600] [--procs 2] [--server-env GM_NAME=VALUE] [--json out.json]
        [--profile out.txt] [--nice N]

``--nice`` runs the server and the probes at that priority (negative needs root; on Linux
with autogroups it only orders them against the flood clients of the same session).

``--profile`` also records the server with py-spy (``pip install py-spy``) during the
first run of each mix and appends the functions it spends most time in (every thread's
samples, the heaviest own time first) to the file, with py-spy's raw stacks beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Run as ``python bench/flood.py``, this directory is sys.path[0], and its engine.py would
# shadow the ``engine`` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))
sys.path.append(str(_HERE))

import chess  # noqa: E402
import harness  # noqa: E402
import startup  # noqa: E402

PROBE_CLOCK = {"initial": 5400, "increment": 0}
HEALTH_EVERY_S = 0.010
MOVE_EVERY_S = 0.050
# The probing player moves on to its next game after this many half-moves, so that its
# moves cost what a move in a game of ordinary length costs.
PROBE_PLIES = 80
CONNECT_S = 1.0
FLOOD_NICE = 19


# --- a raw HTTP/1.1 client ---


class Conn:
    """One keep-alive HTTP/1.1 connection to the server, from ``source`` (an address of
    127.0.0.0/8); reconnects when the server closed it."""

    def __init__(self, port: int, source: str = "127.0.0.1") -> None:
        self.port = port
        self.source = source
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        """Open the connection."""
        self.reader, self.writer = await asyncio.open_connection(
            harness.HOST, self.port, local_addr=(self.source, 0), limit=1 << 22
        )

    async def request(
        self, path: str, method: str = "GET", body: bytes = b"", token: str | None = None
    ) -> tuple[int, bytes]:
        """Send one request and read its whole answer: (status, body)."""
        for attempt in (0, 1):
            if self.writer is None:
                await self.connect()
            try:
                return await self._exchange(path, method, body, token)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(
        self, path: str, method: str, body: bytes, token: str | None
    ) -> tuple[int, bytes]:
        assert self.reader is not None
        assert self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {harness.HOST}\r\n"
        if token is not None:
            head += f"Authorization: Bearer {token}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        headers = raw.lower()
        at = headers.find(b"\r\ncontent-length:")
        if at >= 0:
            end = headers.index(b"\r\n", at + 2)
            data = await self.reader.readexactly(int(headers[at + 17 : end]))
        elif b"transfer-encoding: chunked" in headers:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            data = b"".join(parts)
        else:
            raise ValueError("an answer without a length")
        if b"\r\nconnection: close" in headers:
            self.close()
        return status, data

    def close(self) -> None:
        """Drop the connection (the next request opens another)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# --- the floods ---


@dataclass(frozen=True, slots=True)
class Group:
    """``connections`` clients reading ``paths`` in turn (each from its own offset), from
    ``addresses`` client addresses."""

    name: str
    connections: int
    paths: tuple[str, ...]
    addresses: int = 1


@dataclass(slots=True)
class FloodResult:
    """What one flood process saw: answers by group and status, and sampled latencies."""

    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0


def source_address(index: int) -> str:
    """The ``index``-th client address: 127.0.1.1, 127.0.1.2, ... (all are loopback)."""
    return f"127.0.{1 + index // 250}.{1 + index % 250}"


def run_flood(pipe: Connection, port: int, groups: list[Group], share: tuple[int, int]) -> None:
    """A flood process: its ``share`` (index, count) of every group's connections; waits
    for a start time on ``pipe``, floods until the end time, sends back a FloodResult."""
    os.setpriority(os.PRIO_PROCESS, 0, FLOOD_NICE)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_flood(pipe, port, groups, share))


async def _flood(pipe: Connection, port: int, groups: list[Group], share: tuple[int, int]) -> None:
    index, count = share
    result = FloodResult()
    clients: list[tuple[Group, Conn, int]] = []
    for group in groups:
        result.statuses[group.name] = Counter()
        result.latencies_ms[group.name] = []
        for i in range(index, group.connections, count):
            source = source_address(i % group.addresses) if group.addresses > 1 else "127.0.0.1"
            clients.append((group, Conn(port, source), i))
    for start in range(0, len(clients), 100):
        batch = clients[start : start + 100]
        await asyncio.gather(*(conn.connect() for _, conn, _ in batch))
    pipe.send("connected")
    start_at, end_at = pipe.recv()
    await asyncio.sleep(max(0.0, start_at - time.time()))

    async def client(group: Group, conn: Conn, offset: int) -> None:
        rng = random.Random(offset)
        statuses = result.statuses[group.name]
        latencies = result.latencies_ms[group.name]
        turn = rng.randrange(len(group.paths))
        while time.time() < end_at:
            path = group.paths[turn % len(group.paths)]
            turn += 1
            t0 = time.perf_counter()
            try:
                status, _ = await conn.request(path)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                result.errors += 1
                await asyncio.sleep(0.05)
                continue
            statuses[status] += 1
            if rng.random() < 0.1:
                latencies.append((time.perf_counter() - t0) * 1000)

    tasks = [asyncio.create_task(client(g, c, i)) for g, c, i in clients]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*tasks), end_at - time.time() + 5)
    for _, conn, _ in clients:
        conn.close()
    result.statuses = {k: dict(v) for k, v in result.statuses.items()}
    pipe.send(result)


# --- the probes ---


@dataclass(slots=True)
class ProbeGame:
    """A game the probing player moves in, with both players' tokens."""

    id: str
    tokens: dict[str, str]
    board: chess.Board = field(default_factory=chess.Board)


def safe_move(board: chess.Board, rng: random.Random) -> chess.Move | None:
    """A random legal move after which the game goes on (captures avoided while the
    board is full, pawn moves preferred as the 75-move rule nears), or None."""
    moves = list(board.legal_moves)
    rng.shuffle(moves)
    if board.halfmove_clock > 90:
        moves.sort(key=lambda m: board.piece_type_at(m.from_square) != chess.PAWN)
    else:
        moves.sort(key=lambda m: board.is_capture(m))
    for move in moves:
        board.push(move)
        over = board.outcome(claim_draw=False) is not None
        board.pop()
        if not over:
            return move
    return None


async def probe(
    port: int, games: list[ProbeGame], start_at: float, end_at: float
) -> tuple[list[float], list[float]]:
    """Health checks every 10 ms and moves every 50 ms from ``start_at`` to ``end_at``
    (Unix time); their latencies (ms)."""
    rng = random.Random(7)
    health: list[float] = []
    moves: list[float] = []
    await asyncio.sleep(max(0.0, start_at - time.time()))

    async def check() -> None:
        conn = Conn(port)
        while time.time() < end_at:
            t0 = time.perf_counter()
            status, _ = await conn.request("/healthz")
            health.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"/healthz answered {status}")
            await asyncio.sleep(HEALTH_EVERY_S)
        conn.close()

    async def move() -> None:
        conn = Conn(port)
        while time.time() < end_at and games:
            game = games[0]
            choice = safe_move(game.board, rng)
            if choice is None or game.board.ply() >= PROBE_PLIES:
                games.pop(0)
                continue
            side = "white" if game.board.turn == chess.WHITE else "black"
            body = json.dumps({"move": choice.uci(), "ply": game.board.ply()}).encode()
            t0 = time.perf_counter()
            status, text = await conn.request(
                f"/api/games/{game.id}/moves", "POST", body, game.tokens[side]
            )
            moves.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"move {status}: {text[:200]!r}")
            game.board.push(choice)
            await asyncio.sleep(MOVE_EVERY_S)
        conn.close()

    await asyncio.gather(check(), move())
    return health, moves


# --- the server and its games ---


@dataclass(slots=True)
class Seeded:
    """What the bench created: the long game, some other game ids, list cursors, and the
    games the probe moves in."""

    long_game: str
    others: list[str]
    cursors: list[str]
    probes: list[ProbeGame]


def play_long_game(server: harness.AppServer, plies: int) -> str:
    """A game of ``plies`` random half-moves (relayed by the operator); its id."""
    http = server.http
    assert http is not None
    operator = harness.auth(server.operator_token)
    body = {"white": {"name": "Long"}, "black": {"name": "Game"}, "clock": PROBE_CLOCK}
    r = http.post("/api/games", json=body, headers=operator)
    r.raise_for_status()
    game_id: str = r.json()["game"]["id"]
    http.post(f"/api/games/{game_id}/start", headers=operator)
    board = chess.Board()
    rng = random.Random(3)
    for _ in range(plies):
        move = safe_move(board, rng)
        if move is None:
            break
        r = http.post(
            f"/api/games/{game_id}/moves",
            json={"move": move.uci(), "ply": board.ply()},
            headers=operator,
        )
        r.raise_for_status()
        board.push(move)
    return game_id


def seed(server: harness.AppServer, long_plies: int, probe_games: int) -> Seeded:
    """Create the long game and the probe's games; find list cursors and other games."""
    http = server.http
    assert http is not None
    long_game = play_long_game(server, long_plies)
    cursors = []
    page = http.get("/api/games", params={"limit": 100}).json()
    others = [g["id"] for g in page["games"] if g["id"] != long_game][:25]
    while page["next"] is not None and len(cursors) < 20:
        cursors.append(page["next"])
        page = http.get("/api/games", params={"limit": 100, "cursor": page["next"]}).json()
        others += [g["id"] for g in page["games"]][:1]
    probes = []
    operator = harness.auth(server.operator_token)
    for i in range(probe_games):
        body = {"white": {"name": f"Probe {i}"}, "black": {"name": "Other"}, "clock": PROBE_CLOCK}
        r = http.post("/api/games", json=body, headers=operator)
        r.raise_for_status()
        game_id = r.json()["game"]["id"]
        http.post(f"/api/games/{game_id}/start", headers=operator)
        probes.append(ProbeGame(game_id, r.json()["tokens"]))
    return Seeded(long_game, others[:50], cursors, probes)


def mixes(seeded: Seeded) -> dict[str, list[Group]]:
    """The floods by name."""
    game = f"/api/games/{seeded.long_game}"
    lists = (
        "/api/games",
        "/api/games?status=finished&limit=100",
        "/api/games?status=started&limit=100",
        *(f"/api/games?limit=50&cursor={c}" for c in seeded.cursors),
    )
    pgns = (f"{game}/pgn", *(f"/api/games/{g}/pgn" for g in seeded.others))
    anon = (game, *(f"/api/games/{g}" for g in seeded.others), *lists[:3], *pgns[:5])
    return {
        "idle": [],
        "list": [Group("list", 200, lists)],
        "game": [Group("game", 2000, (game,))],
        "pgn": [Group("pgn", 200, pgns)],
        "anon": [Group("anon", 1000, anon, addresses=25)],
        "mix": [
            Group("list", 100, lists),
            Group("game", 1000, (game,)),
            Group("pgn", 100, pgns),
            Group("anon", 300, anon, addresses=10),
        ],
    }


class NicedServer(harness.AppServer):
    """``python -m app`` at ``nice`` (every thread of it: the process starts niced)."""

    def __init__(self, *args: Any, nice: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.nice = nice

    def command(self) -> tuple[list[str], dict[str, str]]:
        """The server's command under ``nice -n``."""
        command, env = super().command()
        return ["nice", "-n", str(self.nice), *command], env


# --- one run ---


@dataclass(slots=True)
class RunResult:
    """One run of one mix."""

    mix: str
    health_ms: list[float]
    move_ms: list[float]
    flood: dict[str, dict[int, int]]
    flood_ms: dict[str, list[float]]
    errors: int
    seconds: float
    server_cpu_s: float
    lag_over_50ms: dict[str, float] = field(default_factory=dict)
    runnable_wait_s: float = math.nan

    def summary(self) -> dict[str, Any]:
        """The run's figures."""
        health, moves = sorted(self.health_ms), sorted(self.move_ms)
        out: dict[str, Any] = {
            "mix": self.mix,
            "health_n": len(health),
            "health_p50": harness.percentile(health, 50),
            "health_p99": harness.percentile(health, 99),
            "move_n": len(moves),
            "move_p50": harness.percentile(moves, 50),
            "move_p99": harness.percentile(moves, 99),
            "errors": self.errors,
            "server_cpu_pct": 100 * self.server_cpu_s / self.seconds,
            "loop_ticks": self.lag_over_50ms.get("ticks", math.nan),
            "loop_late_50ms": self.lag_over_50ms.get("late", math.nan),
            "loop_thread_waiting_for_cpu_pct": 100 * self.runnable_wait_s / self.seconds,
            "gc_passes": [self.lag_over_50ms.get(f"gc{g}_passes", math.nan) for g in (0, 1, 2)],
            "gc_over_20ms_by_generation": [
                self.lag_over_50ms.get(f"gc{g}_over_20ms", math.nan) for g in (0, 1, 2)
            ],
            "gc_over_20ms": sum(
                self.lag_over_50ms.get(f"gc{g}_over_20ms", math.nan) for g in (0, 1, 2)
            ),
        }
        answers = sum(n for statuses in self.flood.values() for n in statuses.values())
        if answers:
            out["server_cpu_ms_per_answer"] = 1000 * self.server_cpu_s / answers
        for name, statuses in self.flood.items():
            ok = sum(n for s, n in statuses.items() if s < 300)
            out[f"{name}_ok_per_s"] = ok / self.seconds
            out[f"{name}_other"] = {s: n for s, n in statuses.items() if s >= 300}
            lat = sorted(self.flood_ms[name])
            out[f"{name}_p50"] = harness.percentile(lat, 50)
        return out


def run_mix(
    server: harness.AppServer,
    name: str,
    groups: list[Group],
    probes: list[ProbeGame],
    seconds: float,
    procs: int,
    profile: Path | None,
) -> RunResult:
    """Start the flood processes, run the probes beside them, collect everything."""
    ctx = multiprocessing.get_context("spawn")
    pipes, workers = [], []
    if groups:
        for i in range(procs):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=run_flood, args=(theirs, server.port, groups, (i, procs)), name=f"flood-{i}"
            )
            proc.start()
            pipes.append(mine)
            workers.append(proc)
        for pipe in pipes:
            if not pipe.poll(120):
                raise RuntimeError("a flood process did not connect in time")
            pipe.recv()
    start_at = time.time() + CONNECT_S
    end_at = start_at + seconds
    for pipe in pipes:
        pipe.send((start_at, end_at))
    spy = None
    if profile is not None:
        spy = start_profile(server.pid, start_at, seconds, profile)
    cpu0 = server.cpu_seconds() or 0.0
    lag0 = loop_lag(server)
    sched0 = schedstat(server.pid)
    health, moves = asyncio.run(probe(server.port, probes, start_at + 0.5, end_at))
    cpu1 = server.cpu_seconds() or 0.0
    lag1 = loop_lag(server)
    sched1 = schedstat(server.pid)
    result = RunResult(name, health, moves, {}, {}, 0, seconds - 0.5, cpu1 - cpu0)
    result.lag_over_50ms = {k: lag1[k] - lag0.get(k, 0) for k in lag1}
    result.runnable_wait_s = sched1[1] - sched0[1]
    for pipe, proc in zip(pipes, workers, strict=True):
        if not pipe.poll(60):
            raise RuntimeError("a flood process did not finish")
        part: FloodResult = pipe.recv()
        proc.join(10)
        result.errors += part.errors
        for group, statuses in part.statuses.items():
            total = result.flood.setdefault(group, {})
            for status, n in statuses.items():
                total[status] = total.get(status, 0) + n
            result.flood_ms.setdefault(group, []).extend(part.latencies_ms[group])
    if spy is not None:
        spy.wait(seconds + 30)
    server.check_running()
    return result


def loop_lag(server: harness.AppServer) -> dict[str, float]:
    """The server's own event-loop lag probe (a timer every 100 ms): how many times it
    ran, and how many of those over 50 ms late."""
    assert server.http is not None
    samples = harness.parse_metrics(server.http.get("/metrics").text)
    count = samples.get("gm_event_loop_lag_seconds_count", 0.0)
    within = samples.get('gm_event_loop_lag_seconds_bucket{le="0.05"}', math.nan)
    out = {"ticks": count, "late": count - within}
    # The collector's passes, and those that stopped the server for over 20 ms.
    for generation in (0, 1, 2):
        label = f'generation="{generation}"'
        passes = samples.get(f"gm_gc_pause_seconds_count{{{label}}}", math.nan)
        short = samples.get(f'gm_gc_pause_seconds_bucket{{{label},le="0.02"}}', math.nan)
        out[f"gc{generation}_passes"] = passes
        out[f"gc{generation}_over_20ms"] = passes - short
    return out


def schedstat(pid: int) -> tuple[float, float]:
    """Seconds the process's main thread (the event loop) has run, and has waited for a
    CPU while runnable, from ``/proc/<pid>/schedstat`` (Linux; NaN elsewhere)."""
    try:
        run_ns, wait_ns, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return math.nan, math.nan
    return int(run_ns) / 1e9, int(wait_ns) / 1e9


def start_profile(pid: int, start_at: float, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """py-spy recording ``pid`` for the flood's duration (raw collapsed stacks to ``out``)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    time.sleep(max(0.0, start_at - time.time()))
    command = [spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200"]
    command += ["-f", "raw", "-o", str(out), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_functions(raw: Path, limit: int = 25) -> list[tuple[str, float, float]]:
    """From py-spy's collapsed stacks: (function, own %, total %) of the event loop's
    thread, the heaviest own time first."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames:
            continue
        n = int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    return [(f, 100 * n / samples, 100 * total[f] / samples) for f, n in own.most_common(limit)]


# --- the whole bench ---


def median_of(runs: list[dict[str, Any]], key: str) -> float:
    """The median of ``key`` over runs (NaN when absent)."""
    values = [r[key] for r in runs if key in r and not math.isnan(r[key])]
    return statistics.median(values) if values else math.nan


def print_table(
    results: dict[str, list[dict[str, Any]]], pooled: dict[str, tuple[list[float], list[float]]]
) -> None:
    """One row per mix: the probes' percentiles over all runs' samples together (a p99
    of one run's 70-odd moves would be its worst move), the rest medians over runs."""
    print(
        "| mix | health p50 / p99 ms | move p50 / p99 ms | samples (health, moves) "
        "| flood answers/s (median) | flood p50 ms | other statuses | server CPU % "
        "| server CPU ms per answer | loop waiting for a CPU % | GC passes over 20 ms |"
    )
    print("|---|---:|---:|---:|---|---|---|---:|---:|---:|---:|")
    for mix, runs in results.items():
        groups = sorted({k[:-9] for r in runs for k in r if k.endswith("_ok_per_s")})
        rates = ", ".join(f"{g} {median_of(runs, g + '_ok_per_s'):.0f}" for g in groups) or "-"
        lats = ", ".join(f"{g} {median_of(runs, g + '_p50'):.0f}" for g in groups) or "-"
        other: Counter[str] = Counter()
        for r in runs:
            for g in groups:
                for s, n in r.get(g + "_other", {}).items():
                    other[f"{s}"] += n
        others = ", ".join(f"{s}: {n}" for s, n in sorted(other.items())) or "-"
        health, moves = (sorted(samples) for samples in pooled[mix])
        pct = harness.percentile
        gc_long = sum(r.get("gc_over_20ms", 0) for r in runs)
        print(
            f"| {mix} | {pct(health, 50):.1f} / {pct(health, 99):.1f} "
            f"| {pct(moves, 50):.1f} / {pct(moves, 99):.1f} "
            f"| {len(health)}, {len(moves)} "
            f"| {rates} | {lats} | {others} | {median_of(runs, 'server_cpu_pct'):.0f} "
            f"| {median_of(runs, 'server_cpu_ms_per_answer'):.2f} "
            f"| {median_of(runs, 'loop_thread_waiting_for_cpu_pct'):.0f} | {gc_long:.0f} |"
        )


def main() -> None:
    """Fill a store, start the server, seed it, run every mix ``--runs`` times, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--only", default="idle,list,game,pgn,anon,anon-limited,mix")
    parser.add_argument("--finished", type=int, default=2000)
    parser.add_argument("--long-plies", type=int, default=600)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--server-env", action="append", default=[])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--nice", type=int, default=0)
    args = parser.parse_args()
    # The probes run at the server's priority (below 0 needs root).
    os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    wanted = args.only.split(",")
    extra = dict(item.split("=", 1) for item in args.server_env)
    env = {
        "GM_ANALYSIS": "0",
        # Admission limits (where the server has them) would refuse a flood from one address.
        "GM_MAX_CONNECTIONS_PER_IP": "0",
        "GM_ANON_REQUESTS_PER_S": "0",
        "GM_ANON_QUEUE_PER_ADDRESS": "0",
        **extra,
    }
    results: dict[str, list[dict[str, Any]]] = {}
    pooled: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data"
        startup.fill(data / "grandmaster.sqlite3", args.finished, 199, 60)
        limited = [m for m in wanted if m == "anon-limited"]
        plain = [m for m in wanted if m != "anon-limited"]
        seeded = None
        for names, overrides in ((plain, {}), (limited, {"GM_ANON_REQUESTS_PER_S": "20"})):
            if not names:
                continue
            server = NicedServer(data, root / "server.log", {**env, **overrides}, nice=args.nice)
            with server:
                if seeded is None:
                    seeded = seed(server, args.long_plies, 60)
                    moves = len(server.http.get(f"/api/games/{seeded.long_game}").json()["moves"])  # type: ignore[union-attr]
                    print(f"long game: {moves} plies; {len(seeded.others)} other games read")
                table = mixes(seeded)
                for name in names:
                    groups = table["anon" if name == "anon-limited" else name]
                    for run in range(args.runs):
                        profile = None
                        if args.profile is not None and run == 0:
                            profile = root / f"profile-{name}.txt"
                        result = run_mix(
                            server, name, groups, seeded.probes, args.seconds, args.procs, profile
                        )
                        summary = result.summary()
                        results.setdefault(name, []).append(summary)
                        health, moves = pooled.setdefault(name, ([], []))
                        health.extend(result.health_ms)
                        moves.extend(result.move_ms)
                        print(json.dumps(summary), flush=True)
                        if profile is not None and profile.exists():
                            report_profile(args.profile, name, profile)
                            shutil.copy(profile, args.profile.with_suffix(f".{name}.raw"))
    print_table(results, pooled)
    print(harness.machine())
    if args.json is not None:
        args.json.write_text(json.dumps({"results": results, "machine": harness.machine()}))


def report_profile(out: Path, mix: str, raw: Path) -> None:
    """Append the heaviest functions of ``mix`` to ``out``."""
    with out.open("a") as f:
        f.write(f"== {mix}\n")
        for function, own, total in top_functions(raw):
            f.write(f"{own:5.1f}% own {total:5.1f}% total  {function}\n")


if __name__ == "__main__":
    main()
