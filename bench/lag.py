"""Benchmark event-loop lag, REST latency and live evaluations while analysis saturates the cores.

Run from the repository's virtualenv:
``python bench/lag.py [--seconds 30] [--games 20] [--interval 2.0] [--rate 20]
[--engine builtin|uci:/usr/games/stockfish|builtin,uci:/usr/games/stockfish] [--modes on,off]
[--json out.json]``.

Each mode runs against its own ``python -m app`` subprocess on 127.0.0.1 with a fresh temporary
data directory: ``on`` with analysis (``GM_ANALYSIS=1``, ``GM_ENGINE`` from ``--engine``, one
worker per core), ``off`` without (``GM_ANALYSIS=0``). ``--engine`` takes a comma-separated
list: one ``on`` run per engine.

Per run the script creates and starts ``--games`` games (operator token, 5400+30 clock, so no
flag falls), opens one spectator WebSocket per game (every message is stamped with
``time.perf_counter()`` as it arrives) and waits for each snapshot. Then each game plays one
move every ``--interval`` seconds, the games' first moves staggered evenly over one interval.
Moves come from seeded random legal games that do not end by rule within the moves played,
are sent as operator with ``ply``, and are awaited one at a time per game. Meanwhile a separate
task sends ``GET /api/games/{id}`` at ``--rate`` requests per second, round-robin over the
games, open loop (each request is sent on schedule, whether or not the previous one answered).

After ``--warmup`` seconds the script measures ``--seconds`` seconds:

- event-loop lag: the server's own histogram ``gm_event_loop_lag_seconds`` (a 100 ms timer,
  so about 10 samples a second), bucket counts scraped from ``/metrics`` at the start and the
  end of the window; quantiles from the difference, by nearest rank, reported as the upper
  bound of the bucket they fall in (``<= 2`` means in (1, 2] ms);
- REST latency of the GETs sent in the window, measured by the client around each request;
- with analysis: for every move acknowledged in the window, the delay from its HTTP 200 to the
  first ``eval`` event for that ply reaching the game's spectator (a position superseded by the
  next move before any evaluation counts as "never"); eval events per game per second; and
  ``gm_analysis_queue_depth`` scraped every second (max, last and least-squares slope);
- CPU from ``/proc``: the server process, its analysis workers (the grandchildren forked by
  the multiprocessing forkserver), UCI engine processes, this client and everything else.

Moves stop at the end of the window; the script then waits one more interval for the last
positions' evaluations. Targets (printed as PASS/MISS): loop lag p99 <= 10 ms and REST p99 <=
20 ms with analysis on; every new position's first evaluation reaches its spectator within
1 s; the analysis queue does not grow. The client shares the machine's cores with the server;
its own event-loop lag is reported so its share of the REST latency can be judged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import chess
import harness
import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

PLAYERS = ("Lag White", "Lag Black")
LAG_METRIC = "gm_event_loop_lag_seconds"
QUEUE_METRIC = "gm_analysis_queue_depth"
ANALYSED_METRIC = "gm_positions_analysed_total"
LOOP_LAG_TARGET_MS = 10.0
REST_TARGET_MS = 20.0
FIRST_EVAL_TARGET_S = 1.0
# Other processes' CPU (percent of one core) above which a run is flagged as disturbed.
DISTURBED_PCT = 25.0

_LE = re.compile(r'le="([^"]+)"')


# --- CPU of the server's processes ---


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU counters at one instant: the server's tree, this process and the machine."""

    at: float
    tree: dict[int, harness.ProcInfo]
    client_s: float
    machine_s: float | None

    @classmethod
    def take(cls, server_pid: int) -> CpuSample:
        """Read the counters now."""
        return cls(
            time.perf_counter(),
            harness.process_tree(server_pid),
            time.process_time(),
            harness.machine_busy_seconds(),
        )


@dataclass(frozen=True, slots=True)
class CpuUsage:
    """CPU over the window in percent of one core (100 = one core busy the whole window)."""

    server_pct: float
    worker_pcts: list[float]
    engine_pct: float
    helper_pct: float
    client_pct: float
    others_pct: float | None
    machine_pct: float | None
    worker_nice: list[int]

    @property
    def workers_pct(self) -> float:
        """All analysis workers together."""
        return sum(self.worker_pcts)


