"""Live tournaments: entries, rounds, results and their path to disk.

A tournament changes the way a game does: the pure core (:mod:`engine.tournament.state`)
decides the events, they are durably appended, and only then does the new state replace
the old one and the events go to the publisher. A round and the games it creates are one
transaction. Results are the games' own: :meth:`TournamentService.on_game_commit` folds
each finished (or reopened) game into its board.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from app.auth import new_id
from app.errors import not_found
from app.games import GameService, NewGame
from app.schemas import CreateTournamentIn, EntrantIn
from engine.rules.clock import TimeControl
from engine.rules.errors import AlreadyStarted, GameOver, InvalidInput
from engine.rules.game import GameState, Player
from engine.rules.wire import GameEvent, Result, Termination
from engine.tournament import state as core
from engine.tournament.berger import berger_round, double_round_robin_round
from engine.tournament.errors import NoPairing
from engine.tournament.standings import validate_tiebreaks
from engine.tournament.state import (
    RESULT_EVENTS,
    Bye,
    Entrant,
    FinishedGame,
    GameOutcome,
    TournamentSetup,
    TournamentState,
    game_result,
    with_game_result,
    with_game_results,
)
from engine.tournament.trf import trf_for_pairing
from engine.tournament.view import standings_json
from engine.tournament.wire import EntrantJSON, PairingResult, StandingJSON, TournamentEvent
from workers.pairing import PairingEngine, PairingFailed
from workers.store import Store, StoredTournament, TournamentRecord

log = logging.getLogger(__name__)
_T = TypeVar("_T")
# A command on a tournament: its events and the games they create (stored together).
Change = Callable[[TournamentState], tuple[list[TournamentEvent], list[NewGame]]]


class TournamentSink(Protocol):
    """Where committed tournament changes go (the publisher); called on the loop."""

    def publish_tournament(self, state: TournamentState, records: list[TournamentRecord]) -> None:
        """Deliver stored events of the tournament now at ``state``."""


class NoTournamentSink:
    """A :class:`TournamentSink` that drops everything."""

    def publish_tournament(self, state: TournamentState, records: list[TournamentRecord]) -> None:
        """Drop the records."""


@dataclass(eq=False, slots=True)
class LiveTournament:
    """One tournament in memory; ``state`` changes under ``lock`` after a durable write."""

    state: TournamentState
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    timer: asyncio.TimerHandle | None = None

    @property
    def id(self) -> str:
        """The tournament id."""
        return self.state.id


@dataclass(frozen=True, slots=True)
class PairedRound:
    """What pairing a round hands back once: the round and its games' player tokens."""

    state: TournamentState
    round: int
    tokens: dict[str, dict[str, str]]


class StandingsCache:
    """The standings of recent tournament states, computed once per state.

    Standings cost milliseconds (15 ms at 500 players and 9 rounds), too much for every
    read. States are immutable values, so the same object always has the same
    standings; the last two states of each tournament are kept (the live one and the
    public one).
    """

    def __init__(self) -> None:
        self._recent: dict[str, list[tuple[TournamentState, list[StandingJSON]]]] = {}

    def of(self, state: TournamentState) -> list[StandingJSON]:
        """The standings of ``state``."""
        recent = self._recent.setdefault(state.id, [])
        for known, value in recent:
            if known is state:
                return value
        value = standings_json(state)
        recent.insert(0, (state, value))
        del recent[2:]
        return value


