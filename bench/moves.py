"""Benchmark durable move throughput and acknowledgement latency of the real server.

Run from the repository's virtualenv:
``python bench/moves.py [--seconds 10] [--levels 1,16,64] [--json out.json]``.

The script starts ``python -m app`` as a subprocess on 127.0.0.1 (a free port) with a fresh
temporary data directory, so what is measured is the production write path: SQLite in WAL
mode with ``synchronous=FULL`` and the store's group commit, behind uvicorn and FastAPI.

For each concurrency level N it creates and starts N games (operator token, 5400+30 clock)
and drives each from its own asyncio task, all sharing one ``httpx.AsyncClient`` whose
HTTP/1.1 keep-alive pool holds N connections (``--pool per-game``: one client with one
connection per game instead; httpcore scans every pooled connection on each request, which
costs the shared client several milliseconds of CPU per request at N=64). A task replays a
pre-generated, seeded random legal game move by move (UCI with ``ply``, the white player's
token for White's moves and the black player's for Black's) and awaits each answer before
sending its next move. A game that ends by rule is replaced by a fresh one; one that reaches
``--max-plies`` is resigned first (so the move list, which every answer carries, stays at a
realistic length).

After ``--warmup`` seconds the script counts for ``--seconds`` seconds: moves acknowledged
(200) per second, acknowledgement latency (p50, p99, max, measured by the client around each
request), errors (anything but 200: must be 0), and from ``GET /metrics`` the number of moves
per group commit and the mean commit duration. The load generator shares the machine's cores
with the server, so the client's own CPU use is reported next to the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import chess
import harness
import httpx

Pool = Literal["shared", "per-game"]

PLAYERS = ("Bench White", "Bench Black")

# Each game here moves as fast as the server answers, far beyond a human player: lift the
# per-player request limit, and leave the cores to the HTTP path.
SERVER_ENV = {
    "GM_PLAYER_REQUESTS_PER_S": "100000",
    "GM_PLAYER_REQUESTS_BURST": "100000",
    "GM_ANALYSIS": "0",
}


@dataclass(frozen=True, slots=True)
class ScriptedGame:
    """A random legal game as UCI moves; ``is_over`` when its last move ends it by rule."""

    moves: tuple[str, ...]
    is_over: bool


@dataclass(slots=True)
class LevelStats:
    """What the game tasks of one level record (on the client's event loop)."""

    measure_start: float
    measure_end: float
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    games_started: int = 0

    def record_move(self, sent: float, acked: float) -> None:
        """Count a move acknowledged inside the measurement window."""
        if self.measure_start <= acked <= self.measure_end:
            self.latencies_s.append(acked - sent)

    def record_error(self, kind: str) -> None:
        """Count a failed request, whenever it happened (warm-up included)."""
        self.errors[kind] += 1


@dataclass(frozen=True, slots=True)
class LevelResult:
    """The figures of one concurrency level."""

    concurrent_games: int
    seconds: float
    moves: int
    moves_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_kinds: dict[str, int]
    moves_per_commit: float | None
    commits: int | None
    mean_commit_ms: float | None
    mean_loop_lag_ms: float | None
    server_cpu_pct: float | None
    client_cpu_pct: float
    other_cpu_pct: float | None
    games_started: int

    @property
    def server_cpu_ms_per_move(self) -> float | None:
        """Server CPU time per acknowledged move: robust to other load on the machine."""
        if self.server_cpu_pct is None or not self.moves_per_s:
            return None
        return 10 * self.server_cpu_pct / self.moves_per_s


def generate_games(count: int, max_plies: int, seed: int) -> list[ScriptedGame]:
    """``count`` random legal games from the start position, seeded, at most ``max_plies``.

    A game stops at its first position that is over by rule without a claim (what the
    server ends by itself) or at ``max_plies`` (0: no limit).
    """
    rng = random.Random(seed)
    games = []
    for _ in range(count):
        board = chess.Board()
        moves: list[str] = []
        while board.outcome(claim_draw=False) is None and (not max_plies or len(moves) < max_plies):
            move = rng.choice(list(board.legal_moves))
            moves.append(move.uci())
            board.push(move)
        games.append(ScriptedGame(tuple(moves), board.outcome(claim_draw=False) is not None))
    return games


def _error_kind(response: httpx.Response) -> str:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = "?"
    return f"{response.status_code} {code}"


async def drive(
    client: httpx.AsyncClient,
    operator_token: str,
    first: tuple[str, dict[str, str]],
    scripts: Iterator[ScriptedGame],
    stats: LevelStats,
) -> None:
    """Play games one after another until ``stats.measure_end``, one request at a time.

    A game still running when its script runs out or the time is up is resigned, so no
    clock keeps running into the next level. A failed move abandons its game (its state is
    then unknown) and counts as an error; a failed game creation ends the task (after
    counting it) rather than retrying in a loop.
    """
    game_id, tokens = first
    while True:
        script = next(scripts)
        played, failed = 0, False
        for ply, uci in enumerate(script.moves):
            if time.perf_counter() >= stats.measure_end:
                break
            token = tokens["white"] if ply % 2 == 0 else tokens["black"]
            sent = time.perf_counter()
            try:
                r = await client.post(
                    f"/api/games/{game_id}/moves",
                    json={"move": uci, "ply": ply},
                    headers=harness.auth(token),
                )
            except httpx.HTTPError as exc:
                stats.record_error(type(exc).__name__)
                failed = True
                break
            acked = time.perf_counter()
            if r.status_code != 200:
                stats.record_error(_error_kind(r))
                failed = True
                break
            stats.record_move(sent, acked)
            played = ply + 1
        if not failed and not (script.is_over and played == len(script.moves)):
            await resign(client, game_id, tokens["white" if played % 2 == 0 else "black"], stats)
        if time.perf_counter() >= stats.measure_end:
            return
        try:
            game_id, tokens = await harness.start_game(client, operator_token, PLAYERS)
        except (httpx.HTTPError, RuntimeError) as exc:
            stats.record_error(f"new game: {exc}"[:120])
            return
        stats.games_started += 1


async def resign(client: httpx.AsyncClient, game_id: str, token: str, stats: LevelStats) -> None:
    """The bearer of ``token`` resigns; a refusal or failure counts as an error."""
    try:
        r = await client.post(f"/api/games/{game_id}/resign", headers=harness.auth(token))
    except httpx.HTTPError as exc:
        stats.record_error(f"resign {type(exc).__name__}")
        return
    if r.status_code != 200:
        stats.record_error(f"resign {_error_kind(r)}")


def _cycle_from(games: list[ScriptedGame], start: int, step: int) -> Iterator[ScriptedGame]:
    index = start
    while True:
        yield games[index % len(games)]
        index += step


async def run_level(
    server: harness.AppServer,
    n: int,
    scripts: list[ScriptedGame],
    warmup_s: float,
    seconds: float,
    *,
    pool: Pool = "per-game",
) -> LevelResult:
    """Drive ``n`` concurrent games for ``warmup_s`` + ``seconds`` and summarise the window.

    ``pool`` ``shared``: the games share one client whose pool holds ``n`` connections;
    ``per-game``: each game has its own client with one connection (the same connections
    on the wire, without httpcore's per-request scan of every pooled connection).
    Raises RuntimeError when the ``n`` initial games cannot be created.
    """
    async with contextlib.AsyncExitStack() as clients:
        admin = await clients.enter_async_context(harness.async_client(server.url, 4))
        if pool == "shared":
            shared = await clients.enter_async_context(harness.async_client(server.url, n))
            game_clients = [shared] * n
        else:
            game_clients = [
                await clients.enter_async_context(harness.async_client(server.url, 1))
                for _ in range(n)
            ]
        firsts = await asyncio.gather(
            *(harness.start_game(admin, server.operator_token, PLAYERS) for _ in range(n))
        )
        begin = time.perf_counter()
        stats = LevelStats(begin + warmup_s, begin + warmup_s + seconds, games_started=n)
        tasks = [
            asyncio.create_task(
                drive(
                    game_clients[i],
                    server.operator_token,
                    firsts[i],
                    _cycle_from(scripts, i, n),
                    stats,
                )
            )
            for i in range(n)
        ]
        try:
            await asyncio.sleep(max(0.0, stats.measure_start - time.perf_counter()))
            cpu_0 = _cpu_sample(server)
            before = await harness.scrape(admin)
            await asyncio.sleep(max(0.0, stats.measure_end - time.perf_counter()))
            cpu_1 = _cpu_sample(server)
            after = await harness.scrape(admin)
            # Every task stops sending moves at measure_end; what is in flight and the final
            # resignation are each bounded by the request timeout.
            try:
                await asyncio.wait_for(asyncio.gather(*tasks), 2 * harness.REQUEST_TIMEOUT_S + 5)
            except TimeoutError:
                stats.record_error("games still running after the level")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    latencies = sorted(stats.latencies_s)
    window_s = stats.measure_end - stats.measure_start

    def delta(name: str) -> float | None:
        if name in before and name in after:
            return after[name] - before[name]
        return None

    commits = delta("gm_store_commit_seconds_count")
    commit_s = delta("gm_store_commit_seconds_sum")
    server_moves = delta("gm_moves_accepted_total")
    lag_count = delta("gm_event_loop_lag_seconds_count")
    lag_s = delta("gm_event_loop_lag_seconds_sum")
    server_cpu, client_cpu, other_cpu = _cpu_percentages(cpu_0, cpu_1)
    return LevelResult(
        concurrent_games=n,
        seconds=window_s,
        moves=len(latencies),
        moves_per_s=len(latencies) / window_s,
        p50_ms=1000 * harness.percentile(latencies, 50),
        p99_ms=1000 * harness.percentile(latencies, 99),
        max_ms=1000 * (latencies[-1] if latencies else math.nan),
        errors=sum(stats.errors.values()),
        error_kinds=dict(stats.errors),
        moves_per_commit=server_moves / commits if commits and server_moves is not None else None,
        commits=None if commits is None else int(commits),
        mean_commit_ms=1000 * commit_s / commits if commits and commit_s is not None else None,
        mean_loop_lag_ms=1000 * lag_s / lag_count if lag_count and lag_s is not None else None,
        server_cpu_pct=server_cpu,
        client_cpu_pct=client_cpu,
        other_cpu_pct=other_cpu,
        games_started=stats.games_started,
    )


@dataclass(frozen=True, slots=True)
class _CpuSample:
    at: float
    server_s: float | None
    client_s: float
    machine_s: float | None


def _cpu_sample(server: harness.AppServer) -> _CpuSample:
    return _CpuSample(
        time.perf_counter(),
        server.cpu_seconds(),
        time.process_time(),
        harness.machine_busy_seconds(),
    )


def _cpu_percentages(a: _CpuSample, b: _CpuSample) -> tuple[float | None, float, float | None]:
    """Server, client and every other process's CPU between two samples (100 = one core)."""
    elapsed = b.at - a.at
    client = 100 * (b.client_s - a.client_s) / elapsed
    if a.server_s is None or b.server_s is None:
        return None, client, None
    server = 100 * (b.server_s - a.server_s) / elapsed
    if a.machine_s is None or b.machine_s is None:
        return server, client, None
    others = max(0.0, 100 * (b.machine_s - a.machine_s) / elapsed - server - client)
    return server, client, others


def fsync_probe_ms(directory: Path, count: int = 50) -> float:
    """Median milliseconds of ``fsync`` after a 4 KiB append to a file in ``directory``."""
    path = directory / "fsync-probe"
    durations = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(count):
            os.write(fd, b"\0" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            durations.append(time.perf_counter() - started)
    finally:
        os.close(fd)
        path.unlink()
    return 1000 * harness.percentile(sorted(durations), 50)


def filesystem_of(path: Path) -> str:
    """The type and device of the mount holding ``path`` (Linux), else ``"?"``."""
    best, found = "", "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind = line.split()[:3]
            resolved = str(path.resolve())
            if (resolved == mount or resolved.startswith(mount.rstrip("/") + "/")) and len(
                mount
            ) > len(best):
                best, found = mount, f"{kind} on {device}"
    return found


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def markdown_table(results: list[LevelResult]) -> str:
    """The results as a markdown table."""
    lines = [
        "| concurrent games | moves/s | p50 ms | p99 ms | max ms | moves per commit "
        "| mean commit ms | server CPU ms/move | server CPU % | client CPU % | other CPU % "
        "| errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.concurrent_games} | {r.moves_per_s:.0f} | {_fmt(r.p50_ms)} | {_fmt(r.p99_ms)} "
            f"| {_fmt(r.max_ms)} | {_fmt(r.moves_per_commit, 2)} | {_fmt(r.mean_commit_ms, 2)} "
            f"| {_fmt(r.server_cpu_ms_per_move, 2)} "
            f"| {_fmt(r.server_cpu_pct, 0)} | {_fmt(r.client_cpu_pct, 0)} "
            f"| {_fmt(r.other_cpu_pct, 0)} | {r.errors} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds per level (10)"
    )
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured seconds before each level (2)"
    )
    parser.add_argument(
        "--levels", default="1,16,64", help="comma-separated concurrent games (1,16,64)"
    )
    parser.add_argument(
        "--max-plies",
        type=int,
        default=160,
        help="resign a game after this many half-moves; 0: play random games to their end (160)",
    )
    parser.add_argument(
        "--pool",
        choices=("shared", "per-game"),
        default="per-game",
        help="one httpx client with N connections for all games, or one client per game (per-game)",
    )
    parser.add_argument("--seed", type=int, default=2024, help="random games' seed (2024)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--data-parent",
        type=Path,
        help="where the temporary data directory is made (default: the system's temp dir)",
    )
    parser.add_argument(
        "--server-log-level",
        help="GM_LOG_LEVEL of the server (default: the server's own)",
    )
    args = parser.parse_args(argv)
    try:
        args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        parser.error("--levels must be comma-separated integers")
    if not args.levels or min(args.levels) < 1:
        parser.error("--levels must be positive")
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be positive and --warmup not negative")
    return args


async def run_all(server: harness.AppServer, args: argparse.Namespace) -> list[LevelResult]:
    """Every level in turn against one server; prints each level's line as it finishes."""
    scripts = generate_games(max(64, max(args.levels)), args.max_plies, args.seed)
    results = []
    for n in args.levels:
        result = await run_level(server, n, scripts, args.warmup, args.seconds, pool=args.pool)
        results.append(result)
        print(
            f"  {n:>3} games: {result.moves_per_s:8.0f} moves/s  p50 {_fmt(result.p50_ms)} ms"
            f"  p99 {_fmt(result.p99_ms)} ms  errors {result.errors}"
            f"  (server loop lag {_fmt(result.mean_loop_lag_ms)} ms mean)",
            flush=True,
        )
        if result.errors:
            print(f"        error kinds: {result.error_kinds}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 1 when any request failed, else 0.

    Raises RuntimeError when the server does not start or its first games cannot be made.
    """
    args = parse_args(argv)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    host = harness.machine(loadavg_1min_at_start=None if load is None else round(load[0], 2))
    with tempfile.TemporaryDirectory(prefix="gm-bench-", dir=args.data_parent) as tmp:
        tmp_dir = Path(tmp)
        fs = filesystem_of(tmp_dir)
        fsync_ms = fsync_probe_ms(tmp_dir)
        print(f"data dir {tmp_dir} ({fs}), fsync p50 {fsync_ms:.2f} ms", flush=True)
        env = SERVER_ENV
        if args.server_log_level is not None:
            env = {**env, "GM_LOG_LEVEL": args.server_log_level}
        with harness.AppServer(tmp_dir / "data", tmp_dir / "server.log", env) as server:
            print(f"server pid {server.proc.pid if server.proc else '?'} at {server.url}")
            results = asyncio.run(run_all(server, args))
            if any(r.errors for r in results):
                print(f"server log (last lines):\n{server.log_tail()}", flush=True)
    print()
    print(markdown_table(results))
    print()
    print(
        f"Machine: nproc {host['nproc']}, {host['implementation']} {host['python']}, "
        f"{host['platform']}; load average {host['loadavg_1min_at_start']} at start; "
        f"server code {host['code']}; "
        f"data dir on {fs} (fsync p50 {fsync_ms:.2f} ms)."
    )
    print(
        f"{args.seconds:g} s measured per level after {args.warmup:g} s warm-up; client pool "
        f"{args.pool}; "
        + (
            f"games resigned after {args.max_plies} plies"
            if args.max_plies
            else "random games played to their end"
        )
        + f"; server log level "
        f"{args.server_log_level or 'default (info)'}. The client (one process, one event loop, "
        "httpx) shares the cores with the server. CPU columns: 100 % = one core, over the "
        "window; 'other' is every other process on the machine (from /proc/stat)."
    )
    print(
        "moves per commit = gm_moves_accepted_total / gm_store_commit_seconds_count over the "
        "window (commits also carry game creations, starts, resignations and clock "
        "checkpoints)."
    )
    if args.json is not None:
        payload = {
            "machine": host,
            "filesystem": fs,
            "fsync_p50_ms": fsync_ms,
            "options": {
                "seconds": args.seconds,
                "warmup": args.warmup,
                "levels": args.levels,
                "max_plies": args.max_plies,
                "seed": args.seed,
                "pool": args.pool,
                "server_log_level": args.server_log_level,
            },
            "results": [
                {**asdict(r), "server_cpu_ms_per_move": r.server_cpu_ms_per_move} for r in results
            ],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if any(r.errors for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
