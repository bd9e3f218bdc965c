"""Benchmark game review: pool time per 40-move game, and live analysis while reviews run.

Run from the repository's virtualenv:
``python bench/review.py [--runs 3] [--engine builtin] [--depth 6] [--live-moves 20]
[--json out.json]``.

Cost. Each run starts its own ``python -m app`` (fresh data directory, one analysis process,
no evaluation cache, the review budget of ``--depth``, the default being the server's
default), plays the 40-move game of ``bench/data/review_40_moves.pgn`` as operator with the
moves sent back to back (so live analysis reaches no position at the review's depth and
nothing is reused), ends it, and times the review from the end's HTTP 200 to ``GET
/api/games/{id}/review`` answering ``done`` (polled every 20 ms). With one worker and no live
game that is the review's pool time; the worker's CPU seconds over the same span (from
``/proc``) are reported beside it. Figures: the median and the spread of ``--runs`` runs.

Live analysis while reviewing. A server with one analysis process reviews a finished game
at a budget that keeps the worker busy for minutes (depth 60, 60 s a position), so every
live position must take the worker from a review job. A live game then plays
``--live-moves`` moves, one every 0.5 s, and a spectator socket stamps each ``eval`` event:
the figure is the delay from each move's HTTP 200 to the first evaluation of the new position
(p50, p99, max, and how many within 1 s), and the review must still be running at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import chess.pgn
import harness
import httpx
import websockets

GAME = Path(__file__).resolve().parent / "data" / "review_40_moves.pgn"
LIVE_MOVES = "e4 c5 Nf3 d6 d4 cxd4 Nxd4 Nf6 Nc3 a6 Be3 e5 Nb3 Be6 f3 Be7 Qd2 O-O O-O-O Nbd7"


def game_moves() -> list[str]:
    """The benchmark game's moves (UCI)."""
    with GAME.open() as f:
        game = chess.pgn.read_game(f)
    assert game is not None
    return [move.uci() for move in game.mainline_moves()]


def server_env(engine: str, depth: int | None, **extra: str) -> dict[str, str]:
    """One analysis process, no cache, the review budget."""
    env = {
        "GM_ANALYSIS": "1",
        "GM_ANALYSIS_PROCESSES": "1",
        "GM_ANALYSIS_CACHE_SIZE": "0",
        "GM_ENGINE": engine,
        "GM_LOG_LEVEL": "warning",
        **extra,
    }
    if depth is not None:
        env["GM_REVIEW_DEPTH"] = str(depth)
    return env


def finished_game(http: httpx.Client, token: str, moves: list[str]) -> tuple[str, float]:
    """Play ``moves`` in a new game and end it; return its id and when the end was answered."""
    body = {"white": {"name": "W"}, "black": {"name": "B"}, "clock": harness.CLOCK}
    game_id = http.post("/api/games", json=body, headers=harness.auth(token)).json()["game"]["id"]
    http.post(f"/api/games/{game_id}/start", headers=harness.auth(token)).raise_for_status()
    for ply, uci in enumerate(moves):
        r = http.post(
            f"/api/games/{game_id}/moves",
            json={"move": uci, "ply": ply},
            headers=harness.auth(token),
        )
        r.raise_for_status()
    result = {"result": "1/2-1/2", "reason": "benchmark"}
    r = http.post(f"/api/games/{game_id}/result", json=result, headers=harness.auth(token))
    r.raise_for_status()
    return game_id, time.perf_counter()


def worker_cpu_s(server: harness.AppServer) -> float:
    """CPU seconds of the analysis workers and their engines so far."""
    tree = harness.process_tree(server.pid)
    return sum(p.cpu_s for p in tree.values() if p.role in ("worker", "engine"))


def cost_run(engine: str, depth: int | None, moves: list[str]) -> dict[str, Any]:
    """One fresh server: the review of the 40-move game, timed."""
    with tempfile.TemporaryDirectory() as tmp:
        env = server_env(engine, depth)
        with harness.AppServer(Path(tmp) / "data", Path(tmp) / "server.log", env) as server:
            http = server.http
            assert http is not None
            game_id, ended = finished_game(http, server.operator_token, moves)
            cpu_before = worker_cpu_s(server)
            while True:
                review = http.get(f"/api/games/{game_id}/review").json()
                if review["status"] == "done":
                    break
                server.check_running()
                time.sleep(0.02)
            wall_s = time.perf_counter() - ended
            cpu_s = worker_cpu_s(server) - cpu_before
    return {
        "wall_s": round(wall_s, 2),
        "worker_cpu_s": round(cpu_s, 2),
        "budget": review["budget"],
        "engine": review["engine"],
        "positions": len(review["moves"]) + 1,
    }


