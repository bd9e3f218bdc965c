"""Start-up time and resident memory of a server that has hosted a season of events.

A data directory is filled with ``--finished`` finished games and ``--live`` games in
progress, each with real events: a few hundred random games are played through the pure
core (start, moves with clocks, end), and their event texts are stored again under new
game ids (the store cannot tell). Then ``python -m app`` (analysis off) is started on it
and on an empty directory: the time until ``/healthz`` answers and the resident memory
once it does, and how long reading a finished game (from the store: not in memory) takes.
Goal (issue 8): start-up under 5 s and memory within 50 MiB of the empty server with
100,000 finished and 200 live games.

    python bench/startup.py [--finished 100000] [--live 200] [--plies 60]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

# Run as ``python bench/startup.py``, this directory is sys.path[0], and its engine.py
# would shadow the ``engine`` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))
sys.path.append(str(_HERE))

import chess  # noqa: E402
import harness  # noqa: E402
import httpx  # noqa: E402

from engine.rules import commands  # noqa: E402
from engine.rules.clock import TimeControl  # noqa: E402
from engine.rules.game import GameSetup, GameState, Player, evolve, evolve_all  # noqa: E402
from engine.rules.snapshot import SNAPSHOT_EVERY, snapshot_json  # noqa: E402
from engine.rules.view import game_json, summary_json  # noqa: E402
from workers.store import Store  # noqa: E402

TEMPLATES = 300


def template(rng: random.Random, plies: int, finished: bool) -> list[dict[str, object]]:
    """The events of one random game of up to ``plies`` half-moves (ended if ``finished``)."""
    setup = GameSetup(
        "TEMPLATE", Player("W", 2500), Player("B", 2400), TimeControl(5400_000, 30_000)
    )
    state = GameState.new(setup)
    now = 0
    events = commands.start(state, now)
    state = evolve_all(state, events, now)
    for _ in range(plies):
        if state.is_finished:
            break
        now += rng.randrange(1_000, 60_000)
        move = rng.choice(list(state.board.legal_moves))
        new = commands.play(state, move.uci(), now)
        state = evolve_all(state, new, now)
        events += new
    if finished and not state.is_finished:
        new = commands.resign(state, chess.WHITE, now)
        events += new
    return [dict(e) for e in events]


def stored_row(setup: GameSetup, events: list[dict[str, object]]) -> tuple[str, str, str, int]:
    """(status, summary, snapshot, snapshot_seq) as the server leaves them after ``events``:
    a snapshot at every status change and every ``SNAPSHOT_EVERY`` events."""
    state = GameState.new(setup)
    taken = state
    for event in events:
        before = state
        state = evolve(state, event, 0)  # type: ignore[arg-type]
        if (
            state.status != before.status
            or state.is_finished
            or state.seq - taken.seq >= SNAPSHOT_EVERY
        ):
            taken = state
    summary = summary_json(game_json(state, 0))
    snapshot = snapshot_json(taken)
    return (
        state.status,
        json.dumps(summary, separators=(",", ":")),
        json.dumps(snapshot, separators=(",", ":")),
        taken.seq,
    )


def fill(path: Path, finished: int, live: int, plies: int) -> None:
    """Create the store's schema, then write the games with their events directly, with
    the status, summary and snapshot the server writes beside them."""
    store = Store(path)
    store.open()
    store.close()
    rng = random.Random(1)
    ended = [template(rng, plies, True) for _ in range(TEMPLATES)]
    running = [template(rng, plies, False) for _ in range(min(TEMPLATES, max(live, 1)))]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    rows_of: dict[int, tuple[str, str, str, int]] = {}
    for i in range(finished + live):
        game_id = f"G{i:09d}"
        pool, index = (ended, i % TEMPLATES) if i < finished else (running, i % len(running))
        events = [{**event, "game": game_id} for event in pool[index]]
        setup = GameSetup(
            game_id,
            Player(f"White {i}", 2500),
            Player(f"Black {i}", 2400),
            TimeControl(5400_000, 30_000),
            created_at="2026-11-01T10:00:00Z",
        )
        key = id(pool[index])
        if key not in rows_of:
            rows_of[key] = stored_row(setup, events)
        status, summary, snapshot, snapshot_seq = rows_of[key]
        # The summary names the game and its players: the template's, renamed.
        named = {
            **json.loads(summary),
            "id": game_id,
            "white": setup.white.to_json(),
            "black": setup.black.to_json(),
        }
        conn.execute(
            "INSERT INTO games (id, setup, white_token, black_token, status, summary, snapshot, "
            "snapshot_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                game_id,
                json.dumps(asdict(setup)),
                f"w{i}",
                f"b{i}",
                status,
                json.dumps(named, separators=(",", ":")),
                snapshot,
                snapshot_seq,
            ),
        )
        rows = []
        for event in events:
            body = json.dumps(event, separators=(",", ":"))
            ply = event.get("ply") if event["type"] == "move" else None
            rows.append((game_id, event["seq"], event["type"], ply, body, 0, 1_790_000_000_000))
        conn.executemany(
            "INSERT INTO events (game, seq, type, ply, body, line, at_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    conn.execute("COMMIT")
    conn.close()


def measure(data: Path, log: Path, finished: int) -> tuple[float, int, float | None]:
    """Seconds until ``/healthz`` answers, the server's RSS (KiB) then, and the median time
    (ms) of ``GET /api/games/{id}`` for finished games not in memory (None without any)."""
    started = time.perf_counter()
    server = harness.AppServer(data, log, {"GM_ANALYSIS": "0"}, startup_timeout_s=600)
    with server:
        elapsed = time.perf_counter() - started
        rss = server.rss_kib()
        if not finished:
            return elapsed, rss, None
        rng = random.Random(2)
        times = []
        with httpx.Client(base_url=server.url) as client:
            for _ in range(200):
                game_id = f"G{rng.randrange(finished):09d}"
                t0 = time.perf_counter()
                r = client.get(f"/api/games/{game_id}")
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
        return elapsed, rss, statistics.median(times) * 1000


def main() -> None:
    """Fill a store, start a server on it and on an empty one, print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--finished", type=int, default=100_000)
    parser.add_argument("--live", type=int, default=200)
    parser.add_argument("--plies", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        fill(root / "full" / "grandmaster.sqlite3", args.finished, args.live, args.plies)
        size_mb = (root / "full" / "grandmaster.sqlite3").stat().st_size / 1e6
        print(
            f"filled {args.finished} finished + {args.live} live games ({size_mb:.0f} MB) "
            f"in {time.perf_counter() - t0:.0f} s"
        )
        empty_s, empty_kib, _ = measure(root / "empty", root / "empty.log", 0)
        full_s, full_kib, read_ms = measure(root / "full", root / "full.log", args.finished)
        print(f"empty server: ready in {empty_s:.2f} s, RSS {empty_kib / 1024:.0f} MiB")
        print(
            f"full server:  ready in {full_s:.2f} s, RSS {full_kib / 1024:.0f} MiB "
            f"(+{(full_kib - empty_kib) / 1024:.0f} MiB)"
        )
        if read_ms is not None:
            print(f"GET of a finished game not in memory: median {read_ms:.1f} ms (200 games)")
        print(harness.machine())


if __name__ == "__main__":
    main()
