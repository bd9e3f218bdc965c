"""The durable game log: SQLite in WAL mode, written by one thread with group commit.

The event loop never touches the database while serving. It hands records to
:meth:`Store.append` / :meth:`Store.create_game` and awaits a future; the writer thread
drains everything pending, writes it in one transaction (``synchronous=FULL``: the commit
is on disk when it returns), then settles the futures. A caller may acknowledge its
change only after the future resolved.

After a failed commit (disk full, I/O error), or if the writer thread itself fails, the
store refuses every later write with :class:`StoreUnavailable` and calls ``on_failure``
once: the process should then exit and be restarted, rebuilding from disk, so that the
in-memory games agree with what is really stored. Every write handed to the thread is
settled whatever happens; a write submitted after the thread ended fails at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS games (
    id TEXT PRIMARY KEY,
    setup TEXT NOT NULL,
    white_token TEXT NOT NULL,
    black_token TEXT NOT NULL,
    tournament TEXT,
    status TEXT,
    summary TEXT,
    snapshot TEXT,
    snapshot_seq INTEGER NOT NULL DEFAULT 0,
    last_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    game TEXT NOT NULL REFERENCES games(id),
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    ply INTEGER,
    body TEXT NOT NULL,
    line INTEGER NOT NULL DEFAULT 0,
    at_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (game, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tournaments (
    id TEXT PRIMARY KEY,
    setup TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tournament_events (
    tournament TEXT NOT NULL REFERENCES tournaments(id),
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (tournament, seq)
) WITHOUT ROWID;

-- Accounts and their bearer tokens (personal and OAuth); a token is kept as its SHA-256
-- digest only. An account's id is its name lowercased; scopes are space-separated.
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS access_tokens (
    digest TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL REFERENCES accounts(id),
    scopes TEXT NOT NULL,
    description TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);

-- Finished games whose review is asked for and not stored yet (app/review.py): a row
-- leaves once the game's review event is stored, so a restart resumes the others.
CREATE TABLE IF NOT EXISTS review_queue (
    game TEXT PRIMARY KEY REFERENCES games(id),
    requested_ms INTEGER NOT NULL
);
"""

# Columns added after the first release, for logs written before them.
# A game's status NULL means "not known yet" (a log written before the column): such games
# are replayed in full at start-up, and their status, summary and snapshot written then.
_MIGRATIONS = (
    ("events", "line", "ALTER TABLE events ADD COLUMN line INTEGER NOT NULL DEFAULT 0"),
    ("events", "at_ms", "ALTER TABLE events ADD COLUMN at_ms INTEGER NOT NULL DEFAULT 0"),
    ("games", "tournament", "ALTER TABLE games ADD COLUMN tournament TEXT"),
    ("games", "status", "ALTER TABLE games ADD COLUMN status TEXT"),
    ("games", "summary", "ALTER TABLE games ADD COLUMN summary TEXT"),
    ("games", "snapshot", "ALTER TABLE games ADD COLUMN snapshot TEXT"),
    (
        "games",
        "snapshot_seq",
        "ALTER TABLE games ADD COLUMN snapshot_seq INTEGER NOT NULL DEFAULT 0",
    ),
    ("games", "last_ms", "ALTER TABLE games ADD COLUMN last_ms INTEGER NOT NULL DEFAULT 0"),
)
_BACKFILL = (
    "UPDATE games SET tournament = json_extract(setup, '$.tournament') WHERE tournament IS NULL"
)
# A second move at the same ply of the same line (takebacks start a new line) cannot be
# stored, whatever the code above does.
_INDEXES = """
DROP INDEX IF EXISTS one_move_per_ply;
CREATE UNIQUE INDEX IF NOT EXISTS one_move_per_line_ply
    ON events (game, line, ply) WHERE type = 'move';
CREATE INDEX IF NOT EXISTS games_by_tournament ON games (tournament);
CREATE INDEX IF NOT EXISTS games_by_status ON games (status);
CREATE INDEX IF NOT EXISTS games_by_white_token ON games (white_token);
CREATE INDEX IF NOT EXISTS games_by_black_token ON games (black_token);
"""