def cpu_usage(a: CpuSample, b: CpuSample) -> CpuUsage:
    """Per role between two samples; a process that started in between counts from zero.

    A process that exited in between (a replaced worker) is missing from both sums.
    """
    elapsed = b.at - a.at
    by_role: dict[str, float] = dict.fromkeys(("server", "worker", "engine", "helper"), 0.0)
    workers: list[float] = []
    nice: list[int] = []
    for pid, info in b.tree.items():
        before = a.tree.get(pid)
        used = 100 * (info.cpu_s - (before.cpu_s if before else 0.0)) / elapsed
        by_role[info.role] += used
        if info.role == "worker":
            workers.append(used)
            nice.append(info.nice)
    client = 100 * (b.client_s - a.client_s) / elapsed
    machine = others = None
    if a.machine_s is not None and b.machine_s is not None:
        machine = 100 * (b.machine_s - a.machine_s) / elapsed
        others = max(0.0, machine - sum(by_role.values()) - client)
    return CpuUsage(
        server_pct=by_role["server"],
        worker_pcts=sorted(workers, reverse=True),
        engine_pct=by_role["engine"],
        helper_pct=by_role["helper"],
        client_pct=client,
        others_pct=others,
        machine_pct=machine,
        worker_nice=nice,
    )


def background_busy_pct(seconds: float = 1.0) -> float | None:
    """Machine CPU busy over ``seconds`` (percent of one core), before our server runs."""
    a = harness.machine_busy_seconds()
    started = time.perf_counter()
    time.sleep(seconds)
    b = harness.machine_busy_seconds()
    if a is None or b is None:
        return None
    return 100 * (b - a) / (time.perf_counter() - started)


# --- metrics ---


def histogram_buckets(samples: dict[str, float], name: str) -> list[tuple[float, float]]:
    """``(upper bound, cumulative count)`` of histogram ``name``, ascending; +Inf last."""
    buckets = []
    prefix = name + "_bucket{"
    for key, value in samples.items():
        if key.startswith(prefix):
            le = _LE.search(key)
            if le is not None:
                buckets.append((float(le.group(1)), value))
    return sorted(buckets)


def bucket_delta(
    before: list[tuple[float, float]], after: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """Cumulative counts observed between two scrapes of the same histogram."""
    old = dict(before)
    return [(le, count - old.get(le, 0.0)) for le, count in after]


def bucket_quantile(cumulative: list[tuple[float, float]], pct: float) -> float:
    """Upper bound of the bucket holding the nearest-rank ``pct`` percentile; NaN if empty."""
    if not cumulative or cumulative[-1][1] <= 0:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * cumulative[-1][1]))
    return next(le for le, count in cumulative if count >= rank)


def bucket_max(cumulative: list[tuple[float, float]]) -> float:
    """Upper bound of the highest non-empty bucket; NaN if empty."""
    if not cumulative or cumulative[-1][1] <= 0:
        return math.nan
    return next(le for le, count in cumulative if count >= cumulative[-1][1])


def bucket_share_above(cumulative: list[tuple[float, float]], bound: float) -> float:
    """Share (0..1) of observations above ``bound`` (which must be a bucket bound)."""
    total = cumulative[-1][1] if cumulative else 0.0
    if total <= 0:
        return math.nan
    below = next((count for le, count in cumulative if le == bound), total)
    return (total - below) / total


# --- the scenario ---


def generate_scripts(count: int, plies: int, seed: int) -> list[tuple[str, ...]]:
    """``count`` seeded random legal games of exactly ``plies`` moves, none ending by rule."""
    rng = random.Random(seed)
    scripts: list[tuple[str, ...]] = []
    while len(scripts) < count:
        board = chess.Board()
        moves: list[str] = []
        while len(moves) < plies and board.outcome(claim_draw=False) is None:
            move = rng.choice(list(board.legal_moves))
            moves.append(move.uci())
            board.push(move)
        if len(moves) == plies and board.outcome(claim_draw=False) is None:
            scripts.append(tuple(moves))
    return scripts


