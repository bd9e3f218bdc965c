"""Page load of a 64-board tournament page in headless Chromium: time to the first board,
time to all 64, JavaScript heap, and the page's main-thread time while moves stream in.

A real server (``python -m app``, analysis off) on 127.0.0.1 gets a 9-round Swiss of 128
players (round 1: 64 boards), a few moves on every board, then each run opens
``/tournaments/{id}`` in a fresh browser context of Debian's Chromium (Playwright, never a
downloaded browser) and reads:

- first board / all boards: ``performance.now()`` (from navigation start) when the first
  mini-board, then all 64, have their pieces drawn (sampled every animation frame);
- JS heap: ``Runtime.getHeapUsage`` after a forced garbage collection, boards drawn;
- live: main-thread busy time (CDP ``TaskDuration``) per second of wall time while the
  server plays ``--moves-per-s`` moves spread over all boards for ``--live-s`` seconds.

Prints the median and range over ``--runs`` runs. Usage: ``python bench/pageload.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import chess
import httpx
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-operator-token"
CHROMIUM = os.environ.get("GM_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Stamps the first and the last board drawn, checked once per frame from the very start.
PROBE = """
(() => {
  const want = %d;
  const check = () => {
    const boards = document.querySelectorAll('#boards .mini');
    let drawn = 0;
    for (const b of boards) if (b.querySelector('cg-board piece')) drawn++;
    if (drawn > 0 && window.__firstBoard === undefined) window.__firstBoard = performance.now();
    if (drawn >= want) { window.__allBoards = performance.now(); return; }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Players:
    """Random legal games on every board, one move at a time, through the API."""

    def __init__(self, client: httpx.Client, games: list[str], seed: int = 1) -> None:
        self.client = client
        self.boards = {g: chess.Board() for g in games}
        self.rng = random.Random(seed)

    def move(self, game: str) -> None:
        board = self.boards[game]
        if board.is_game_over():
            return
        move = self.rng.choice(sorted(board.legal_moves, key=lambda m: m.uci()))
        r = self.client.post(
            f"/api/games/{game}/moves",
            json={"move": move.uci(), "ply": board.ply()},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        r.raise_for_status()
        board.push(move)


def setup(url: str, boards: int, plies: int) -> tuple[str, Players]:
    client = httpx.Client(base_url=url, timeout=30)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    players = [{"name": f"Player {i + 1}", "rating": 2800 - i} for i in range(boards * 2)]
    r = client.post(
        "/api/tournaments",
        json={
            "name": "Page load",
            "format": "swiss",
            "rounds": 9,
            "clock": {"initial": 5400, "increment": 30},
            "players": players,
        },
        headers=auth,
    )
    r.raise_for_status()
    tid = r.json()["id"]
    r = client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=auth)
    r.raise_for_status()
    games = [p["game"] for p in r.json()["pairings"]]
    play = Players(client, games)
    for _ in range(plies):
        for game in games:
            play.move(game)
    return tid, play


async def stream_moves(play: Players, per_s: float, seconds: float) -> int:
    """Play ``per_s`` moves a second, round the boards, for ``seconds``; how many."""
    games = list(play.boards)
    count = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        await asyncio.to_thread(play.move, games[count % len(games)])
        count += 1
        await asyncio.sleep(max(0.0, start + count / per_s - time.monotonic()))
    return count


async def measure(
    url: str, tid: str, play: Players, args: argparse.Namespace
) -> list[dict[str, float]]:
    results = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            for _ in range(args.runs):
                context = await browser.new_context(viewport={"width": 1280, "height": 900})
                page = await context.new_page()
                await page.add_init_script(PROBE % args.boards)
                cdp = await context.new_cdp_session(page)
                await cdp.send("Performance.enable")
                await page.goto(f"{url}/tournaments/{tid}")
                await page.wait_for_function(
                    "() => window.__allBoards !== undefined", timeout=60_000
                )
                first = await page.evaluate("window.__firstBoard")
                every = await page.evaluate("window.__allBoards")
                await cdp.send("HeapProfiler.collectGarbage")
                heap = await cdp.send("Runtime.getHeapUsage")
                before = await task_duration(cdp)
                wall = time.monotonic()
                moves = await stream_moves(play, args.moves_per_s, args.live_s)
                busy = (await task_duration(cdp) - before) / (time.monotonic() - wall)
                results.append(
                    {
                        "first_ms": first,
                        "all_ms": every,
                        "heap_mib": heap["usedSize"] / 2**20,
                        "busy_pct": busy * 100,
                        "moves": moves,
                    }
                )
                await context.close()
        finally:
            await browser.close()
    return results


async def task_duration(cdp: Any) -> float:
    metrics = await cdp.send("Performance.getMetrics")
    return float(next(m["value"] for m in metrics["metrics"] if m["name"] == "TaskDuration"))


def summary(values: list[float], unit: str) -> str:
    return f"{statistics.median(values):.1f} {unit} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=64)
    parser.add_argument("--plies", type=int, default=20, help="moves on every board first")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--moves-per-s", type=float, default=20.0)
    parser.add_argument("--live-s", type=float, default=5.0)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        env = {
            **os.environ,
            "GM_OPERATOR_TOKEN": TOKEN,
            "GM_ANALYSIS": "0",
            "GM_LOG_LEVEL": "warning",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "app", "--port", str(port), "--data-dir", data],
            cwd=ROOT,
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            tid, play = setup(url, args.boards, args.plies)
            results = asyncio.run(measure(url, tid, play, args))
        finally:
            server.terminate()
            server.wait(15)
    print(f"{args.boards} boards, {args.plies} plies each, {args.runs} runs (median, range):")
    print(f"  first board   {summary([r['first_ms'] for r in results], 'ms')}")
    print(f"  all boards    {summary([r['all_ms'] for r in results], 'ms')}")
    print(f"  JS heap       {summary([r['heap_mib'] for r in results], 'MiB')}")
    rate = statistics.median([r["moves"] for r in results]) / args.live_s
    print(
        f"  main thread   {summary([r['busy_pct'] for r in results], '%')} busy"
        f" at {rate:.0f} moves/s over {args.live_s:.0f} s"
    )


if __name__ == "__main__":
    main()