class TournamentService:
    """Owns every tournament; creates and starts the games of its rounds through ``games``."""

    def __init__(
        self,
        store: Store,
        games: GameService,
        pairing: PairingEngine,
        *,
        wall_ms: Callable[[], int],
        sink: TournamentSink | None = None,
    ) -> None:
        self._store = store
        self._games = games
        self._pairing = pairing
        self._wall_ms = wall_ms
        self.sink: TournamentSink = sink or NoTournamentSink()
        self._tournaments: dict[str, LiveTournament] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._engine_calls: set[asyncio.Task[Any]] = set()

    # --- lifecycle ---

    def restore(
        self,
        stored: list[StoredTournament],
        outcomes: Mapping[str, tuple[Result, Termination | None]],
    ) -> None:
        """Rebuild every tournament, fold in its games' results, resume its rounds.

        Results come from the games in memory, else from ``outcomes``: the (result,
        termination) of the finished games the store holds.
        """

        def outcome(game_id: str) -> GameOutcome | None:
            state = self._games.state_of(game_id)
            if state is not None or game_id not in outcomes:
                return state
            return FinishedGame(*outcomes[game_id])

        for item in stored:
            setup = setup_from_record(item.setup)
            events: list[TournamentEvent] = item.events  # type: ignore[assignment]
            state = with_game_results(TournamentState.rebuild(setup, events), outcome)
            live = LiveTournament(state)
            self._tournaments[setup.id] = live
            self._resume_round(live)
        log.info("restored %d tournaments from the store", len(stored))

    async def close(self) -> None:
        """Cancel round timers and pairings still waiting for their engine (nothing of them
        is stored yet), then wait for the commands under way."""
        for live in self._tournaments.values():
            if live.timer is not None:
                live.timer.cancel()
        for engine in self._engine_calls:
            engine.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- queries ---

    def get(self, tournament_id: str) -> LiveTournament:
        """The tournament, or ApiError 404."""
        live = self._tournaments.get(tournament_id)
        if live is None:
            raise not_found("tournament")
        return live

    def state_of(self, tournament_id: str) -> TournamentState | None:
        """The live state of a tournament, or None when there is no such tournament."""
        live = self._tournaments.get(tournament_id)
        return None if live is None else live.state

    def all(self) -> Iterator[LiveTournament]:
        """Tournaments, oldest first."""
        return iter(list(self._tournaments.values()))

    # --- commands ---

    async def create(
        self,
        body: CreateTournamentIn,
        *,
        owner: str | None = None,
        description: str | None = None,
        info: Mapping[str, str] | None = None,
    ) -> TournamentState:
        """Create a tournament with its initial players (one transaction); a broadcast
        may name its ``owner`` account, a ``description`` and lichess's ``info``."""
        return await self._shielded(self._create(body, owner, description, dict(info or {})))

    async def _create(
        self,
        body: CreateTournamentIn,
        owner: str | None,
        description: str | None,
        info: dict[str, str],
    ) -> TournamentState:
        if body.format == "swiss" and body.rounds is None:
            raise InvalidInput("a Swiss needs its number of rounds")
        if body.format != "swiss" and body.rounds is not None:
            raise InvalidInput("only a Swiss has a number of rounds")
        if body.format == "broadcast" and body.mode != "relay":
            raise InvalidInput("a broadcast is relayed: its mode is relay")
        tiebreaks = validate_tiebreaks(body.tiebreaks) if body.tiebreaks is not None else ()
        tournament_id = new_id()
        while tournament_id in self._tournaments:
            tournament_id = new_id()
        setup = TournamentSetup(
            id=tournament_id,
            name=body.name,
            format=body.format,
            control=TimeControl.from_seconds(body.clock.initial, body.clock.increment),
            mode=body.mode,
            swiss_rounds=body.rounds or 0,
            tiebreaks=tiebreaks,
            bye_points=float(body.bye_points),
            delay_s=body.delay,
            relay_url=body.relay_url,
            pairing_system=self._pairing_system(body.format),
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            site=body.site,
            city=body.city,
            federation=body.federation,
            start_date=body.start_date,
            end_date=body.end_date,
            arbiter=body.arbiter,
            owner=owner,
            description=description,
            info=info,
        )
        state = TournamentState(setup)
        events: list[TournamentEvent] = []
        entries = [_entrant_json(player) for player in body.players]
        if body.format == "swiss":
            entries = core.initial_order(entries)
        for entry in entries:
            new = core.add_player(state, entry)
            state = core.evolve_all(state, new)
            events += new
        records = self._records(events)
        await self._store.create_tournament(tournament_id, setup_to_record(setup), records)
        live = LiveTournament(state)
        self._tournaments[tournament_id] = live
        self._publish(state, records)
        return state

    async def add_player(self, live: LiveTournament, player: EntrantIn) -> TournamentState:
        """A late entry (before the next round is paired)."""
        return await self._run(live, lambda s: core.add_player(s, _entrant_json(player)))

    async def withdraw(self, live: LiveTournament, player_id: str) -> TournamentState:
        """Withdraw a player from the next round on."""
        self._require_player(live, player_id)
        return await self._run(live, lambda s: core.withdraw(s, player_id))

    async def request_bye(
        self, live: LiveTournament, player_id: str, round_no: int, points: float
    ) -> TournamentState:
        """A requested half- or zero-point bye for a round not yet paired."""
        self._require_player(live, player_id)
        return await self._run(live, lambda s: core.request_bye(s, player_id, round_no, points))

    async def pair_next(self, live: LiveTournament, start_at: str | None) -> PairedRound:
        """Pair the next round, store it with its games, and start them (or schedule it).

        Raises RoundUnfinished, TournamentFinished, NoPairing (the core's refusals), and
        StoreUnavailable (nothing was paired). Runs to its end even if the caller is
        cancelled (see :meth:`_shielded`).
        """
        return await self._shielded(self._pair_next(live, start_at))

    async def _pair_next(self, live: LiveTournament, start_at: str | None) -> PairedRound:
        async with live.lock:
            state = live.state
            round_no = core.next_round(state)
            # The engine may run for minutes and nothing is written before it answers: its
            # own task, which a shutdown cancels (the engine's process is killed with it).
            engine = asyncio.get_running_loop().create_task(self._pair(state, round_no))
            self._engine_calls.add(engine)
            try:
                pairs, byes = await engine
            finally:
                self._engine_calls.discard(engine)
            news: list[NewGame] = []
            boards: list[tuple[str, str, str | None]] = []
            for board, (white, black) in enumerate(pairs, start=1):
                new = self._games.prepare(
                    _player(state.player(white)),
                    _player(state.player(black)),
                    state.setup.control,
                    mode=state.setup.mode,
                    event=state.setup.name,
                    tournament=state.id,
                    round_no=round_no,
                    board_no=board,
                )
                news.append(new)
                boards.append((white, black, new.state.setup.id))
            events = core.pair_round(state, round_no, boards, byes, start_at)
            records = self._records(events)
            await self._store.append_tournament(records, games=[new.row for new in news])
            for new in news:
                self._games.adopt(new)
            # Results may have come in while the engine ran: fold into the state as it is now.
            live.state = core.evolve_all(live.state, events)
            self._publish(live.state, records)
            tokens = {
                new.state.setup.id: {str(k): v for k, v in new.tokens.items()} for new in news
            }
        self._resume_round(live)
        return PairedRound(live.state, round_no, tokens)

    async def set_result(
        self, live: LiveTournament, round_no: int, board: int, result: PairingResult
    ) -> TournamentState:
        """Set or correct a board's result: its game is ended (or corrected) with it."""
        try:
            pairing = next(p for p in live.state.round(round_no).pairings if p.board == board)
        except (KeyError, StopIteration):
            raise not_found("board in this round") from None
        if pairing.game is None:
            raise not_found("game on this board")
        outcome, termination = game_result(result)
        await self._games.decide(await self._games.fetch(pairing.game), outcome, termination)
        return live.state

    def on_game_commit(self, game: GameState, events: list[GameEvent]) -> None:
        """Game observer: a game of a tournament ended or reopened, so its board changes."""
        tournament_id = game.setup.tournament
        if tournament_id is None or not any(e["type"] in RESULT_EVENTS for e in events):
            return
        live = self._tournaments.get(tournament_id)
        if live is None:
            return
        live.state = with_game_result(live.state, game)

    # --- internals ---

    async def run(self, live: LiveTournament, command: Change) -> TournamentState:
        """Apply ``command`` under the tournament's lock: the events it returns, with the
        games it prepared (``GameService.prepare``), are stored in one transaction, then
        the games are served and the events published.

        Raises what the command raises (nothing changes) and StoreUnavailable. Runs to
        its end even if the caller is cancelled.
        """
        return await self._shielded(self._run_locked(live, command))

    async def _run(
        self, live: LiveTournament, command: Callable[[TournamentState], list[TournamentEvent]]
    ) -> TournamentState:
        return await self.run(live, lambda state: (command(state), []))

    async def _run_locked(self, live: LiveTournament, command: Change) -> TournamentState:
        async with live.lock:
            events, news = command(live.state)
            if events:
                records = self._records(events)
                await self._store.append_tournament(records, games=[new.row for new in news])
                for new in news:
                    self._games.adopt(new)
                live.state = core.evolve_all(live.state, events)
                self._publish(live.state, records)
            return live.state

    async def _shielded(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run a command in a task of its own that the caller's cancellation cannot stop:
        what reaches the disk is always applied in memory too."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda t: None if t.cancelled() else t.exception())
        return await asyncio.shield(task)

    def _publish(self, state: TournamentState, records: list[TournamentRecord]) -> None:
        """Hand committed events on; a failure here is logged (the change is durable)."""
        try:
            self.sink.publish_tournament(state, records)
        except Exception:
            log.exception("publishing tournament %s failed", state.id)

    async def _pair(
        self, state: TournamentState, round_no: int
    ) -> tuple[list[tuple[str, str]], list[Bye]]:
        """(white id, black id) boards and the byes of ``round_no``."""
        if state.setup.is_round_robin:
            return _berger(state, round_no)
        numbers = state.by_number()
        try:
            # Writing the TRF takes milliseconds for large fields: not on the loop.
            trf = await asyncio.to_thread(trf_for_pairing, state, round_no)
            paired = await self._pairing.pair(trf)
        except PairingFailed as exc:
            log.error("pairing engine failed: %s", exc)
            raise NoPairing(f"the pairing engine failed: {exc}") from None
        pairs: list[tuple[str, str]] = []
        byes: list[Bye] = []
        for white, black in paired:
            if white not in numbers or (black != 0 and black not in numbers):
                raise NoPairing(f"the pairing engine named an unknown player ({white}, {black})")
            if black == 0:
                byes.append(Bye(numbers[white].id, state.setup.bye_points, "pairing"))
            else:
                pairs.append((numbers[white].id, numbers[black].id))
        byes += core.requested_byes(state, round_no)
        return pairs, byes

    def _resume_round(self, live: LiveTournament) -> None:
        """Start the current round now, or arm a timer for its scheduled start."""
        rnd = live.state.current_round
        if rnd is None or rnd.started or rnd.is_broadcast:
            return
        if live.timer is not None:
            live.timer.cancel()
            live.timer = None
        delay_s = 0.0
        if rnd.start_at is not None:
            when = datetime.fromisoformat(rnd.start_at.replace("Z", "+00:00"))
            delay_s = max(0.0, (when.timestamp() * 1000 - self._wall_ms()) / 1000)
        loop = asyncio.get_running_loop()
        live.timer = loop.call_later(delay_s, lambda: self._spawn(self._start_round(live)))

    async def _start_round(self, live: LiveTournament) -> None:
        """Start every game of the current round (server clocks), then record it."""
        live.timer = None
        rnd = live.state.current_round
        if rnd is None or rnd.started:
            return
        try:
            if live.state.setup.mode == "server":
                # All at once, so that the starts share commits and the boards' clocks
                # start together.
                # A game to start is unfinished, so in memory; one decided before the
                # start (a forfeit) may have left memory and needs nothing.
                games = [
                    self._games.get(p.game)
                    for p in rnd.pairings
                    if p.game is not None and p.game in self._games
                ]
                waiting = [g for g in games if g.state.status == "created"]
                results = await asyncio.gather(
                    *(self._games.start(g) for g in waiting), return_exceptions=True
                )
                for result in results:
                    if isinstance(result, BaseException) and not isinstance(
                        result, AlreadyStarted | GameOver
                    ):
                        raise result
            await self._run(live, lambda s: core.start_round(s, rnd.number))
        except Exception as exc:
            # The store refuses writes: try again rather than leave the round unstarted.
            log.error("could not start round %d of %s: %s", rnd.number, live.id, exc)
            loop = asyncio.get_running_loop()
            live.timer = loop.call_later(2.0, lambda: self._spawn(self._start_round(live)))

    def _records(self, events: Sequence[TournamentEvent]) -> list[TournamentRecord]:
        at_ms = self._wall_ms()
        return [
            TournamentRecord(
                e["tournament"], e["seq"], e["type"], json.dumps(e, separators=(",", ":")), at_ms
            )
            for e in events
        ]

    def _pairing_system(self, format_: str) -> str:
        if format_ == "swiss":
            return self._pairing.name
        if format_ == "broadcast":
            return "none: boards come from the games relayed"
        return "FIDE Berger tables (C.05 Annex 1)"

    def _require_player(self, live: LiveTournament, player_id: str) -> None:
        try:
            live.state.player(player_id)
        except KeyError:
            raise not_found("player in this tournament") from None

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _berger(state: TournamentState, round_no: int) -> tuple[list[tuple[str, str]], list[Bye]]:
    """A round robin round from the Berger tables; withdrawn players' opponents sit out."""
    count = len(state.players)
    if state.setup.format == "double_round_robin":
        table = double_round_robin_round(count, round_no)
    else:
        table = berger_round(count, round_no)
    numbers = state.by_number()
    pairs: list[tuple[str, str]] = []
    seated: set[str] = set()
    for white_no, black_no in table:
        white, black = numbers[white_no], numbers[black_no]
        if white.plays_in(round_no) and black.plays_in(round_no):
            pairs.append((white.id, black.id))
            seated |= {white.id, black.id}
    byes = [
        Bye(p.id, 0.0, "free") for p in state.players if p.plays_in(round_no) and p.id not in seated
    ]
    return pairs, byes


def _entrant_json(player: EntrantIn) -> EntrantJSON:
    return {
        "id": new_id(),
        "number": 0,
        "name": player.name,
        "rating": player.rating,
        "title": player.title,
        "fide_id": player.fide_id,
        "federation": player.federation,
    }


def _player(entrant: Entrant) -> Player:
    return Player(entrant.name, entrant.rating, entrant.title, entrant.fide_id)


def setup_to_record(setup: TournamentSetup) -> dict[str, Any]:
    """The stored JSON of a tournament's setup."""
    return asdict(setup)


def setup_from_record(data: dict[str, Any]) -> TournamentSetup:
    """Inverse of :func:`setup_to_record`."""
    fields = dict(data)
    fields["control"] = TimeControl(**fields["control"])
    fields["tiebreaks"] = tuple(fields["tiebreaks"])
    return TournamentSetup(**fields)
