"""Power loss under a whole server: the real app, in process, plays games over HTTP on the
simulated disk of tests/workers/simulated_disk.py; at seeded crash points of that run the
disk's possible contents are rebuilt and a fresh server starts on each (the full start-up:
the store's reads, then games, tournaments and the broadcast delay restored). It must
start, and serve every game and move it acknowledged before the crash, and no move that
was not played. The store-level tests run thousands of crashes; this one runs a few dozen
through everything the server does at start."""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from tests.app.test_review import BREYER
from tests.conftest import LiveServer, serve
from tests.workers.simulated_disk import RecordingDisk, write_image
from workers.store import Store

CRASHES = 120 if os.environ.get("GM_TEST_FULL") == "1" else 24
GAMES = 4
# The Breyer's first 20 half-moves: legal, and no position in them ends the game.
MOVES = BREYER[:20]


@dataclass(slots=True)
class Played:
    """A game of the run: the disk's operation count when each step was acknowledged."""

    id: str
    tokens: dict[str, str]
    started_at: int
    moves_at: list[int] = field(default_factory=list)


async def _play(live: LiveServer, disk: RecordingDisk) -> Played:
    game_id, tokens = await live.started_game(clock={"initial": 3600})
    played = Played(game_id, tokens, disk.count)
    for ply, move in enumerate(MOVES):
        side = tokens["white" if ply % 2 == 0 else "black"]
        r = await live.client.post(
            f"/api/games/{game_id}/moves", json={"move": move, "ply": ply}, headers=live.auth(side)
        )
        assert r.status_code == 200, r.text
        played.moves_at.append(disk.count)
    return played


async def _check_crash(image_dir: Path, games: list[Played], point: int) -> int:
    """Start a server on a crash image and check its games; acknowledged moves checked."""
    checked = 0
    async with serve(image_dir) as live:
        for game in games:
            r = await live.client.get(f"/api/games/{game.id}")
            if game.started_at > point:
                # Not acknowledged: it may exist (committed, not yet answered) or not.
                assert r.status_code in (200, 404), r.text
                if r.status_code == 404:
                    continue
            assert r.status_code == 200, f"acknowledged game {game.id} lost at op {point}"
            sans = [m["san"] for m in r.json()["moves"]]
            acknowledged = sum(1 for at in game.moves_at if at <= point)
            assert sans == MOVES[: len(sans)], f"moves nobody played in {game.id} at op {point}"
            assert len(sans) >= acknowledged, f"acknowledged move lost in {game.id} at op {point}"
            checked += acknowledged
    return checked


async def test_a_server_restarted_after_power_loss_serves_every_acknowledged_move(
    tmp_path: Path,
) -> None:
    """At seeded crash points of a live server's run, a server started on what the disk could hold starts and serves every game and move it acknowledged, and nothing else."""
    data = tmp_path / "data"
    database = data / "grandmaster.sqlite3"
    disk = RecordingDisk()
    try:
        store = Store(database, connect=disk.connect)
        async with serve(data, store=store) as live:
            games = list(await asyncio.gather(*(_play(live, disk) for _ in range(GAMES))))
    finally:
        disk.unregister()
    rng = random.Random(12)
    first = min(g.started_at for g in games)
    points = [rng.randint(first, disk.count) for _ in range(CRASHES)]
    checked = 0
    for n, (point, image) in enumerate(disk.crash_images(points, rng)):
        image_dir = tmp_path / f"crash{n}"
        write_image(image, database, image_dir)
        checked += await _check_crash(image_dir, games, point)
    assert checked > 0
    print(f"{CRASHES} crashes, {disk.count} disk operations, {checked} acknowledged moves checked")