class Cursor(Protocol):
    """What the store reads of a statement's result (a ``sqlite3.Cursor`` satisfies it)."""

    def fetchone(self) -> Any:
        """The next row, or None."""

    def fetchall(self) -> list[Any]:
        """The rows left."""

    def __iter__(self) -> Iterator[Any]:
        """The rows left, one by one."""


class Connection(Protocol):
    """What the store uses of a database connection: a ``sqlite3.Connection`` opened with
    ``isolation_level=None`` (the store issues BEGIN and COMMIT itself) satisfies it.

    Another SQLite binding may stand in (the power-loss tests run the store on a simulated
    disk) if it raises ``sqlite3.IntegrityError`` for a constraint and ``sqlite3.Error``
    for any other failure.
    """

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        """Run one statement."""

    def executescript(self, sql: str, /) -> object:
        """Run statements separated by semicolons."""

    def close(self) -> None:
        """Close the connection."""


def connect_sqlite3(path: Path) -> Connection:
    """A stdlib ``sqlite3`` connection to ``path`` as the store needs it (the default)."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


class StoreUnavailable(Exception):
    """The store cannot write now; nothing of the request was acknowledged."""


class StoreConflict(Exception):
    """A record collides with one already stored (duplicate key): a bug upstream, not I/O."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One serialised game event as it is stored and sent: ``body`` is its JSON text.

    ``line`` counts the takebacks before the event (moves are unique per line and ply);
    ``at_ms`` is the wall-clock time of the commit (Unix ms), which a broadcast delay
    counts from, also across restarts.
    """

    game: str
    seq: int
    type: str
    ply: int | None
    body: str
    line: int = 0
    at_ms: int = 0


@dataclass(frozen=True, slots=True)
class TournamentRecord:
    """One serialised tournament event; ``at_ms`` as in :class:`EventRecord`."""

    tournament: str
    seq: int
    type: str
    body: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class StoredGame:
    """A game as read back: its setup JSON, token hashes, snapshot and events.

    ``events`` (with their commit times and stored texts) start at some ``seq``: from the
    first event when ``snapshot`` is None, else a few before the snapshot's ``seq`` (the
    replay window of spectators' ``since=``); only those after the snapshot still have to
    be folded into it.
    """

    id: str
    setup: dict[str, Any]
    token_hashes: tuple[str, str]
    events: list[dict[str, Any]]
    # The commit time of each event (Unix ms; 0 for events stored before it was kept).
    times_ms: list[int] = field(default_factory=list)
    # Each event's stored JSON text, which is also what spectators are sent.
    bodies: list[str] = field(default_factory=list)
    snapshot: dict[str, Any] | None = None
    # None for a game stored before statuses were kept (it is replayed in full).
    status: str | None = None


@dataclass(frozen=True, slots=True)
class GameRow:
    """What the store keeps about a game beside its events, written with them.

    ``render()`` makes (summary, snapshot) JSON texts, called by the writer thread so
    that the serialisation never runs on the event loop: the summary is the game's public
    JSON (what lists show of a game not in memory), the snapshot its state at
    ``snapshot_seq``. ``last_ms`` is the commit time of the game's last event (Unix ms).
    """

    game: str
    status: str
    render: Callable[[], tuple[str, str]]
    snapshot_seq: int
    last_ms: int


@dataclass(frozen=True, slots=True)
class GameListRow:
    """One game of a list page: its position in the log, status and summary JSON text."""

    position: int
    id: str
    status: str | None
    summary: str | None


@dataclass(frozen=True, slots=True)
class StoredTournament:
    """A tournament as read back at start-up: its setup JSON and events with their times."""

    id: str
    setup: dict[str, Any]
    events: list[dict[str, Any]]
    times_ms: list[int]
    bodies: list[str]


# SQL and its parameters, or a function that makes them (called by the writer thread).
Statement = tuple[str, tuple[object, ...] | Callable[[], tuple[object, ...]]]


@dataclass(slots=True)
class _Write:
    statements: list[Statement]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    error: BaseException | None = field(default=None)


@dataclass(slots=True)
class WriteStats:
    """Counters read by ``/metrics``; written only by the writer thread."""

    batches: int = 0
    writes: int = 0


class Store:
    """SQLite game log with a single writer thread.

    Lifecycle: ``open()`` (blocking: run it in a thread), then ``load()`` and any number of
    awaited writes from one event loop, then ``close()``. ``max_pending`` bounds the
    writes waiting for the thread; beyond it a write is refused (StoreUnavailable).
    ``connect`` opens each connection (stdlib ``sqlite3`` unless a test gives another);
    the store sets the PRAGMAs durability depends on itself.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_batch: int = 1024,
        max_pending: int = 20_000,
        max_page_count: int | None = None,
        observe_commit: Callable[[float], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        connect: Callable[[Path], Connection] = connect_sqlite3,
    ) -> None:
        self.path = path
        self._open_connection = connect
        self._max_batch = max_batch
        self._max_page_count = max_page_count
        self._queue: queue.Queue[_Write | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None
        self._failure: BaseException | None = None
        self.stats = WriteStats()
        # Called from the writer thread with each commit's duration in seconds.
        self._observe_commit = observe_commit
        # Called once, from the writer thread, when the store starts refusing writes.
        self.on_failure = on_failure
        self._stopped = False

    # --- lifecycle (blocking; call from a thread or before the loop runs) ---

    def open(self) -> None:
        """Create the file and schema if needed and start the writer thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        conn.executescript(SCHEMA)
        migrated = False
        for table, column, statement in _MIGRATIONS:
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                conn.execute(statement)
                migrated = True
        if migrated:
            conn.execute(_BACKFILL)
        conn.executescript(_INDEXES)
        if self._max_page_count is not None:
            conn.execute(f"PRAGMA max_page_count = {int(self._max_page_count)}")
        self._conn = conn
        self._thread = threading.Thread(target=self._run, name="gm-store-writer", daemon=True)
        self._thread.start()

    def load_games(
        self,
        *,
        also: Iterable[str] = (),
        full_tournaments: Collection[str] = (),
        window: int = 64,
    ) -> list[StoredGame]:
        """Every game not known to be finished, and those ``also`` names, oldest first
        (blocking; a connection of its own).

        Games of ``full_tournaments`` come with every event and no snapshot (a broadcast
        delay rebuilds their past); the others with their snapshot and the events after
        it, plus up to ``window`` before it.
        """
        conn = self._connect()
        try:
            rows = conn.execute(
                f"SELECT {_GAME_COLUMNS} FROM games "  # noqa: S608 (constant column list)
                "WHERE status IS NULL OR status <> 'finished' ORDER BY rowid"
            ).fetchall()
            known = {row[0] for row in rows}
            extra = [g for g in dict.fromkeys(also) if g not in known]
            rows += _game_rows(conn, extra)
            return [_read_game(conn, row, full_tournaments, window) for row in rows]
        finally:
            conn.close()

    def load_game_ids(self, game_ids: Sequence[str], *, window: int = 64) -> list[StoredGame]:
        """The games named (those that exist), in the order given (blocking)."""
        conn = self._connect()
        try:
            return [_read_game(conn, row, (), window) for row in _game_rows(conn, game_ids)]
        finally:
            conn.close()

    def seat_of(self, digest: str) -> tuple[str, bool] | None:
        """The game a player token's digest belongs to and whether it is White's (blocking)."""
        conn = self._connect()
        try:
            for column, white in (("white_token", True), ("black_token", False)):
                row = conn.execute(
                    f"SELECT id FROM games WHERE {column} = ? LIMIT 1",  # noqa: S608 (constant)
                    (digest,),
                ).fetchone()
                if row is not None:
                    return row[0], white
            return None
        finally:
            conn.close()

    def finished_outcomes(self) -> dict[str, tuple[str, str | None]]:
        """(result, termination) of every finished tournament game, by id (blocking)."""
        conn = self._connect()
        try:
            return {
                game: (result, termination)
                for game, result, termination in conn.execute(
                    "SELECT id, json_extract(summary, '$.result'), "
                    "json_extract(summary, '$.termination') FROM games "
                    "WHERE tournament IS NOT NULL AND status = 'finished' AND summary IS NOT NULL"
                )
            }
        finally:
            conn.close()

    def released_after(self, tournament_id: str, cutoff_ms: int) -> list[str]:
        """Finished games of a tournament with an event committed after ``cutoff_ms``
        (blocking): those a broadcast delay has not shown in full yet."""
        conn = self._connect()
        try:
            return [
                game
                for (game,) in conn.execute(
                    "SELECT id FROM games WHERE tournament = ? AND status = 'finished' "
                    "AND last_ms > ?",
                    (tournament_id, cutoff_ms),
                )
            ]
        finally:
            conn.close()

    def list_games(
        self,
        *,
        status: str | None,
        tournament: str | None,
        before: int | None,
        limit: int,
        any_status_in: Collection[str] = (),
    ) -> list[GameListRow]:
        """Up to ``limit`` games, newest first, older than position ``before`` (blocking).

        Games of the tournaments ``any_status_in`` names pass the status filter whatever
        their stored status (a broadcast delay shows another one: the caller filters).
        """
        where = ["rowid < ?"]
        params: list[object] = [before if before is not None else 2**62]
        if status is not None:
            held = list(any_status_in)
            if held:
                marks = ",".join("?" * len(held))
                where.append(f"(status = ? OR tournament IN ({marks}))")
                params += [status, *held]
            else:
                where.append("status = ?")
                params.append(status)
        if tournament is not None:
            where.append("tournament = ?")
            params.append(tournament)
        conn = self._connect()
        try:
            return [
                GameListRow(position, game, row_status, text)
                for position, game, row_status, text in conn.execute(
                    # Only constant conditions are joined; every value is a parameter.
                    f"SELECT rowid, id, status, summary FROM games WHERE {' AND '.join(where)} "  # noqa: S608
                    "ORDER BY rowid DESC LIMIT ?",
                    (*params, limit),
                )
            ]
        finally:
            conn.close()

    def load_tournaments(self) -> list[StoredTournament]:
        """Every tournament with its events in ``seq`` order, oldest first (blocking)."""
        conn = self._connect()
        try:
            events: dict[str, list[dict[str, Any]]] = {}
            times: dict[str, list[int]] = {}
            bodies: dict[str, list[str]] = {}
            for tid, body, at_ms in conn.execute(
                "SELECT tournament, body, at_ms FROM tournament_events ORDER BY tournament, seq"
            ):
                events.setdefault(tid, []).append(json.loads(body))
                times.setdefault(tid, []).append(at_ms)
                bodies.setdefault(tid, []).append(body)
            return [
                StoredTournament(
                    tid,
                    json.loads(setup),
                    events.get(tid, []),
                    times.get(tid, []),
                    bodies.get(tid, []),
                )
                for tid, setup in conn.execute("SELECT id, setup FROM tournaments ORDER BY rowid")
            ]
        finally:
            conn.close()

    def close(self) -> None:
        """Finish pending writes, stop the thread and close the database."""
        if self._thread is not None:
            if self._thread.is_alive():
                self._queue.put(None)
            self._thread.join()
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def is_healthy(self) -> bool:
        """False once a commit has failed, or when the writer thread is not running."""
        return self._failure is None and self._thread is not None and self._thread.is_alive()

    @property
    def pending(self) -> int:
        """Writes waiting for the writer thread."""
        return self._queue.qsize()

    # --- writes (from the event loop) ---

    async def create_game(
        self, game_id: str, setup: dict[str, Any], token_hashes: tuple[str, str]
    ) -> None:
        """Durably record a new game. Raises StoreUnavailable, or StoreConflict on a reused id."""
        await self._submit([_game_row(game_id, setup, token_hashes)])

    async def append(
        self,
        records: Sequence[EventRecord],
        row: GameRow | None = None,
        *,
        review_ms: int | None = None,
    ) -> None:
        """Durably append events, with the game's ``row`` if given, all or none; with
        ``review_ms``, the game's review is asked for in the same transaction (as
        :meth:`queue_review` does), so a game that ends is never left unreviewed.

        Raises StoreUnavailable or StoreConflict.
        """
        statements = [_event_row(r) for r in records]
        if row is not None:
            statements.append(_update_row(row))
        if review_ms is not None:
            statements.append(_review_row(records[0].game, review_ms))
        await self._submit(statements)

    async def update_games(self, rows: Sequence[GameRow]) -> None:
        """Durably record games' statuses, summaries and snapshots (one transaction)."""
        await self._submit([_update_row(row) for row in rows])

    async def create_tournament(
        self, tournament_id: str, setup: dict[str, Any], records: Sequence[TournamentRecord]
    ) -> None:
        """Durably record a new tournament with its first events (the entries), all or none."""
        statements: list[Statement] = [
            (
                "INSERT INTO tournaments (id, setup) VALUES (?, ?)",
                (tournament_id, json.dumps(setup)),
            )
        ]
        await self._submit(statements + [_tournament_row(r) for r in records])

    async def append_tournament(
        self,
        records: Sequence[TournamentRecord],
        *,
        games: Sequence[tuple[str, dict[str, Any], tuple[str, str]]] = (),
    ) -> None:
        """Durably append tournament events, with the games they create, all or none.

        A paired round and its games are one transaction: after a crash either both are
        on disk or neither. ``games`` are (id, setup, token hashes) as for
        :meth:`create_game`.
        """
        statements = [_game_row(*game) for game in games]
        await self._submit(statements + [_tournament_row(r) for r in records])

    async def _submit(self, statements: list[Statement]) -> None:
        if self._failure is not None:
            raise StoreUnavailable(f"the store failed earlier: {self._failure}")
        if self._stopped or self._thread is None:
            raise StoreUnavailable("the history writer is not running")
        loop = asyncio.get_running_loop()
        write = _Write(statements, loop, loop.create_future())
        try:
            self._queue.put_nowait(write)
        except queue.Full:
            raise StoreUnavailable("too many writes pending") from None
        if self._stopped:
            # The writer ended between the check and the put: nobody will take it.
            self._fail_queued()
        await write.future

    # --- the writer thread ---

    def _connect(self) -> Connection:
        conn = self._open_connection(self.path)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn

    def _run(self) -> None:
        """The writer thread's body: whatever happens, every write it took is settled, and
        once it ends, every write still queued or submitted later fails at once."""
        batch: list[_Write] = []
        try:
            self._drain_batches(batch)
        except BaseException as exc:
            log.exception("the history writer failed, refusing further writes")
            self._fail(exc)
            for write in batch:
                write.error = StoreUnavailable(f"the history writer failed: {exc}")
            _settle_all(batch)
        finally:
            self._stopped = True
            self._fail_queued()

    def _drain_batches(self, batch: list[_Write]) -> None:
        while True:
            batch.clear()
            first = self._queue.get()
            if first is None:
                return
            batch.append(first)
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            self._write_batch(batch)
            if stop:
                return

    def _write_batch(self, batch: list[_Write]) -> None:
        conn = self._conn
        assert conn is not None
        if self._failure is None:
            started = time.perf_counter()
            try:
                self._execute(conn, batch)
            except sqlite3.Error as exc:
                log.error("history write failed, refusing further writes: %s", exc)
                self._fail(exc)
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.debug("rollback after a failed commit failed too", exc_info=True)
            else:
                self.stats.batches += 1
                self.stats.writes += len(batch)
                if self._observe_commit is not None:
                    try:
                        self._observe_commit(time.perf_counter() - started)
                    except Exception:
                        # A metric must never fail a write that is already committed.
                        log.exception("the commit observer failed")
        if self._failure is not None:
            for write in batch:
                write.error = StoreUnavailable(f"the history could not be written: {self._failure}")
        _settle_all(batch)

    def _fail(self, exc: BaseException) -> None:
        """Latch the failure and tell whoever asked (once): the process must restart."""
        first = self._failure is None
        self._failure = exc
        if first and self.on_failure is not None:
            try:
                self.on_failure(exc)
            except Exception:
                log.exception("the store's failure callback failed")

    def _fail_queued(self) -> None:
        """Fail every write left in the queue (the writer is gone)."""
        left: list[_Write] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item.error = StoreUnavailable("the history writer has stopped")
                left.append(item)
        _settle_all(left)

    @staticmethod
    def _execute(conn: Connection, batch: list[_Write]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        for write in batch:
            # A savepoint per write: a duplicate key fails that write alone, not the batch.
            conn.execute("SAVEPOINT write")
            try:
                for sql, params in write.statements:
                    conn.execute(sql, params() if callable(params) else params)
            except sqlite3.IntegrityError as exc:
                conn.execute("ROLLBACK TO write")
                write.error = StoreConflict(str(exc))
            except (ValueError, TypeError, KeyError) as exc:
                # A row that could not be serialised: that write fails, not the store.
                log.exception("a write could not be prepared")
                conn.execute("ROLLBACK TO write")
                write.error = StoreUnavailable(f"the write could not be prepared: {exc}")
            conn.execute("RELEASE write")
        conn.execute("COMMIT")

    # --- accounts and access tokens ---

    def load_access_tokens(self) -> list[AccessTokenRow]:
        """Every token not revoked (expired ones included), oldest first (blocking)."""
        conn = self._connect()
        try:
            return [
                AccessTokenRow(
                    digest=row[0],
                    id=row[1],
                    account=row[2],
                    name=row[3],
                    scopes=tuple(row[4].split()),
                    description=row[5],
                    created_ms=row[6],
                    expires_ms=row[7],
                    account_ms=row[8],
                )
                for row in conn.execute(
                    "SELECT t.digest, t.id, a.id, a.name, t.scopes, t.description, "
                    "t.created_ms, t.expires_ms, a.created_ms FROM access_tokens t "
                    "JOIN accounts a ON a.id = t.account WHERE t.revoked = 0 ORDER BY t.rowid"
                )
            ]
        finally:
            conn.close()

    async def create_access_token(self, row: AccessTokenRow) -> None:
        """Durably record a token, and its account unless it exists (one transaction).

        Raises StoreUnavailable, or StoreConflict on a reused digest or id.
        """
        await self._submit(_access_token_rows(row))

    async def revoke_access_token(self, token_id: str) -> None:
        """Durably mark a token revoked (nothing if there is none). Raises StoreUnavailable."""
        await self._submit([("UPDATE access_tokens SET revoked = 1 WHERE id = ?", (token_id,))])

    # --- the review queue ---

    def load_review_queue(self) -> list[tuple[str, int]]:
        """(game, requested_ms) of every review asked for and not stored, oldest first
        (blocking)."""
        conn = self._connect()
        try:
            return [
                (game, requested_ms)
                for game, requested_ms in conn.execute(
                    "SELECT game, requested_ms FROM review_queue ORDER BY requested_ms, rowid"
                )
            ]
        finally:
            conn.close()

    async def queue_review(self, game: str, requested_ms: int) -> None:
        """Durably ask for the review of ``game`` (a newer request replaces an older one).

        Raises StoreUnavailable, or StoreConflict for a game that is not stored.
        """
        await self._submit([_review_row(game, requested_ms)])

    async def dequeue_review(self, game: str, requested_ms: int) -> None:
        """Durably drop the request of ``requested_ms`` for ``game`` (a newer one stays).

        Raises StoreUnavailable.
        """
        await self._submit(
            [
                (
                    "DELETE FROM review_queue WHERE game = ? AND requested_ms = ?",
                    (game, requested_ms),
                )
            ]
        )


def _game_row(game_id: str, setup: dict[str, Any], token_hashes: tuple[str, str]) -> Statement:
    return (
        "INSERT INTO games (id, setup, white_token, black_token, tournament, status) "
        "VALUES (?, ?, ?, ?, ?, 'created')",
        (game_id, json.dumps(setup), *token_hashes, setup.get("tournament")),
    )


def _review_row(game: str, requested_ms: int) -> Statement:
    return (
        "INSERT INTO review_queue (game, requested_ms) VALUES (?, ?) "
        "ON CONFLICT (game) DO UPDATE SET requested_ms = excluded.requested_ms",
        (game, requested_ms),
    )


def _update_row(row: GameRow) -> Statement:
    def params() -> tuple[object, ...]:
        summary, snapshot = row.render()
        return (row.status, summary, snapshot, row.snapshot_seq, row.last_ms, row.game)

    return (
        "UPDATE games SET status = ?, summary = ?, snapshot = ?, snapshot_seq = ?, last_ms = ? "
        "WHERE id = ?",
        params,
    )


_GAME_COLUMNS = "id, setup, white_token, black_token, tournament, status, snapshot, snapshot_seq"
_GameColumns = tuple[str, str, str, str, "str | None", "str | None", "str | None", int]


def _game_rows(conn: Connection, game_ids: Sequence[str]) -> list[_GameColumns]:
    """The games' rows in the order of ``game_ids`` (missing ones left out)."""
    found: dict[str, _GameColumns] = {}
    ids = list(game_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT {_GAME_COLUMNS} FROM games WHERE id IN ({marks})"  # noqa: S608
        for row in conn.execute(query, chunk):
            found[row[0]] = row
    return [found[g] for g in ids if g in found]


def _read_game(
    conn: Connection, row: _GameColumns, full_tournaments: Collection[str], window: int
) -> StoredGame:
    game, setup, white, black, tournament, status, snapshot, snapshot_seq = row
    if snapshot is None or (tournament is not None and tournament in full_tournaments):
        snapshot, after = None, 0
    else:
        after = max(0, snapshot_seq - window)
    events, times, bodies = [], [], []
    for body, at_ms in conn.execute(
        "SELECT body, at_ms FROM events WHERE game = ? AND seq > ? ORDER BY seq", (game, after)
    ):
        events.append(json.loads(body))
        times.append(at_ms)
        bodies.append(body)
    return StoredGame(
        game,
        json.loads(setup),
        (white, black),
        events,
        times,
        bodies,
        None if snapshot is None else json.loads(snapshot),
        status,
    )


def _event_row(r: EventRecord) -> Statement:
    return (
        "INSERT INTO events (game, seq, type, ply, body, line, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (r.game, r.seq, r.type, r.ply, r.body, r.line, r.at_ms),
    )


def _tournament_row(r: TournamentRecord) -> Statement:
    return (
        "INSERT INTO tournament_events (tournament, seq, type, body, at_ms) VALUES (?, ?, ?, ?, ?)",
        (r.tournament, r.seq, r.type, r.body, r.at_ms),
    )


def _settle_all(batch: list[_Write]) -> None:
    """Resolve each write's future on its own loop, one callback per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Write]] = {}
    for write in batch:
        by_loop.setdefault(write.loop, []).append(write)
    for loop, writes in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, writes)
        except RuntimeError:
            log.debug("event loop closed before %d writes were settled", len(writes))


def _settle(writes: list[_Write]) -> None:
    for write in writes:
        if write.future.done():
            continue
        if write.error is None:
            write.future.set_result(None)
        else:
            write.future.set_exception(write.error)


# --- accounts and access tokens ---


@dataclass(frozen=True, slots=True)
class AccessTokenRow:
    """An account's bearer token as stored: the token's SHA-256 ``digest`` (never the
    token), its public ``id``, the account's id (its name lowercased) and name, scopes,
    and times in Unix ms (``account_ms``: when the account was created)."""

    digest: str
    id: str
    account: str
    name: str
    scopes: tuple[str, ...]
    description: str
    created_ms: int
    expires_ms: int
    account_ms: int


def _access_token_rows(row: AccessTokenRow) -> list[Statement]:
    return [
        (
            "INSERT OR IGNORE INTO accounts (id, name, created_ms) VALUES (?, ?, ?)",
            (row.account, row.name, row.account_ms),
        ),
        (
            "INSERT INTO access_tokens (digest, id, account, scopes, description, created_ms, "
            "expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                row.digest,
                row.id,
                row.account,
                " ".join(row.scopes),
                row.description,
                row.created_ms,
                row.expires_ms,
            ),
        ),
    ]