def slope_per_s(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(t, value)`` points, per second; NaN for fewer than two."""
    if len(points) < 2:
        return math.nan
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return math.nan
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / var


@dataclass(slots=True)
class Recorder:
    """Everything the client tasks stamp (``time.perf_counter()``), on the client's loop."""

    window_start: float
    window_end: float
    acked: dict[tuple[str, int], float] = field(default_factory=dict)
    move_latencies_s: list[float] = field(default_factory=list)
    first_eval: dict[tuple[str, int], float] = field(default_factory=dict)
    first_depth: dict[tuple[str, int], int] = field(default_factory=dict)
    deepest: dict[tuple[str, int], int] = field(default_factory=dict)
    eval_arrivals: list[float] = field(default_factory=list)
    messages: list[tuple[float, str, str, int | None]] = field(default_factory=list)
    rest: list[tuple[float, float]] = field(default_factory=list)
    queue: list[tuple[float, float]] = field(default_factory=list)
    client_lag_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def in_window(self, t: float) -> bool:
        """Whether ``t`` falls in the measured window."""
        return self.window_start <= t <= self.window_end


async def spectate(url: str, game: str, rec: Recorder, ready: asyncio.Event) -> None:
    """Follow one game until cancelled: stamp every message, keep each ply's first eval.

    A gap in the game's ``seq`` after the snapshot counts as an error (missed events).
    """
    last_seq: int | None = None
    async with ws_connect(url, compression=None, ping_interval=None, max_size=None) as ws:
        try:
            async for raw in ws:
                arrived = time.perf_counter()
                message = json.loads(raw)
                kind = message.get("type")
                seq = message.get("seq")
                rec.messages.append((arrived, game, str(kind), seq))
                if kind == "snapshot":
                    last_seq = message["game"]["seq"]
                    ready.set()
                elif seq is not None and last_seq is not None:
                    if seq > last_seq + 1:
                        rec.errors["missed events"] += seq - last_seq - 1
                    last_seq = max(last_seq, seq)
                if kind == "eval":
                    key = (game, message["ply"])
                    if key not in rec.first_eval:
                        rec.first_eval[key] = arrived
                        rec.first_depth[key] = message["depth"]
                    rec.deepest[key] = max(rec.deepest.get(key, 0), message["depth"])
                    if rec.in_window(arrived):
                        rec.eval_arrivals.append(arrived)
        except ConnectionClosed as exc:
            rec.errors[f"websocket closed {exc.rcvd.code if exc.rcvd else '?'}"] += 1


async def play(
    client: httpx.AsyncClient,
    token: str,
    game: str,
    script: tuple[str, ...],
    first_at: float,
    interval_s: float,
    rec: Recorder,
) -> None:
    """Send move k of ``script`` at ``first_at + k * interval_s`` until the window ends."""
    for ply, uci in enumerate(script):
        at = first_at + ply * interval_s
        if at > rec.window_end:
            return
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        sent = time.perf_counter()
        try:
            r = await client.post(
                f"/api/games/{game}/moves",
                json={"move": uci, "ply": ply},
                headers=harness.auth(token),
            )
        except httpx.HTTPError as exc:
            rec.errors[f"move {type(exc).__name__}"] += 1
            return
        acked = time.perf_counter()
        if r.status_code != 200:
            rec.errors[f"move {r.status_code}"] += 1
            return
        # The position after this move is the one with ``ply + 1`` half-moves played.
        rec.acked[(game, ply + 1)] = acked
        if rec.in_window(acked):
            rec.move_latencies_s.append(acked - sent)


async def probe_rest(
    client: httpx.AsyncClient, games: list[str], rate: float, rec: Recorder
) -> None:
    """``GET /api/games/{id}`` at ``rate`` per second over the window, open loop."""

    async def one(game: str) -> None:
        sent = time.perf_counter()
        try:
            r = await client.get(f"/api/games/{game}")
        except httpx.HTTPError as exc:
            rec.errors[f"get {type(exc).__name__}"] += 1
            return
        if r.status_code != 200:
            rec.errors[f"get {r.status_code}"] += 1
            return
        rec.rest.append((sent, time.perf_counter() - sent))

    pending: set[asyncio.Task[None]] = set()
    index = 0
    while True:
        at = rec.window_start + index / rate
        if at > rec.window_end:
            break
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        task = asyncio.create_task(one(games[index % len(games)]))
        pending.add(task)
        task.add_done_callback(pending.discard)
        index += 1
    if pending:
        _, late = await asyncio.wait(pending, timeout=harness.REQUEST_TIMEOUT_S + 1)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


async def sample_queue(client: httpx.AsyncClient, start: float, rec: Recorder) -> None:
    """Scrape ``gm_analysis_queue_depth`` once a second from ``start`` to the window's end."""
    tick = 0
    while True:
        at = start + tick
        if at > rec.window_end:
            return
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        samples = await harness.scrape(client)
        if QUEUE_METRIC in samples:
            rec.queue.append((time.perf_counter(), samples[QUEUE_METRIC]))
        tick += 1


async def watch_client_lag(rec: Recorder, interval_s: float = 0.02) -> None:
    """Forever: how late this client's own loop runs a timer (to judge its share of latency)."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(interval_s)
        now = time.perf_counter()
        if rec.in_window(now):
            rec.client_lag_s.append(max(0.0, now - started - interval_s))


@dataclass(frozen=True, slots=True)
class ModeResult:
    """The figures of one run."""

    mode: str
    engine: str | None
    analysis_processes: int | None
    loadavg_1min_at_start: float
    background_busy_pct: float | None
    seconds: float
    lag_samples: int
    lag_buckets_ms: list[tuple[float, float]]
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    lag_mean_ms: float
    lag_share_over_10ms: float
    rest_requests: int
    rest_p50_ms: float
    rest_p99_ms: float
    rest_max_ms: float
    moves: int
    move_p50_ms: float
    move_p99_ms: float
    positions: int | None
    first_eval_p50_ms: float | None
    first_eval_p99_ms: float | None
    first_eval_max_ms: float | None
    first_eval_within_target: int | None
    first_eval_never: int | None
    first_depth_p50: float | None
    deepest_depth_p50: float | None
    evals_per_game_s: float | None
    jobs_per_s: float | None
    queue_max: float | None
    queue_last: float | None
    queue_slope_per_s: float | None
    queue_samples: list[float]
    cpu: CpuUsage
    client_lag_p99_ms: float
    client_lag_max_ms: float
    messages_in_window: dict[str, int]
    errors: dict[str, int]


def run_mode(mode: str, engine: str | None, args: argparse.Namespace, run_dir: Path) -> ModeResult:
    """One run (see the module docstring); raises RuntimeError when the server fails."""
    load = os.getloadavg()[0]
    background = background_busy_pct()
    env = {"GM_ANALYSIS": "1" if engine else "0"}
    if engine:
        env["GM_ENGINE"] = engine
    if args.processes:
        env["GM_ANALYSIS_PROCESSES"] = str(args.processes)
    env.update(args.server_env)
    run_dir.mkdir()
    plies = math.ceil((args.warmup + args.seconds) / args.interval) + 2
    scripts = generate_scripts(args.games, plies, args.seed)
    server = harness.AppServer(
        run_dir / "data", run_dir / "server.log", env, startup_timeout_s=60.0
    )
    with server:
        print(
            f"{mode} ({engine or 'no analysis'}): server pid {server.pid} at {server.url}; "
            f"load average {load:.2f}, machine busy {_fmt(background, 0)} % before start",
            flush=True,
        )
        try:
            return asyncio.run(_drive(server, mode, engine, args, scripts, load, background))
        except BaseException:
            print(f"server log (last lines):\n{server.log_tail()}", flush=True)
            raise


async def _drive(
    server: harness.AppServer,
    mode: str,
    engine: str | None,
    args: argparse.Namespace,
    scripts: list[tuple[str, ...]],
    load: float,
    background: float | None,
) -> ModeResult:
    async with (
        harness.async_client(server.url, 4) as admin,
        harness.async_client(server.url, args.games) as movers,
        harness.async_client(server.url, 8) as readers,
    ):
        games = [
            (await harness.start_game(admin, server.operator_token, PLAYERS))[0]
            for _ in range(args.games)
        ]
        ws_base = server.url.replace("http://", "ws://")
        begin = time.perf_counter() + 60.0  # replaced once every spectator has its snapshot
        rec = Recorder(begin + args.warmup, begin + args.warmup + args.seconds)
        readies = [asyncio.Event() for _ in games]
        tasks = [
            asyncio.create_task(spectate(f"{ws_base}/ws/games/{game}", game, rec, ready))
            for game, ready in zip(games, readies, strict=True)
        ]
        tasks.append(asyncio.create_task(watch_client_lag(rec)))
        try:
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
            begin = time.perf_counter() + 0.5
            rec.window_start = begin + args.warmup
            rec.window_end = rec.window_start + args.seconds
            players = [
                asyncio.create_task(
                    play(
                        movers,
                        server.operator_token,
                        game,
                        scripts[i],
                        begin + i * args.interval / len(games),
                        args.interval,
                        rec,
                    )
                )
                for i, game in enumerate(games)
            ]
            sampler = asyncio.create_task(sample_queue(admin, begin, rec))
            await asyncio.sleep(max(0.0, rec.window_start - time.perf_counter()))
            cpu_0 = CpuSample.take(server.pid)
            before = await harness.scrape(admin)
            prober = asyncio.create_task(probe_rest(readers, games, args.rate, rec))
            await asyncio.sleep(max(0.0, rec.window_end - time.perf_counter()))
            cpu_1 = CpuSample.take(server.pid)
            after = await harness.scrape(admin)
            await asyncio.gather(*players, sampler, prober)
            # The last positions keep their place for one more interval, as in play.
            await asyncio.sleep(args.interval)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return _summarise(mode, engine, args, rec, before, after, cpu_0, cpu_1, load, background)


def _summarise(
    mode: str,
    engine: str | None,
    args: argparse.Namespace,
    rec: Recorder,
    before: dict[str, float],
    after: dict[str, float],
    cpu_0: CpuSample,
    cpu_1: CpuSample,
    load: float,
    background: float | None,
) -> ModeResult:
    lag = bucket_delta(histogram_buckets(before, LAG_METRIC), histogram_buckets(after, LAG_METRIC))
    lag_count = after.get(f"{LAG_METRIC}_count", 0.0) - before.get(f"{LAG_METRIC}_count", 0.0)
    lag_sum = after.get(f"{LAG_METRIC}_sum", 0.0) - before.get(f"{LAG_METRIC}_sum", 0.0)
    rest = sorted(latency for sent, latency in rec.rest if rec.in_window(sent))
    moves = sorted(rec.move_latencies_s)
    client_lag = sorted(rec.client_lag_s)
    cpu = cpu_usage(cpu_0, cpu_1)
    analysed = engine is not None
    delays: list[float] = []
    first_depths: list[float] = []
    deepest: list[float] = []
    never = 0
    for key, acked in rec.acked.items():
        if not rec.in_window(acked):
            continue
        first = rec.first_eval.get(key)
        if first is None:
            never += 1
        else:
            delays.append(first - acked)
            first_depths.append(rec.first_depth[key])
            deepest.append(rec.deepest[key])
    delays.sort()
    first_depths.sort()
    deepest.sort()
    queue = [(t, v) for t, v in rec.queue if rec.in_window(t)]

    def ms(values: list[float], pct: float) -> float:
        return 1000 * harness.percentile(values, pct)

    return ModeResult(
        mode=mode,
        engine=engine,
        analysis_processes=len(cpu.worker_pcts) if analysed else None,
        loadavg_1min_at_start=round(load, 2),
        background_busy_pct=background,
        seconds=args.seconds,
        lag_samples=int(lag_count),
        lag_buckets_ms=[(1000 * le, count) for le, count in lag],
        lag_p50_ms=1000 * bucket_quantile(lag, 50),
        lag_p99_ms=1000 * bucket_quantile(lag, 99),
        lag_max_ms=1000 * bucket_max(lag),
        lag_mean_ms=1000 * lag_sum / lag_count if lag_count else math.nan,
        lag_share_over_10ms=bucket_share_above(lag, LOOP_LAG_TARGET_MS / 1000),
        rest_requests=len(rest),
        rest_p50_ms=ms(rest, 50),
        rest_p99_ms=ms(rest, 99),
        rest_max_ms=1000 * rest[-1] if rest else math.nan,
        moves=len(moves),
        move_p50_ms=ms(moves, 50),
        move_p99_ms=ms(moves, 99),
        positions=len(delays) + never if analysed else None,
        first_eval_p50_ms=ms(delays, 50) if analysed else None,
        first_eval_p99_ms=ms(delays, 99) if analysed else None,
        first_eval_max_ms=1000 * delays[-1] if analysed and delays else None,
        first_eval_within_target=(
            sum(d <= FIRST_EVAL_TARGET_S for d in delays) if analysed else None
        ),
        first_eval_never=never if analysed else None,
        first_depth_p50=harness.percentile(first_depths, 50) if analysed else None,
        deepest_depth_p50=harness.percentile(deepest, 50) if analysed else None,
        evals_per_game_s=len(rec.eval_arrivals) / args.games / args.seconds if analysed else None,
        jobs_per_s=(
            (after.get(ANALYSED_METRIC, 0.0) - before.get(ANALYSED_METRIC, 0.0)) / args.seconds
            if analysed
            else None
        ),
        queue_max=max((v for _, v in queue), default=math.nan) if analysed else None,
        queue_last=queue[-1][1] if analysed and queue else None,
        queue_slope_per_s=slope_per_s(queue) if analysed else None,
        queue_samples=[v for _, v in queue],
        cpu=cpu,
        client_lag_p99_ms=ms(client_lag, 99),
        client_lag_max_ms=1000 * client_lag[-1] if client_lag else math.nan,
        messages_in_window=dict(
            Counter(kind for at, _, kind, _ in rec.messages if rec.in_window(at))
        ),
        errors=dict(rec.errors),
    )


# --- reporting ---


def machine() -> dict[str, Any]:
    """Where the benchmark runs, with the load and ``uptime`` at start."""
    try:
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        uptime = ""
    return harness.machine(
        loadavg_at_start=[round(x, 2) for x in os.getloadavg()], uptime_at_start=uptime
    )


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def _bound(value_ms: float | None) -> str:
    """A bucket's upper bound as "<= X" (ms), "> 1000" for the overflow bucket."""
    if value_ms is None or math.isnan(value_ms):
        return "n/a"
    if math.isinf(value_ms):
        return "> 1000"
    return f"<= {value_ms:g}"


def _name(r: ModeResult) -> str:
    if r.engine is None:
        return "off"
    return f"on, {r.engine.removeprefix('uci:').rsplit('/', 1)[-1]}"


def markdown_tables(results: list[ModeResult]) -> str:
    """The results as markdown tables: latency, analysis, CPU."""
    lines = [
        "| analysis | loop lag p50 ms | p99 ms | max ms | mean ms | > 10 ms | lag samples "
        "| REST p50 ms | p99 ms | max ms | GETs | move 200 p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {_name(r)} | {_bound(r.lag_p50_ms)} | {_bound(r.lag_p99_ms)} "
            f"| {_bound(r.lag_max_ms)} | {_fmt(r.lag_mean_ms, 2)} "
            f"| {_fmt(100 * r.lag_share_over_10ms)} % | {r.lag_samples} "
            f"| {_fmt(r.rest_p50_ms)} | {_fmt(r.rest_p99_ms)} | {_fmt(r.rest_max_ms)} "
            f"| {r.rest_requests} | {_fmt(r.move_p50_ms)} | {_fmt(r.move_p99_ms)} "
            f"| {sum(r.errors.values())} |"
        )
    analysed = [r for r in results if r.engine is not None]
    if analysed:
        lines += [
            "",
            "| analysis | positions | first eval p50 ms | p99 ms | max ms | within 1 s | never "
            "| depth first / last p50 | evals/game/s | jobs ended/s | queue max | queue last "
            "| queue slope /s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in analysed:
            lines.append(
                f"| {_name(r)} | {r.positions} | {_fmt(r.first_eval_p50_ms, 0)} "
                f"| {_fmt(r.first_eval_p99_ms, 0)} | {_fmt(r.first_eval_max_ms, 0)} "
                f"| {r.first_eval_within_target} | {r.first_eval_never} "
                f"| {_fmt(r.first_depth_p50, 0)} / {_fmt(r.deepest_depth_p50, 0)} "
                f"| {_fmt(r.evals_per_game_s, 2)} | {_fmt(r.jobs_per_s, 1)} "
                f"| {_fmt(r.queue_max, 0)} "
                f"| {_fmt(r.queue_last, 0)} | {_fmt(r.queue_slope_per_s, 3)} |"
            )
    lines += [
        "",
        "| analysis | server % | workers % (each) | nice | engine procs % | helpers % "
        "| client % | others % | machine busy % | client loop lag p99 / max ms "
        "| load avg at start | busy before start % |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        c = r.cpu
        each = " + ".join(f"{p:.0f}" for p in c.worker_pcts) or "-"
        nice = ",".join(sorted({str(n) for n in c.worker_nice})) or "-"
        lines.append(
            f"| {_name(r)} | {c.server_pct:.0f} | {c.workers_pct:.0f} ({each}) | {nice} "
            f"| {c.engine_pct:.0f} | {c.helper_pct:.0f} | {c.client_pct:.0f} "
            f"| {_fmt(c.others_pct, 0)} | {_fmt(c.machine_pct, 0)} "
            f"| {_fmt(r.client_lag_p99_ms)} / {_fmt(r.client_lag_max_ms)} "
            f"| {r.loadavg_1min_at_start} | {_fmt(r.background_busy_pct, 0)} |"
        )
    return "\n".join(lines)


def verdicts(r: ModeResult, games: int) -> list[str]:
    """PASS/MISS lines for the targets of a run of ``games`` games, and a disturbance caution."""

    def mark(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    lines = [
        f"{mark(r.lag_p99_ms <= LOOP_LAG_TARGET_MS)} loop lag p99 {_bound(r.lag_p99_ms)} ms "
        f"(target <= {LOOP_LAG_TARGET_MS:g} ms)",
        f"{mark(r.rest_p99_ms <= REST_TARGET_MS)} REST p99 {_fmt(r.rest_p99_ms)} ms "
        f"(target <= {REST_TARGET_MS:g} ms)",
    ]
    others = r.cpu.others_pct
    if others is not None and others > DISTURBED_PCT:
        lines.append(
            f"CAUTION other processes used {others:.0f} % of a core during the window (client "
            f"loop lag p99 {_fmt(r.client_lag_p99_ms)} ms): latencies are not the server's alone"
        )
    if r.positions is not None:
        ok = r.positions > 0 and r.first_eval_within_target == r.positions
        lines.append(
            f"{mark(ok)} first eval within {FIRST_EVAL_TARGET_S:g} s for "
            f"{r.first_eval_within_target}/{r.positions} positions "
            f"({r.first_eval_never} never, max {_fmt(r.first_eval_max_ms, 0)} ms)"
        )
        queue = r.queue_samples
        third = max(1, len(queue) // 3)
        first_mean = sum(queue[:third]) / third if queue else math.nan
        last_mean = sum(queue[-third:]) / third if queue else math.nan
        # The queue holds at most one position per game (a move replaces its game's waiting
        # position), so an overloaded pool shows as a queue pinned near that cap, not growing.
        pinned = bool(queue) and first_mean >= games - 2
        growing = not queue or last_mean > first_mean + 1
        state = "pinned at its cap" if pinned else "growing" if growing else "bounded"
        lines.append(
            f"{mark(not (growing or pinned))} no queue growth ({state}): mean {first_mean:.1f} "
            f"in the first third, {last_mean:.1f} in the last third of the window, max "
            f"{_fmt(r.queue_max, 0)} of at most {games} (one per game), slope "
            f"{_fmt(r.queue_slope_per_s, 3)}/s"
        )
    return lines


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None, so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds (30)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured seconds of play first (2)"
    )
    parser.add_argument("--games", type=int, default=20, help="live games (20)")
    parser.add_argument(
        "--interval", type=float, default=2.0, help="seconds between two moves of a game (2.0)"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="REST GETs per second (20)")
    parser.add_argument(
        "--engine",
        default="builtin",
        help="analysis engine(s), comma-separated: builtin, uci:/usr/games/stockfish (builtin)",
    )
    parser.add_argument(
        "--modes", default="on,off", help="on (per engine) and/or off, in this order (on,off)"
    )
    parser.add_argument(
        "--processes", type=int, default=0, help="GM_ANALYSIS_PROCESSES (0: one per core)"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="GM_NAME=VALUE",
        help="an extra setting of the servers (repeatable), e.g. GM_ANALYSIS_MIN_TIME_S=0.05",
    )
    parser.add_argument("--seed", type=int, default=2024, help="random games' seed (2024)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    args.engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(args.modes) <= {"on", "off"} or not args.modes:
        parser.error("--modes takes on and/or off")
    if "on" in args.modes and not args.engines:
        parser.error("--engine is empty")
    if args.seconds <= 0 or args.warmup < 0 or args.interval <= 0 or args.rate <= 0:
        parser.error("--seconds, --interval and --rate must be positive, --warmup not negative")
    if args.games < 1:
        parser.error("--games must be positive")
    try:
        args.server_env = dict(item.split("=", 1) for item in args.server_env)
    except ValueError:
        parser.error("--server-env takes GM_NAME=VALUE")
    return args


def run_all(args: argparse.Namespace, tmp_dir: Path) -> list[ModeResult]:
    """Every run in turn, each against a fresh server with a fresh data directory."""
    results: list[ModeResult] = []
    for mode in args.modes:
        for engine in args.engines if mode == "on" else [None]:
            result = run_mode(mode, engine, args, tmp_dir / f"run-{len(results)}")
            results.append(result)
            print(
                f"  loop lag p99 {_bound(result.lag_p99_ms)} ms, REST p99 "
                f"{_fmt(result.rest_p99_ms)} ms, first eval p99 "
                f"{_fmt(result.first_eval_p99_ms, 0)} ms, errors {result.errors or 0}",
                flush=True,
            )
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 1 when any request failed, else 0.

    Raises RuntimeError when a server does not start or its games cannot be made.
    """
    args = parse_args(argv)
    host = machine()
    print(f"uptime at start: {host['uptime_at_start']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gm-lag-") as tmp:
        results = run_all(args, Path(tmp))
    print()
    print(markdown_tables(results))
    print()
    for r in results:
        print(f"Targets, analysis {_name(r)}:")
        for line in verdicts(r, args.games):
            print(f"  {line}")
    print()
    print(
        f"Machine: nproc {host['nproc']}, {host['implementation']} {host['python']}, "
        f"{host['platform']}; load average {host['loadavg_at_start']} (1, 5, 15 min) at start; "
        f"server code {host['code']}."
    )
    bounds = ", ".join(
        f"{le:g}" for le, _ in (results[0].lag_buckets_ms if results else []) if math.isfinite(le)
    )
    extra = " ".join(f"{k}={v}" for k, v in args.server_env.items()) or "none"
    print(
        f"{args.games} games, one move each every {args.interval:g} s (staggered), "
        f"{args.rate:g} GET/s round-robin, {args.seconds:g} s measured after {args.warmup:g} s "
        f"of play; extra server settings: {extra}. Loop lag: the server's {LAG_METRIC} (a "
        "100 ms timer: ~10 samples/s) over the window; quantiles are bucket upper bounds "
        f"(buckets {bounds} ms, then +Inf). REST and move latency: measured by the client. "
        "First eval: the move's 200 at the client to the first eval event for the new ply at "
        "the spectator; depth first / last: median search depth of a position's first and of "
        "its deepest eval event; jobs ended/s: gm_positions_analysed_total over the window (jobs "
        "that ended, stopped or not; new positions arrive at games/interval per second). "
        "CPU: 100 % = one core over the window; workers are the analysis "
        "processes, engine procs their UCI engines, helpers the forkserver and resource "
        "tracker; others = every other process on the machine (from /proc/stat)."
    )
    if args.json is not None:
        payload = {
            "machine": host,
            "options": {k: v for k, v in vars(args).items() if k not in {"json", "engine"}},
            "results": [{**asdict(r), "workers_pct": r.cpu.workers_pct} for r in results],
        }
        args.json.write_text(json.dumps(_finite(payload), indent=2) + "\n")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