async def live_run(engine: str, live_moves: int) -> dict[str, Any]:
    """Live evaluations while the only worker is busy with a review."""
    env = server_env(engine, 60, GM_REVIEW_MAX_TIME_S="60", GM_ANALYSIS_MAX_TIME_S="5")
    with (
        tempfile.TemporaryDirectory() as tmp,
        harness.AppServer(Path(tmp) / "data", Path(tmp) / "server.log", env) as server,
    ):
        http = server.http
        assert http is not None
        token = server.operator_token
        reviewed, _ = finished_game(http, token, game_moves()[:20])
        async with harness.async_client(server.url, 4) as client:
            while True:
                review = await client.get(f"/api/games/{reviewed}/review")
                if review.json()["status"] == "running":
                    break
                await asyncio.sleep(0.02)
            game_id, _ = await harness.start_game(client, token, ("Live W", "Live B"))
            url = server.url.replace("http://", "ws://") + f"/ws/games/{game_id}"
            first_eval: dict[int, float] = {}
            arrived: dict[int, asyncio.Event] = {}
            async with websockets.connect(url) as ws:

                async def read() -> None:
                    async for raw in ws:
                        message = json.loads(raw)
                        if message.get("type") == "eval":
                            first_eval.setdefault(message["ply"], time.perf_counter())
                            arrived.setdefault(message["ply"], asyncio.Event()).set()

                reader = asyncio.get_running_loop().create_task(read())
                delays: list[float] = []
                for ply, san in enumerate(LIVE_MOVES.split()[:live_moves]):
                    await asyncio.sleep(0.5)
                    r = await client.post(
                        f"/api/games/{game_id}/moves",
                        json={"move": san, "ply": ply},
                        headers=harness.auth(token),
                    )
                    r.raise_for_status()
                    acked = time.perf_counter()
                    with contextlib.suppress(TimeoutError):
                        event = arrived.setdefault(ply + 1, asyncio.Event())
                        await asyncio.wait_for(event.wait(), 10)
                    delays.append(first_eval.get(ply + 1, float("inf")) - acked)
                reader.cancel()
            status = (await client.get(f"/api/games/{reviewed}/review")).json()
    ordered = sorted(delays)
    return {
        "moves": len(delays),
        "first_eval_ms": {
            "p50": round(harness.percentile(ordered, 50) * 1000, 1),
            "p99": round(harness.percentile(ordered, 99) * 1000, 1),
            "max": round(ordered[-1] * 1000, 1),
        },
        "within_1s": sum(1 for d in delays if d <= 1.0),
        "review_status_at_end": status["status"],
    }


def main() -> int:
    """Run both parts and print the figures (and write them as JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engine", default="builtin")
    parser.add_argument("--depth", type=int, default=None, help="review depth (server default)")
    parser.add_argument("--live-moves", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    moves = game_moves()
    at_start = {"machine_busy_s": harness.machine_busy_seconds()}
    runs = []
    for i in range(args.runs):
        run = cost_run(args.engine, args.depth, moves)
        print(f"run {i + 1}: {run}", flush=True)
        runs.append(run)
    walls = [r["wall_s"] for r in runs]
    cpus = [r["worker_cpu_s"] for r in runs]
    live = asyncio.run(live_run(args.engine, args.live_moves))
    report = {
        "game": {"moves": len(moves) // 2, "positions": len(moves) + 1},
        "engine": args.engine,
        "budget": runs[0]["budget"],
        "review_wall_s": {"median": statistics.median(walls), "min": min(walls), "max": max(walls)},
        "worker_cpu_s": {"median": statistics.median(cpus), "min": min(cpus), "max": max(cpus)},
        "worker_cpu_s_per_position": round(statistics.median(cpus) / (len(moves) + 1), 3),
        "live_while_reviewing": live,
        "machine": harness.machine(**at_start),
    }
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
