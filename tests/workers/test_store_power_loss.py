"""Power loss under the history log: the store runs on a simulated disk that records every
write and sync, and at thousands of seeded crash points the disk's possible contents are
rebuilt (unsynced writes dropped, torn at a sector, reordered; see simulated_disk). Each
image is recovered as the server does at start, which must not raise, and must hold every
acknowledged write, whole, and nothing that was never written.

One workload run gives many crashes: the run is cut at each crash point afterwards. Set
GM_TEST_FULL=1 for many more workloads and crashes (``make test-full``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.factory import _read_games
from tests.workers.simulated_disk import ApswConnection, RecordingDisk, Sync, write_image
from workers.store import (
    AccessTokenRow,
    EventRecord,
    GameRow,
    Store,
    StoreConflict,
    StoreUnavailable,
    TournamentRecord,
)

FULL = os.environ.get("GM_TEST_FULL") == "1"
# Workloads (each a seed) and crash points cut from each: 8 x 128 = 1,024 crashes by
# default, 40 x 512 = 20,480 with GM_TEST_FULL=1.
WORKLOADS = 40 if FULL else 8
CRASHES_PER_WORKLOAD = 512 if FULL else 128
GAMES = 6
MOVES_PER_GAME = 40
# Every this many moves a game's row (status, summary, snapshot) is written with the move.
SNAPSHOT_EVERY = 5

Key = tuple[str, str, int]  # (table, owner, seq) or (table, id, 0)


@dataclass(slots=True)
class Submitted:
    """One write handed to the store: the rows it adds, by key, with their text."""

    rows: dict[Key, str]
    # The disk's operation count when the caller saw the write acknowledged.
    acked_at: int | None = None


@dataclass(slots=True)
class Ledger:
    """Every write of a workload, and what the disk recorded."""

    writes: list[Submitted] = field(default_factory=list)

    async def track(
        self, disk: RecordingDisk, rows: dict[Key, str], write: Awaitable[None]
    ) -> None:
        submitted = Submitted(rows)
        self.writes.append(submitted)
        try:
            await write
        except (StoreUnavailable, StoreConflict):
            return
        submitted.acked_at = disk.count

    @property
    def acknowledged(self) -> int:
        return sum(1 for w in self.writes if w.acked_at is not None)


def _move(game: str, seq: int, line: int = 0) -> EventRecord:
    # About the size of a real move event (it carries a FEN, SAN and clocks).
    fen = f"{game}/{seq}/".ljust(90, "p")
    body = json.dumps({"type": "move", "seq": seq, "ply": seq - 1, "uci": f"m{seq}", "fen": fen})
    return EventRecord(game, seq, "move", seq - 1, body, line, 1_700_000_000_000 + seq)


def _row(game: str, seq: int, status: str) -> GameRow:
    def render() -> tuple[str, str]:
        return json.dumps({"id": game, "status": status}), json.dumps({"seq": seq, "fen": "x"})

    return GameRow(game, status, render, seq, 1_700_000_000_000 + seq)


async def _play(
    store: Store, disk: RecordingDisk, ledger: Ledger, game: str, rng: random.Random
) -> None:
    """One game: created, then moves one after another, its row written now and then."""
    await ledger.track(
        disk,
        {("games", game, 0): game},
        store.create_game(game, {"id": game, "tournament": None}, (f"w-{game}", f"b-{game}")),
    )
    for seq in range(1, MOVES_PER_GAME + 1):
        record = _move(game, seq)
        last = seq == MOVES_PER_GAME
        row = None
        if last or seq % SNAPSHOT_EVERY == 0:
            row = _row(game, seq, "finished" if last and rng.random() < 0.5 else "started")
        await ledger.track(disk, {("events", game, seq): record.body}, store.append([record], row))


async def _run_tournament(store: Store, disk: RecordingDisk, ledger: Ledger, tid: str) -> None:
    """A tournament: created with its entries, then two rounds, each with its games."""
    entries = [TournamentRecord(tid, s, "entry", json.dumps({"seq": s}), s) for s in (1, 2)]
    await ledger.track(
        disk,
        {("tournament_events", tid, r.seq): r.body for r in entries}
        | {("tournaments", tid, 0): tid},
        store.create_tournament(tid, {"id": tid, "delay_s": 60}, entries),
    )
    for round_seq in (3, 4):
        record = TournamentRecord(
            tid, round_seq, "round", json.dumps({"seq": round_seq}), round_seq
        )
        game = f"{tid}-r{round_seq}"
        await ledger.track(
            disk,
            {("tournament_events", tid, round_seq): record.body, ("games", game, 0): game},
            store.append_tournament(
                [record], games=[(game, {"id": game, "tournament": tid}, ("w", "b"))]
            ),
        )


async def _create_token(store: Store, disk: RecordingDisk, ledger: Ledger, n: int) -> None:
    token = AccessTokenRow(f"digest{n}", f"tok{n}", "alice", "Alice", ("board:play",), "", 1, 2, 1)
    await ledger.track(
        disk, {("access_tokens", token.digest, 0): token.id}, store.create_access_token(token)
    )


async def _phase(
    store: Store, disk: RecordingDisk, ledger: Ledger, rng: random.Random, tag: str
) -> None:
    tasks: list[Awaitable[None]] = [
        _play(store, disk, ledger, f"{tag}g{i}", rng) for i in range(GAMES)
    ]
    tasks.append(_run_tournament(store, disk, ledger, f"{tag}t"))
    tasks.append(_create_token(store, disk, ledger, ord(tag)))
    await asyncio.gather(*tasks)


def _workload(seed: int, database: Path) -> tuple[RecordingDisk, Ledger]:
    """Run the store on a recording disk: open, play, close, reopen, play on, close."""
    rng = random.Random(seed)
    disk = RecordingDisk()
    ledger = Ledger()
    # Checkpoints (WAL pages copied into the database, then the WAL restarted) come every
    # 1,000 pages by default: sooner here, so that crashes fall in and after them.
    checkpoint_pages = rng.choice((32, 200))

    def connect(path: Path) -> ApswConnection:
        conn = disk.connect(path)
        conn.execute(f"PRAGMA wal_autocheckpoint = {checkpoint_pages}")
        return conn

    try:
        for tag in ("a", "b"):
            store = Store(database, connect=connect, max_batch=rng.choice((1, 4, 64)))
            store.open()
            try:
                asyncio.run(_phase(store, disk, ledger, rng, tag))
            finally:
                store.close()
    finally:
        disk.unregister()
    return disk, ledger


def _crash_points(disk: RecordingDisk, rng: random.Random, n: int) -> list[int]:
    """Half anywhere, half just before or after a sync (a commit's durable instant)."""
    syncs = [i for i, op in enumerate(disk.ops) if isinstance(op, Sync)]
    points = [rng.randint(0, disk.count) for _ in range(n // 2)]
    points += [rng.choice(syncs) + rng.choice((0, 1)) for _ in range(n - n // 2)]
    return points


def _recover(database: Path, *, write: bool) -> dict[Key, str]:
    """Open and read the log as the server's start does (every call must succeed), and
    if ``write``, store a new game with a move; then what the log holds, by key."""
    store = Store(database)
    store.open()
    # A read-only connection that has read (so holds the log open) until after the
    # store's close makes that close not the last one, and the last one is read-only:
    # nobody checkpoints (three fsyncs) a copy about to be deleted. Recovery itself (the
    # store's open and reads) is unchanged.
    reader = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    reader.execute("SELECT count(*) FROM sqlite_master").fetchall()
    try:
        try:
            store.load_access_tokens()
            tournaments = store.load_tournaments()
            games, _ = _read_games(store, tournaments, 1_700_000_000_000)
            if write:
                asyncio.run(_write_after_recovery(store))
        finally:
            store.close()
        rows = _stored_rows(reader)
    finally:
        reader.close()
    for game in games:
        # A game's row is written with its event: its snapshot is never ahead of them.
        if game.snapshot is not None:
            assert ("events", game.id, game.snapshot["seq"]) in rows, f"{game.id} ahead"
    return rows


async def _write_after_recovery(store: Store) -> None:
    await store.create_game("after", {"id": "after"}, ("w", "b"))
    await store.append([_move("after", 1)])


def _stored_rows(conn: sqlite3.Connection) -> dict[Key, str]:
    rows: dict[Key, str] = {}
    for game, seq, body in conn.execute("SELECT game, seq, body FROM events"):
        rows["events", game, seq] = body
    for tid, seq, body in conn.execute("SELECT tournament, seq, body FROM tournament_events"):
        rows["tournament_events", tid, seq] = body
    for (game,) in conn.execute("SELECT id FROM games"):
        rows["games", game, 0] = game
    for (tid,) in conn.execute("SELECT id FROM tournaments"):
        rows["tournaments", tid, 0] = tid
    for digest, token_id in conn.execute("SELECT digest, id FROM access_tokens"):
        rows["access_tokens", digest, 0] = token_id
    return rows


def _check(ledger: Ledger, point: int, stored: dict[Key, str]) -> int:
    """Assert every write acknowledged before ``point`` is stored, each write is stored
    whole or not at all, and nothing else is; the number of acknowledged moves checked."""
    expected: dict[Key, str] = {}
    checked = 0
    for write in ledger.writes:
        present = [key for key in write.rows if key in stored]
        if write.acked_at is not None and write.acked_at <= point:
            checked += sum(1 for key in write.rows if key[0] == "events")
            assert len(present) == len(write.rows), (
                f"acknowledged write lost at op {point}: {write.rows}"
            )
        else:
            assert not present or len(present) == len(write.rows), f"write torn apart at op {point}"
        expected |= write.rows
    for key, text in stored.items():
        assert expected.get(key) == text, f"a row nobody wrote at op {point}: {key}"
    # A game's moves are written one after another: what survives is a prefix of them.
    seqs: dict[str, list[int]] = {}
    for table, game, seq in sorted(stored):
        if table == "events":
            seqs.setdefault(game, []).append(seq)
    for game, found in seqs.items():
        assert found == list(range(1, len(found) + 1)), f"a gap in {game} at op {point}"
    return checked


@pytest.mark.parametrize("seed", range(WORKLOADS))
def test_every_acknowledged_write_survives_power_loss(seed: int, tmp_path: Path) -> None:
    """At each seeded crash point of a workload the recovered log opens and loads, and holds every write acknowledged before the crash, whole, and nothing invented."""
    database = tmp_path / "live" / "grandmaster.sqlite3"
    disk, ledger = _workload(seed, database)
    assert ledger.acknowledged == len(ledger.writes)
    rng = random.Random(seed)
    checked = 0
    for n, (point, image) in enumerate(
        disk.crash_images(_crash_points(disk, rng, CRASHES_PER_WORKLOAD), rng)
    ):
        recovered = write_image(image, database, tmp_path / f"crash{n}")
        # Every 16th recovered log also takes new writes, as a restarted server's does.
        stored = _recover(recovered, write=n % 16 == 0)
        if n % 16 == 0:
            assert {("games", "after", 0), ("events", "after", 1)} <= stored.keys()
            stored = {key: text for key, text in stored.items() if key[1] != "after"}
        checked += _check(ledger, point, stored)
        for file in recovered.parent.iterdir():
            file.unlink()
        recovered.parent.rmdir()
    # The last crash points come after most acknowledgements: the checks were not vacuous.
    assert checked > 0
    print(
        f"seed {seed}: {CRASHES_PER_WORKLOAD} crashes, {disk.count} disk operations, {checked} acknowledged moves checked"
    )
