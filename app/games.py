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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import chess

from app.auth import Seat, Tokens, new_id, new_token, token_digest
from app.errors import not_found
from engine.rules import commands as core
from engine.rules.clock import TimeControl
from engine.rules.game import GameSetup, GameState, Player, evolve, flag_deadline_ms
from engine.rules.pgn import export_pgn
from engine.rules.view import game_json
from engine.rules.wire import ColorName, EvalJSON, GameEvent, GameJSON, Mode, Result, Termination
from workers.archive import PgnArchive
from workers.store import EventRecord, Store, StoredGame

log = logging.getLogger(__name__)

Command = Callable[[GameState, int], list[GameEvent]]


class EventSink(Protocol):
    """Where committed events go (the live hub); called on the loop, must not block."""

    def publish(self, state: GameState, records: list[EventRecord]) -> None:
        """Deliver ``records`` (already stored, in ``seq`` order) of the game now at ``state``."""

    def game_added(self, game: str, tournament: str | None) -> None:
        """A game was created (tournament followers start following it)."""

    def spectators(self, game: str) -> int:
        """How many spectators follow ``game``."""


class NoSink:
    """An :class:`EventSink` that drops everything (no live channel)."""

    def publish(self, state: GameState, records: list[EventRecord]) -> None:
        """Drop the records."""

    def game_added(self, game: str, tournament: str | None) -> None:
        """Ignore the new game."""

    def spectators(self, game: str) -> int:
        """Nobody is watching."""
        return 0


@dataclass(eq=False, slots=True)
class LiveGame:
    """One game in memory; ``state`` changes only under ``lock`` and after a durable write."""

    state: GameState
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
    """Owns every live game. Create with the shared store, archive, tokens and clocks
    (``now_ms`` monotonic for game clocks, ``wall_ms`` Unix time for commit times)."""

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
    ) -> None:
        self._store = store
        # Unix ms: each event's commit time, which a broadcast delay counts from.
        self._wall_ms = wall_ms
        self._archive = archive
        self._tokens = tokens
        self._now_ms = now_ms
        self._site = site
        self.sink: EventSink = sink or NoSink()
        # Called after every durable change, after the sink (analysis follows moves).
        self.observers: list[Callable[[GameState, list[GameEvent]], None]] = []
        self._games: dict[str, LiveGame] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.moves_accepted = 0

    # --- lifecycle ---

    def restore(self, stored: list[StoredGame]) -> None:
        """Rebuild every game from the store; running clocks resume now."""
        now = self._now_ms()
        for item in stored:
            setup = _setup_from_record(item.setup)
            events: list[GameEvent] = item.events  # type: ignore[assignment]
            live = LiveGame(GameState.rebuild(setup, events, now))
            self._games[setup.id] = live
            white, black = item.token_hashes
            self._tokens.add_seat(white, Seat(setup.id, chess.WHITE))
            self._tokens.add_seat(black, Seat(setup.id, chess.BLACK))
            self._schedule_flag(live)
        log.info("restored %d games from the store", len(stored))

    async def close(self) -> None:
        """Record every running clock, cancel timers, wait for background tasks."""
        await self.checkpoint_clocks()
        for live in self._games.values():
            if live.timer is not None:
                live.timer.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

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

    # --- queries ---

    def get(self, game_id: str) -> LiveGame:
        """The game, or ApiError 404."""
        live = self._games.get(game_id)
        if live is None:
            raise not_found("game")
        return live

    def state_of(self, game_id: str) -> GameState | None:
        """The live state of a game, or None when there is no such game."""
        live = self._games.get(game_id)
        return None if live is None else live.state

    def __contains__(self, game_id: object) -> bool:
        return game_id in self._games

    def find(
        self, *, status: str | None = None, tournament: str | None = None
    ) -> Iterator[LiveGame]:
        """Games in creation order, filtered by status and tournament id."""
        for live in self._games.values():
            if status is not None and live.state.status != status:
                continue
            if tournament is not None and live.state.setup.tournament != tournament:
                continue
            yield live

    def spectators(self, game_id: str) -> int:
        """How many spectators follow the game now."""
        return self.sink.spectators(game_id)

    def view(self, game_id: str) -> GameJSON:
        """The game's public JSON now, spectator count included (ApiError 404 if unknown)."""
        state = self.get(game_id).state
        return game_json(state, self._now_ms(), spectators=self.sink.spectators(game_id))

    def now_ms(self) -> int:
        """The service's monotonic clock, the one every ``now_ms`` in the core comes from."""
        return self._now_ms()

    async def pgn(self, state: GameState) -> str:
        """The PGN of ``state`` (a game as someone sees it), rendered off the event loop."""
        return await self._archive.render(lambda: export_pgn(state, site=self._site))

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
        live = LiveGame(new.state)
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
        async with live.lock:
            now = self._now_ms()
            await self._commit(live, core.expire(live.state, now), now)
            await self._commit(live, command(live.state, now), now)
            return live.state

    # --- internals ---

    async def _commit(self, live: LiveGame, events: list[GameEvent], now: int) -> None:
        if not events:
            return
        at_ms = self._wall_ms()
        state = live.state
        records = []
        for event in events:
            state = evolve(state, event, now)
            records.append(_record(event, state.line, at_ms))
        await self._store.append(records)
        live.state = state
        self.moves_accepted += sum(1 for e in events if e["type"] == "move")
        # The change is durable and accepted from here on: a failing side effect is
        # logged, never turned into an error for a move that is on disk.
        _guarded(self.sink.publish, state, records)
        for observe in self.observers:
            _guarded(observe, state, events)
        _guarded(self._schedule_flag, live)
        if state.is_finished:
            _guarded(self._spawn, self._archive_pgn(state))

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


def _setup_from_record(data: dict[str, Any]) -> GameSetup:
    """Inverse of ``asdict(setup)``, the form in which the store keeps a game's setup."""
    return GameSetup(
        **{
            **data,
            "white": Player.from_json(data["white"]),
            "black": Player.from_json(data["black"]),
            "control": TimeControl(**data["control"]),
        }
    )
