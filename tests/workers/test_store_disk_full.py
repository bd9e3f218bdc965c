"""A disk that fills up in the middle of a batch (SQLITE_FULL on a write, or an I/O error
at fsync): the batch's writes are refused, the store refuses every later one and says so
once, and after a restart with space back the log holds every acknowledged write and
takes new ones. The store runs on the simulated disk of simulated_disk (no crash here:
the files stay as written)."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from pathlib import Path

import pytest

from app.factory import _read_games
from tests.workers.simulated_disk import RecordingDisk
from workers.store import EventRecord, Store, StoreUnavailable

GAMES = 8


def _move(game: str, seq: int) -> EventRecord:
    body = json.dumps({"type": "move", "seq": seq, "ply": seq - 1, "uci": f"m{seq}"})
    return EventRecord(game, seq, "move", seq - 1, body, 0, 1_700_000_000_000 + seq)


async def _moves(store: Store, game: str, seqs: range) -> dict[int, bool]:
    """Moves of one game one after another until one is refused: seq -> acknowledged."""
    outcome: dict[int, bool] = {}
    for seq in seqs:
        try:
            await store.append([_move(game, seq)])
        except StoreUnavailable:
            outcome[seq] = False
            break
        outcome[seq] = True
    return outcome


def _stored_moves(database: Path) -> set[tuple[str, int]]:
    conn = sqlite3.connect(database)
    try:
        return {(g, s) for g, s in conn.execute("SELECT game, seq FROM events")}
    finally:
        conn.close()


async def _fill_mid_batch(
    seed: int, database: Path, *, at_sync: bool
) -> dict[tuple[str, int], bool]:
    """Moves of several games until the disk fills at a seeded write (or fails a sync);
    every move's outcome, by (game, seq)."""
    rng = random.Random(seed)
    disk = RecordingDisk()
    failures: list[BaseException] = []
    store = Store(database, connect=disk.connect, on_failure=failures.append)
    try:
        await asyncio.to_thread(store.open)
        games = [f"g{i}" for i in range(GAMES)]
        await asyncio.gather(*(store.create_game(g, {"id": g}, ("w", "b")) for g in games))
        before = await asyncio.gather(*(_moves(store, g, range(1, 6)) for g in games))
        assert all(all(o.values()) for o in before)
        if at_sync:
            disk.fail_syncs()
        else:
            # Some writes of the next batches land, then one fails: mid-batch.
            disk.fill_after(rng.randint(1, 40))
        after = await asyncio.gather(*(_moves(store, g, range(6, 200)) for g in games))
        assert not store.is_healthy
        assert len(failures) == 1
        assert isinstance(failures[0], sqlite3.Error)
        with pytest.raises(StoreUnavailable):
            await store.append([_move("g0", 999)])
    finally:
        await asyncio.to_thread(store.close)
        disk.unregister()
    outcome = {(g, seq): True for g in games for seq in range(1, 6)}
    for game, moves in zip(games, after, strict=True):
        outcome |= {(game, seq): ok for seq, ok in moves.items()}
    return outcome


def _restart(database: Path) -> None:
    """Start on the log as the server does, with space back, and store a new game."""
    store = Store(database)
    store.open()
    try:
        store.load_access_tokens()
        _read_games(store, store.load_tournaments(), 1_700_000_000_000)

        async def new_writes() -> None:
            await store.create_game("after", {"id": "after"}, ("w", "b"))
            await store.append([_move("after", 1)])

        asyncio.run(new_writes())
    finally:
        store.close()


@pytest.mark.parametrize("seed", range(6))
def test_a_disk_full_mid_batch_refuses_it_and_keeps_every_acknowledged_move(
    seed: int, tmp_path: Path
) -> None:
    """SQLITE_FULL on a write inside a batch: its moves are refused and not stored, later writes refused, and a restart keeps every acknowledged move and takes new ones."""
    database = tmp_path / "grandmaster.sqlite3"
    outcome = asyncio.run(_fill_mid_batch(seed, database, at_sync=False))
    refused = {key for key, ok in outcome.items() if not ok}
    assert refused
    _restart(database)
    stored = _stored_moves(database)
    assert {key for key, ok in outcome.items() if ok} <= stored
    # A write that failed was rolled back: a refused move is not there either.
    assert not refused & stored
    assert ("after", 1) in stored


def test_a_failed_sync_refuses_the_batch_and_keeps_every_acknowledged_move(tmp_path: Path) -> None:
    """An fsync that fails (ENOSPC found late): the batch is refused, later writes too, and a restart keeps every acknowledged move and takes new ones."""
    database = tmp_path / "grandmaster.sqlite3"
    outcome = asyncio.run(_fill_mid_batch(0, database, at_sync=True))
    refused = {key for key, ok in outcome.items() if not ok}
    assert refused
    _restart(database)
    stored = _stored_moves(database)
    assert {key for key, ok in outcome.items() if ok} <= stored
    # Written but not known to be durable: a refused move may be there or not (the
    # client was told 503, not that it was lost), but nothing beyond it.
    assert stored - outcome.keys() == {("after", 1)}
    assert ("after", 1) in stored
