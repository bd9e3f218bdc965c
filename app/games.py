"""Live games: the state of each game, its lock, its flag timer, and the path to disk.

Every change follows one path (:meth:`GameService._commit`): the pure core decides the
events, they are folded into a new state, serialised once, durably appended, and only
then does the new state replace the old one and the events go out to subscribers. A
refused or failed command leaves the game exactly as it was.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import chess

from app.auth import Seat, Tokens, new_id, new_token, token_digest
from app.errors import not_found
from app.game_views import GameViews
from engine.review.review import asks_for_review
from engine.rules import commands as core
from engine.rules.clock import TimeControl
from engine.rules.game import (
    GameSetup,
    GameState,
    Player,
    evolve,
    evolve_all,
    flag_deadline_ms,
)
from engine.rules.pgn import export_pgn
from engine.rules.snapshot import SNAPSHOT_EVERY, SnapshotJSON, from_snapshot, snapshot_json
from engine.rules.view import game_json
from engine.rules.wire import (
    ColorName,
    EvalJSON,
    GameEvent,
    Mode,
    Result,
    ReviewJSON,
    Termination,
)
from workers.archive import PgnArchive
from workers.store import EventRecord, GameRow, Store, StoredGame, StoreUnavailable

log = logging.getLogger(__name__)

Command = Callable[[GameState, int], list[GameEvent]]
# A game asked for this recently (ms) stays in memory whatever the cache size: its caller
# may still be on its way to pinning it.
RECENT_MS = 10_000
# Finished games beyond twice the cache (plus this) lose that protection.
RECENT_CEILING = 256


class EventSink(Protocol):
    """Where committed events go (the live hub); called on the loop, must not block."""

    def publish(self, state: GameState, records: list[EventRecord], before: GameState) -> None:
        """Deliver ``records`` (already stored, in ``seq`` order) of the game now at ``state``
        (``before`` is the game as it was before them)."""

    def game_loaded(self, game: str, window: list[EventRecord]) -> None:
        """A game was read back from the store; ``window`` is its last events."""

    def game_added(self, game: str, tournament: str | None) -> None:
        """A game was created (tournament followers start following it)."""

    def spectators(self, game: str) -> int:
        """How many spectators follow ``game``."""

    def is_pinned(self, game: str) -> bool:
        """Whether ``game`` must stay in memory (spectators, events not yet released)."""

    def game_evicted(self, game: str) -> None:
        """``game`` left memory: drop what is kept about it (it is loaded again on demand)."""


class NoSink:
    """An :class:`EventSink` that drops everything (no live channel)."""

    def publish(self, state: GameState, records: list[EventRecord], before: GameState) -> None:
        """Drop the records."""

    def game_loaded(self, game: str, window: list[EventRecord]) -> None:
        """Nothing to seed."""

    def game_added(self, game: str, tournament: str | None) -> None:
        """Ignore the new game."""

    def spectators(self, game: str) -> int:
        """Nobody is watching."""
        return 0

    def is_pinned(self, game: str) -> bool:
        """Nothing holds a game."""
        return False

    def game_evicted(self, game: str) -> None:
        """Nothing to drop."""


@dataclass(eq=False, slots=True)
class LiveGame:
    """One game in memory; ``state`` changes only under ``lock`` and after a durable write."""

    state: GameState
    # SHA-256 digests of the players' tokens (their seats leave memory with the game).
    digests: tuple[str, str] = ("", "")
    # The ``seq`` of the snapshot the store holds of this game.
    snapshot_seq: int = 0
    # When the game was last asked for (``now_ms``): recently used games are not evicted.
    used_ms: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    timer: asyncio.TimerHandle | None = None

    @property
    def id(self) -> str:
        """The game id."""
        return self.state.setup.id


@dataclass(frozen=True, slots=True)
class NewGame:
    """What ``create`` hands back once: the game and its two player tokens."""

    state: GameState
    tokens: dict[ColorName, str]
    # SHA-256 digests of the tokens: the only form in which they are stored.
    digests: tuple[str, str] = ("", "")

    @property
    def row(self) -> tuple[str, dict[str, Any], tuple[str, str]]:
        """What the store keeps of a new game: (id, setup, token digests)."""
        return self.state.setup.id, asdict(self.state.setup), self.digests


class GameService:
    """Owns the games in memory. Create with the shared store, archive, tokens and clocks
    (``now_ms`` monotonic for game clocks, ``wall_ms`` Unix time for commit times).

    Every unfinished game is in memory; finished ones are loaded from the store on demand
    (:meth:`fetch`) and the least recently used beyond ``cache_size`` leave memory again,
    unless the sink pins them (spectators, events a broadcast delay still holds).
    """

    def __init__(
        self,
        store: Store,
        archive: PgnArchive,
        tokens: Tokens,
        *,
        now_ms: Callable[[], int],
        wall_ms: Callable[[], int],
        site: str,
        sink: EventSink | None = None,
        cache_size: int = 256,
    ) -> None:
        self._store = store
        # Unix ms: each event's commit time, which a broadcast delay counts from.
        self._wall_ms = wall_ms
        self._archive = archive
        self._tokens = tokens
        self._now_ms = now_ms
        self._site = site
        self.sink: EventSink = sink or NoSink()
        # Set when games are reviewed: a commit that ends a game stores its review request
        # in the same transaction (app/review.py).
        self.queues_reviews = False
        # Called after every durable change, after the sink (analysis follows moves).
        self.observers: list[Callable[[GameState, list[GameEvent]], None]] = []
        self._games: dict[str, LiveGame] = {}
        # The finished games in memory, least recently used first.
        self._finished: OrderedDict[str, LiveGame] = OrderedDict()
        self._cache_size = cache_size
        self._loading: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Each game's JSON and PGN per ``seq``, for as long as the game is in memory.
        self.views = GameViews()
        self.moves_accepted = 0

    # --- lifecycle ---

    def restore(self, stored: list[StoredGame]) -> list[GameRow]:
        """Rebuild games read from the store; running clocks resume now.

        Returns the rows to write for games stored before statuses and snapshots were
        kept (write them with ``Store.update_games``, then call :meth:`evict`).
        """
        now = self._now_ms()
        unknown = []
        for item in stored:
            live = self._register(item, _rebuilt(item, now), asked=False)
            if item.status is None:
                unknown.append(self._row(live.state, max(item.times_ms, default=0)))
                live.snapshot_seq = live.state.seq
        log.info("restored %d games from the store", len(stored))
        return unknown

    async def close(self) -> None:
        """Record every running clock, cancel timers, wait for background tasks."""
        await self.checkpoint_clocks()
        for live in self._games.values():
            if live.timer is not None:
                live.timer.cancel()
        for task in self._loading.values():
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.views.close()

    async def checkpoint_clocks(self) -> None:
        """Persist a ``clock`` event for every game whose clock runs (one group commit).

        A restart resumes each clock from its last recorded event, so this bounds what a
        crash can give back to the side to move. Failures are logged, not raised.
        """
        running = [g for g in self._games.values() if g.state.clock.running is not None]
        results = await asyncio.gather(
            *(self.run(live, core.checkpoint) for live in running), return_exceptions=True
        )
        for live, result in zip(running, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("could not record the clock of game %s: %s", live.id, result)

    async def run_checkpoints(self, interval_s: float) -> None:
        """Forever: :meth:`checkpoint_clocks` every ``interval_s`` seconds."""
        while True:
            await asyncio.sleep(interval_s)
            await self.checkpoint_clocks()
            _guarded(self.evict)

    # --- queries ---

    def get(self, game_id: str) -> LiveGame:
        """The game if it is in memory, or ApiError 404 (see :meth:`fetch`)."""
        live = self._games.get(game_id)
        if live is None:
            raise not_found("game")
        return live

    def state_of(self, game_id: str) -> GameState | None:
        """The state of a game in memory, or None (no such game, or not loaded)."""
        live = self._games.get(game_id)
        return None if live is None else live.state

    def __contains__(self, game_id: object) -> bool:
        """Whether the game is in memory (every unfinished game is)."""
        return game_id in self._games

    async def fetch(self, game_id: str) -> LiveGame:
        """The game, loaded from the store if it is not in memory; ApiError 404 if unknown."""
        live = self._games.get(game_id)
        if live is not None:
            self._touch(live)
            return live
        found = await self.fetch_many([game_id])
        if not found:
            raise not_found("game")
        return found[0]

    async def fetch_many(self, game_ids: Iterable[str]) -> list[LiveGame]:
        """The games named that exist, in the order given, loading the missing ones
        together (one read of the store, rebuilt in a thread).

        Games asked for stay in memory for at least ``RECENT_MS`` (a spectator's
        subscription then pins them for as long as it lasts).
        """
        wanted = list(dict.fromkeys(game_ids))
        missing = [g for g in wanted if g not in self._games and g not in self._loading]
        if missing:
            task = asyncio.get_running_loop().create_task(self._load(missing))
            for game_id in missing:
                self._loading[game_id] = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        waits = {self._loading[g] for g in wanted if g in self._loading}
        if waits:
            # Shielded: a caller that goes away does not cancel a load others wait for.
            await asyncio.shield(asyncio.gather(*waits))
        found = []
        for game_id in wanted:
            live = self._games.get(game_id)
            if live is not None:
                self._touch(live)
                found.append(live)
        return found

    def _touch(self, live: LiveGame) -> None:
        live.used_ms = self._now_ms()
        if live.id in self._finished:
            self._finished.move_to_end(live.id)

    async def _load(self, game_ids: list[str]) -> None:
        try:
            now = self._now_ms()
            try:
                loaded = await asyncio.to_thread(self._read, game_ids, now)
            except sqlite3.Error as exc:
                log.error("could not read games from the store: %s", exc)
                raise StoreUnavailable(f"the history cannot be read: {exc}") from None
            for item, state in loaded:
                if item.id not in self._games:
                    self._register(item, state)
                    window = [_stored_record(item, i) for i in range(len(item.events))]
                    _guarded(self.sink.game_loaded, item.id, window)
        finally:
            for game_id in game_ids:
                self._loading.pop(game_id, None)

    def _read(self, game_ids: list[str], now: int) -> list[tuple[StoredGame, GameState]]:
        """Read and rebuild games (in a thread: the rebuild is pure, the read blocking).

        A game whose stored form cannot be rebuilt is left out (and logged), not the batch.
        """
        games = []
        for item in self._store.load_game_ids(game_ids):
            try:
                games.append((item, _rebuilt(item, now)))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("game %s cannot be rebuilt from the store: %s", item.id, exc)
        return games

    def _register(self, item: StoredGame, state: GameState, *, asked: bool = True) -> LiveGame:
        used_ms = self._now_ms() if asked else self._now_ms() - RECENT_MS
        live = LiveGame(state, digests=item.token_hashes, used_ms=used_ms)
        if item.snapshot is not None:
            live.snapshot_seq = item.snapshot["seq"]
        self._games[item.id] = live
        white, black = item.token_hashes
        self._tokens.add_seat(white, Seat(item.id, chess.WHITE))
        self._tokens.add_seat(black, Seat(item.id, chess.BLACK))
        if state.is_finished:
            self._finished[item.id] = live
        else:
            self._schedule_flag(live)
        return live

    def evict(self) -> None:
        """Let the least recently used finished games beyond the cache size leave memory
        (those the sink pins, and those a command holds, stay)."""
        excess = len(self._finished) - self._cache_size
        if excess <= 0:
            return
        now = self._now_ms()
        # "Recently asked for" keeps a game only while the cache is not far over its size:
        # readers cannot hold memory without bound.
        honour_recent = len(self._finished) <= 2 * self._cache_size + RECENT_CEILING
        for game_id, live in list(self._finished.items()):
            if excess <= 0:
                break
            recent = honour_recent and now - live.used_ms < RECENT_MS
            if live.lock.locked() or recent or self.sink.is_pinned(game_id):
                continue
            del self._finished[game_id]
            self._games.pop(game_id, None)
            for digest in live.digests:
                self._tokens.remove_seat(digest)
            self.views.forget(game_id)
            self.sink.game_evicted(game_id)
            excess -= 1

    @property
    def loaded(self) -> int:
        """How many games are in memory."""
        return len(self._games)

    def find(
        self, *, status: str | None = None, tournament: str | None = None
    ) -> Iterator[LiveGame]:
        """Games in memory (every unfinished one), filtered by status and tournament id."""
        for live in self._games.values():
            if status is not None and live.state.status != status:
                continue
            if tournament is not None and live.state.setup.tournament != tournament:
                continue
            yield live

    def spectators(self, game_id: str) -> int:
        """How many spectators follow the game now."""
        return self.sink.spectators(game_id)

    def now_ms(self) -> int:
        """The service's monotonic clock, the one every ``now_ms`` in the core comes from."""
        return self._now_ms()

    def json_body(self, state: GameState) -> bytes:
        """``GET /api/games/{id}`` of ``state`` (a game as someone sees it) as UTF-8 JSON,
        with its clock read now; encoded once per ``seq`` (see :mod:`app.game_views`)."""
        game_id = state.setup.id
        spectators = self.sink.spectators(game_id)
        return self.views.json_body(state, self._now_ms(), spectators, keep=game_id in self._games)

    async def pgn(self, state: GameState) -> str:
        """The PGN of ``state`` (a game as someone sees it), rendered off the event loop
        once per ``seq``. Raises RenderBusy when too many renders are under way."""

        def render() -> Awaitable[str]:
            return self._archive.render(lambda: export_pgn(state, site=self._site))

        return await self.views.pgn(state, render, keep=state.setup.id in self._games)

    # --- commands ---

    async def create(
        self,
        white: Player,
        black: Player,
        control: TimeControl,
        *,
        mode: Mode = "server",
        fen: str | None = None,
        event: str = "Grandmaster game",
    ) -> NewGame:
        """Create and durably store a game; returns it with both player tokens."""
        new = self.prepare(white, black, control, mode=mode, fen=fen, event=event)
        await self._store.create_game(*new.row)
        self.adopt(new)
        return new

    def prepare(
        self,
        white: Player,
        black: Player,
        control: TimeControl,
        *,
        mode: Mode = "server",
        fen: str | None = None,
        event: str = "Grandmaster game",
        tournament: str | None = None,
        round_no: int | None = None,
        board_no: int | None = None,
    ) -> NewGame:
        """A new game that is neither stored nor known yet: store ``row``, then :meth:`adopt`.

        Tournaments store a round's games in the same transaction as the round.
        """
        game_id = new_id()
        while game_id in self._games:
            game_id = new_id()
        setup = GameSetup(
            id=game_id,
            white=white,
            black=black,
            control=control,
            mode=mode,
            initial_fen=fen or chess.STARTING_FEN,
            event=event,
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            tournament=tournament,
            round=round_no,
            board=board_no,
        )
        tokens: dict[ColorName, str] = {"white": new_token(), "black": new_token()}
        digests = (token_digest(tokens["white"]), token_digest(tokens["black"]))
        return NewGame(GameState.new(setup), tokens, digests)

    def adopt(self, new: NewGame) -> LiveGame:
        """Serve a game whose ``row`` is durably stored."""
        setup = new.state.setup
        live = LiveGame(new.state, digests=new.digests)
        self._games[setup.id] = live
        self._tokens.add_seat(new.digests[0], Seat(setup.id, chess.WHITE))
        self._tokens.add_seat(new.digests[1], Seat(setup.id, chess.BLACK))
        self.sink.game_added(setup.id, setup.tournament)
        return live

    async def start(self, live: LiveGame) -> GameState:
        """Start the game's clock."""
        return await self.run(live, core.start)

    async def move(
        self,
        live: LiveGame,
        text: str,
        *,
        by: chess.Color | None,
        ply: int | None,
        clock_ms: int | None,
    ) -> GameState:
        """Play a move; returns the state once it is durably stored (or was already)."""

        def command(state: GameState, now: int) -> list[GameEvent]:
            return core.play(state, text, now, by=by, ply=ply, clock_ms=clock_ms)

        return await self.run(live, command)

    async def resign(self, live: LiveGame, color: chess.Color) -> GameState:
        """``color`` resigns."""
        return await self.run(live, lambda s, now: core.resign(s, color, now))

    async def draw(self, live: LiveGame, color: chess.Color, action: core.DrawAction) -> GameState:
        """A player's draw offer, answer or claim."""
        return await self.run(live, lambda s, now: core.draw(s, color, action, now))

    async def adjudicate(self, live: LiveGame, result: Result, reason: str) -> GameState:
        """The arbiter's result."""
        return await self.run(live, lambda s, now: core.adjudicate(s, result, now, reason))

    async def decide(self, live: LiveGame, result: Result, termination: Termination) -> GameState:
        """The arbiter's decision on a tournament board (also corrects a finished game)."""
        return await self.run(live, lambda s, now: core.decide(s, result, termination, now))

    async def record_eval(self, game_id: str, evaluation: EvalJSON) -> None:
        """Record an engine evaluation of the game's current position (dropped if stale)."""
        live = self.get(game_id)
        await self.run(live, lambda s, _now: core.record_eval(s, evaluation))

    async def record_review(self, game_id: str, review: ReviewJSON) -> GameState:
        """Record a finished game's review (dropped if the game's moves changed meanwhile).

        Raises ApiError 404 for an unknown game and StoreUnavailable.
        """
        live = await self.fetch(game_id)
        return await self.run(live, lambda s, _now: core.record_review(s, review))

    async def run(self, live: LiveGame, command: Command) -> GameState:
        """Apply ``command`` under the game's lock, after recording any flag fall first.

        Raises the core's refusals (nothing changes) and StoreUnavailable (nothing is
        acknowledged; the caller answers 503). Cancelling the caller does not cancel the
        command: it runs to its end under the lock in a task of its own, so a write that
        reaches the disk is always applied to the game in memory too.
        """
        task = asyncio.get_running_loop().create_task(self._run_locked(live, command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_settled)
        return await asyncio.shield(task)

    async def _run_locked(self, live: LiveGame, command: Command) -> GameState:
        while True:
            if self._games.get(live.id) is not live:
                # The game left memory after the caller got it: act on the one in memory.
                live = await self.fetch(live.id)
            await live.lock.acquire()
            if self._games.get(live.id) is live:
                break
            # Evicted while this command waited for the lock: try again on the new one.
            live.lock.release()
        try:
            now = self._now_ms()
            await self._commit(live, core.expire(live.state, now), now)
            await self._commit(live, command(live.state, now), now)
            return live.state
        finally:
            live.lock.release()

    # --- internals ---

    async def _commit(self, live: LiveGame, events: list[GameEvent], now: int) -> None:
        if not events:
            return
        at_ms = self._wall_ms()
        before = live.state
        state = before
        records = []
        for event in events:
            state = evolve(state, event, now)
            records.append(_record(event, state.line, at_ms))
        row = None
        if (
            state.status != before.status
            or state.is_finished
            or state.seq - live.snapshot_seq >= SNAPSHOT_EVERY
        ):
            row = self._row(state, at_ms)
        review_ms = at_ms if self.queues_reviews and asks_for_review(state, events) else None
        await self._store.append(records, row, review_ms=review_ms)
        live.state = state
        live.used_ms = now
        if row is not None:
            live.snapshot_seq = state.seq
        if self._games.get(live.id) is live:
            if state.is_finished:
                self._finished[live.id] = live
                self._finished.move_to_end(live.id)
            else:
                self._finished.pop(live.id, None)
        self.moves_accepted += sum(1 for e in events if e["type"] == "move")
        # The change is durable and accepted from here on: a failing side effect is
        # logged, never turned into an error for a move that is on disk.
        _guarded(self.sink.publish, state, records, before)
        for observe in self.observers:
            _guarded(observe, state, events)
        _guarded(self._schedule_flag, live)
        if state.is_finished:
            _guarded(self._spawn, self._archive_pgn(state))
            _guarded(self.evict)

    def _row(self, state: GameState, at_ms: int) -> GameRow:
        """What the store keeps beside the events of ``state``'s game; its JSON is made
        by the writer thread (``state`` is immutable), not on the loop."""
        now = self._now_ms()

        def render() -> tuple[str, str]:
            summary = json.dumps(game_json(state, now), separators=(",", ":"))
            return summary, json.dumps(snapshot_json(state), separators=(",", ":"))

        return GameRow(state.setup.id, state.status, render, state.seq, at_ms)

    def _schedule_flag(self, live: LiveGame) -> None:
        if live.timer is not None:
            live.timer.cancel()
            live.timer = None
        deadline = flag_deadline_ms(live.state)
        if deadline is None:
            return
        delay_s = max(0.0, (deadline - self._now_ms()) / 1000) + 0.001
        loop = asyncio.get_running_loop()
        live.timer = loop.call_later(delay_s, lambda: self._spawn(self._flag(live)))

    async def _flag(self, live: LiveGame) -> None:
        """The flag timer fired: record the fall (or re-arm when it fired early)."""
        live.timer = None
        try:
            async with live.lock:
                now = self._now_ms()
                await self._commit(live, core.expire(live.state, now), now)
        except Exception as exc:
            if not self._store.is_healthy:
                # The store refuses writes until the process restarts: nothing to retry.
                log.warning("flag fall of game %s not recorded: %s", live.id, exc)
                return
            log.error("could not record the flag fall of game %s: %s", live.id, exc)
            loop = asyncio.get_running_loop()
            live.timer = loop.call_later(1.0, lambda: self._spawn(self._flag(live)))
            return
        if live.timer is None and not live.state.is_finished:
            self._schedule_flag(live)

    async def _archive_pgn(self, state: GameState) -> None:
        try:
            await self._archive.write(state.setup.id, lambda: export_pgn(state, site=self._site))
        except Exception:
            log.exception("could not archive the PGN of game %s", state.setup.id)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _guarded(effect: Callable[..., object], *args: object) -> None:
    """Run a side effect of a committed change; log its failure instead of raising."""
    try:
        effect(*args)
    except Exception:
        log.exception("a side effect of a committed change failed (%s)", effect)


def _settled(task: asyncio.Task[GameState]) -> None:
    """Retrieve the outcome of a command whose caller may have gone (no 'never retrieved')."""
    if not task.cancelled():
        task.exception()


def _record(event: GameEvent, line: int, at_ms: int) -> EventRecord:
    ply = event["ply"] if event["type"] == "move" else None
    body = json.dumps(event, separators=(",", ":"))
    return EventRecord(event["game"], event["seq"], event["type"], ply, body, line, at_ms)


def _stored_record(item: StoredGame, index: int) -> EventRecord:
    """The ``index``-th event read back with a game, as it was stored."""
    event = item.events[index]
    at_ms = item.times_ms[index] if index < len(item.times_ms) else 0
    return EventRecord(item.id, event["seq"], event["type"], None, item.bodies[index], 0, at_ms)


def _rebuilt(item: StoredGame, now: int) -> GameState:
    """The state of a stored game: its snapshot with the later events folded in."""
    setup = game_setup_from_record(item.setup)
    events: list[GameEvent] = item.events  # type: ignore[assignment]
    if item.snapshot is None:
        return GameState.rebuild(setup, events, now)
    snapshot: SnapshotJSON = item.snapshot  # type: ignore[assignment]
    state = from_snapshot(setup, snapshot, now)
    return evolve_all(state, (e for e in events if e["seq"] > state.seq), now)


def game_setup_from_record(data: dict[str, Any]) -> GameSetup:
    """Inverse of ``asdict(setup)``, the form in which the store keeps a game's setup."""
    return GameSetup(
        **{
            **data,
            "white": Player.from_json(data["white"]),
            "black": Player.from_json(data["black"]),
            "control": TimeControl(**data["control"]),
        }
    )
