"""What the public sees, and when: the broadcast delay between the services and the hub.

Every committed game and tournament event passes through :class:`Broadcast` on its way to
spectators. Without a delay it goes on at once. A tournament with a delay of ``d``
seconds (anti-cheating at real events) holds each event back until ``d`` seconds after
its commit (``at_ms``, wall-clock, kept in the store so a restart resumes the schedule),
then folds it into the *public* state of its game or tournament and hands it to the hub.
Public REST, streams, PGN, TRF and standings read those public states; the operator (and
a player, for its own game) reads the live ones.

Releases are kept in order by one FIFO per game or tournament with one timer for its
head, so equal release times never swap two events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from app.errors import not_found
from app.hub import REPLAY_HISTORY, Hub
from app.tournaments import StandingsCache, setup_from_record
from engine.rules.game import GameState, evolve_all
from engine.rules.wire import GameEvent, Result, Termination
from engine.tournament import state as tcore
from engine.tournament.state import (
    RESULT_EVENTS,
    FinishedGame,
    GameOutcome,
    TournamentState,
    with_game_result,
    with_game_results,
)
from engine.tournament.view import round_json, tournament_json
from engine.tournament.wire import TournamentEvent
from workers.store import EventRecord, StoredGame, StoredTournament, TournamentRecord

log = logging.getLogger(__name__)

# Standings are recomputed at most this often per tournament (results come in bursts).
STANDINGS_COALESCE_S = 0.25


@dataclass(eq=False, slots=True)
class _Queue:
    """Events of one game or tournament waiting for their release time (wall ms)."""

    items: deque[tuple[int, list[Any]]] = field(default_factory=deque)
    timer: asyncio.TimerHandle | None = None


class Broadcast:
    """The public side of games and tournaments; an ``EventSink`` and a ``TournamentSink``.

    ``live_state(id)`` and ``live_tournament(id)`` return a game's or tournament's live
    state, None for an unknown id: without a delay the public sees exactly that, and only
    delayed tournaments (and their games) have public states of their own here. ``now_ms``
    is the services' monotonic clock and ``wall_ms`` Unix time in ms.
    """

    def __init__(
        self,
        hub: Hub,
        live_state: Callable[[str], GameState | None],
        live_tournament: Callable[[str], TournamentState | None],
        standings: StandingsCache,
        *,
        now_ms: Callable[[], int],
        wall_ms: Callable[[], int],
    ) -> None:
        self.hub = hub
        self._live_state = live_state
        self._live_tournament = live_tournament
        self.standings = standings
        self._now_ms = now_ms
        self._wall_ms = wall_ms
        self._delays_ms: dict[str, int] = {}
        self._games: dict[str, GameState] = {}
        self._tournaments: dict[str, TournamentState] = {}
        self._queues: dict[tuple[str, str], _Queue] = {}
        self._standings_due: dict[str, asyncio.TimerHandle] = {}
        # The last tournament message per tournament, for the state it was built from.
        self._messages: dict[str, tuple[TournamentState, str]] = {}

    # --- public views ---

    def game(self, game_id: str) -> GameState:
        """The game as the public sees it now; ApiError 404 for an unknown id."""
        state = self._public_state(game_id)
        if state is None:
            raise not_found("game")
        return state

    def tournament(self, tournament_id: str) -> TournamentState | None:
        """The tournament as the public sees it now (None if unknown)."""
        public = self._tournaments.get(tournament_id)
        return public if public is not None else self._live_tournament(tournament_id)

    def delayed_tournaments(self) -> list[str]:
        """The tournaments whose public view runs behind."""
        return list(self._tournaments)

    def is_delayed(self, tournament_id: str | None) -> bool:
        """Whether the tournament's public view runs behind (a delay of its own, or of one
        of its broadcast rounds)."""
        return (tournament_id or "") in self._tournaments

    def _game_delay_ms(self, game: GameState) -> int:
        """How long a game's events are held back: its tournament's delay, or its
        broadcast round's when that is longer."""
        tid = game.setup.tournament
        if tid is None:
            return 0
        delay = self._delays_ms.get(tid, 0)
        live = self._live_tournament(tid)
        if live is not None and live.setup.is_broadcast and game.setup.round is not None:
            with contextlib.suppress(KeyError):
                delay = max(delay, live.round(game.setup.round).delay_s * 1000)
        return delay

    def tournament_message(self, tournament_id: str) -> str:
        """``{"type": "tournament", "tournament": ...}``, the tournament socket's first message."""
        state = self.tournament(tournament_id)
        if state is None:
            raise not_found("tournament")
        cached = self._messages.get(tournament_id)
        if cached is not None and cached[0] is state:
            return cached[1]
        data = tournament_json(state, standings=self.standings.of(state))
        text = _dumps({"type": "tournament", "tournament": data})
        self._messages[tournament_id] = (state, text)
        return text

    # --- EventSink (games) ---

    def publish(self, state: GameState, records: list[EventRecord], before: GameState) -> None:
        """Committed events of a game: to the public now, or after the delay."""
        game_id = state.setup.id
        delay = self._game_delay_ms(state)
        if delay == 0:
            self._release_game(game_id, records)
            return
        if game_id not in self._games:
            # Shown in full until now (a correction of a finished game): the public keeps
            # seeing it as it was until the change is released.
            self._games[game_id] = before
        self._enqueue(("g", game_id), records[0].at_ms + delay, list(records))

    def game_loaded(self, game: str, window: list[EventRecord]) -> None:
        """A game read back from the store: its last events serve ``since=`` again."""
        self.hub.restore(game, [r.body for r in window], [r.seq for r in window])

    def game_added(self, game: str, tournament: str | None) -> None:
        """A new game: delayed tournaments show it in its initial state until events arrive."""
        live = self._live_state(game)
        if live is not None and self._game_delay_ms(live) > 0:
            self._games[game] = live
        self.hub.game_added(game, tournament)

    def spectators(self, game: str) -> int:
        """How many spectators follow ``game``."""
        return self.hub.spectators(game)

    def is_pinned(self, game: str) -> bool:
        """A game stays in memory while watched or while its public view runs behind."""
        return game in self._games or ("g", game) in self._queues or self.hub.spectators(game) > 0

    def game_evicted(self, game: str) -> None:
        """The game left memory: so does its replay window."""
        self._games.pop(game, None)
        self.hub.forget(game)

    # --- TournamentSink ---

    def publish_tournament(self, state: TournamentState, records: list[TournamentRecord]) -> None:
        """Committed tournament events: to the public now, or after the delay."""
        tid = state.id
        if tid not in self._delays_ms:
            self._delays_ms[tid] = state.setup.delay_s * 1000
            if state.setup.delay_s:
                self._tournaments[tid] = TournamentState(state.setup)
        delay = self._delays_ms[tid]
        if delay == 0 and tid not in self._tournaments and _has_round_delay(state):
            # A broadcast round with a delay: from now on the public sees a copy, which
            # this change is already part of (nothing was delayed before it).
            self._tournaments[tid] = self._with_results(state)
            self._release_tournament(tid, records, applied=True)
            return
        if delay == 0 or not records:
            self._release_tournament(tid, records)
            return
        self._enqueue(("t", tid), records[0].at_ms + delay, list(records))

    # --- restart ---

    def restore(
        self,
        tournaments: list[StoredTournament],
        games: list[StoredGame],
        outcomes: Mapping[str, tuple[Result, Termination | None]],
    ) -> None:
        """Rebuild public states after a restart: released events now, the rest scheduled.

        ``games`` are the games loaded (those of delayed tournaments with every event);
        ``outcomes`` the (result, termination) of finished tournament games, which a
        delayed tournament shows for the games the delay no longer holds. Call after the
        services restored the live states, before serving.
        """
        now_wall = self._wall_ms()
        setups = {}
        for stored_t in tournaments:
            setup = setup_from_record(stored_t.setup)
            setups[setup.id] = setup
            self._delays_ms[setup.id] = setup.delay_s * 1000
        for item in games:
            live = self.game(item.id)
            delay = self._game_delay_ms(live)
            if delay == 0:
                self.hub.restore(item.id, *_history(item.events, item.bodies))
                continue
            cut = _released(item.times_ms, now_wall - delay)
            self.hub.restore(item.id, *_history(item.events[:cut], item.bodies[:cut]))
            if cut == len(item.events) and live.is_finished:
                continue
            events: list[GameEvent] = item.events[:cut]  # type: ignore[assignment]
            self._games[item.id] = GameState.rebuild(live.setup, events, self._now_ms())
            self._schedule_rest(
                ("g", item.id), item.events[cut:], item.bodies[cut:], item.times_ms[cut:], delay
            )
        for stored in tournaments:
            setup = setups[stored.id]
            delay = self._delays_ms[stored.id]
            live_t = self._live_tournament(stored.id)
            if delay == 0 and (live_t is None or not _has_round_delay(live_t)):
                continue
            cut = _released(stored.times_ms, now_wall - delay)
            events_t: list[TournamentEvent] = stored.events[:cut]  # type: ignore[assignment]
            state = TournamentState.rebuild(setup, events_t)
            self._tournaments[stored.id] = self._with_results(state, outcomes)
            self._schedule_rest(
                ("t", stored.id),
                stored.events[cut:],
                stored.bodies[cut:],
                stored.times_ms[cut:],
                delay,
            )

    def close(self) -> None:
        """Cancel the release timers (what was not released stays on disk)."""
        for queue in self._queues.values():
            if queue.timer is not None:
                queue.timer.cancel()
        for handle in self._standings_due.values():
            handle.cancel()

    # --- internals ---

    def _schedule_rest(
        self,
        key: tuple[str, str],
        events: list[Any],
        bodies: list[str],
        times_ms: list[int],
        delay: int,
    ) -> None:
        for event, body, at_ms in zip(events, bodies, times_ms, strict=True):
            if key[0] == "g":
                record: Any = EventRecord(
                    event["game"], event["seq"], event["type"], None, body, 0, at_ms
                )
            else:
                record = TournamentRecord(
                    event["tournament"], event["seq"], event["type"], body, at_ms
                )
            self._enqueue(key, at_ms + delay, [record])

    def _enqueue(self, key: tuple[str, str], release_ms: int, records: list[Any]) -> None:
        queue = self._queues.setdefault(key, _Queue())
        queue.items.append((release_ms, records))
        if queue.timer is None:
            self._arm(key, queue)

    def _arm(self, key: tuple[str, str], queue: _Queue) -> None:
        release_ms = queue.items[0][0]
        delay_s = max(0.0, (release_ms - self._wall_ms()) / 1000)
        loop = asyncio.get_running_loop()
        queue.timer = loop.call_later(delay_s, self._fire, key)

    def _fire(self, key: tuple[str, str]) -> None:
        queue = self._queues[key]
        queue.timer = None
        now_wall = self._wall_ms()
        while queue.items and queue.items[0][0] <= now_wall + 1:
            _, records = queue.items.popleft()
            try:
                if key[0] == "g":
                    self._release_game(key[1], records)
                else:
                    self._release_tournament(key[1], records)
            except Exception:
                log.exception("could not release delayed events of %s %s", *key)
        if queue.items:
            self._arm(key, queue)
            return
        del self._queues[key]
        if key[0] == "g":
            public = self._games.get(key[1])
            live = self._live_state(key[1])
            if (
                public is not None
                and live is not None
                and live.is_finished
                and (public.seq == live.seq)
            ):
                # Shown in full: the public view is the live one from now on.
                del self._games[key[1]]

    def _release_game(self, game_id: str, records: list[EventRecord]) -> None:
        public = self._games.get(game_id)
        if public is not None:
            events: list[GameEvent] = [json.loads(r.body) for r in records]
            public = evolve_all(public, events, self._now_ms())
            self._games[game_id] = public
        self.hub.publish_records(game_id, records)
        if any(r.type in RESULT_EVENTS for r in records):
            game = self.game(game_id)
            tid = game.setup.tournament
            if tid is None or tid not in self._delays_ms:
                return
            public_t = self._tournaments.get(tid)
            if public_t is not None:
                self._tournaments[tid] = with_game_result(public_t, game)
            # Without a delay the live tournament takes the result from the game service's
            # observer, after this: the coalescing pause lets it land first.
            self._standings_soon(tid)

    def _release_tournament(
        self, tid: str, records: list[TournamentRecord], *, applied: bool = False
    ) -> None:
        events: list[TournamentEvent] = [json.loads(r.body) for r in records]
        public = self._tournaments.get(tid)
        if public is not None and not applied:
            public = tcore.evolve_all(public, events)
            if any(e["type"] in _NEW_BOARDS for e in events):
                public = self._with_results(public)
            self._tournaments[tid] = public
        state = self.tournament(tid)
        if state is None or not self.hub.has_followers(tid):
            return
        # One message per round change, and one tournament message for the rest of the
        # batch (entries at creation come as one batch: never one message per player).
        others = False
        for event in events:
            if event["type"] in _ROUND_CHANGES:
                rnd = state.round(cast(dict[str, int], event)["round"])
                message = {"type": "round", "tournament": tid, "round": round_json(rnd)}
                self.hub.publish_tournament(tid, _dumps(message))
            else:
                others = True
        if others:
            self.hub.publish_tournament(tid, self.tournament_message(tid))

    def _with_results(
        self,
        state: TournamentState,
        stored: Mapping[str, tuple[Result, Termination | None]] | None = None,
    ) -> TournamentState:
        def outcome(game_id: str) -> GameOutcome | None:
            public = self._public_state(game_id)
            if public is not None or stored is None or game_id not in stored:
                return public
            return FinishedGame(*stored[game_id])

        return with_game_results(state, outcome)

    def _public_state(self, game_id: str) -> GameState | None:
        public = self._games.get(game_id)
        return public if public is not None else self._live_state(game_id)

    def _standings_soon(self, tid: str) -> None:
        if tid in self._standings_due:
            return
        loop = asyncio.get_running_loop()
        self._standings_due[tid] = loop.call_later(STANDINGS_COALESCE_S, self._send_standings, tid)

    def _send_standings(self, tid: str) -> None:
        self._standings_due.pop(tid, None)
        state = self.tournament(tid)
        if state is None or not self.hub.has_followers(tid):
            return
        current = state.current_round
        message = {
            "type": "standings",
            "tournament": tid,
            "round": 0 if current is None else current.number,
            "standings": self.standings.of(state),
        }
        self.hub.publish_tournament(tid, _dumps(message))
        if current is not None:
            rnd_message = {"type": "round", "tournament": tid, "round": round_json(current)}
            self.hub.publish_tournament(tid, _dumps(rnd_message))


# Tournament events that change a round (each sends a ``round`` message), and those that
# add boards (whose results the public copy then takes from the public games).
_ROUND_CHANGES = frozenset(
    {
        "round_paired",
        "round_started",
        "round_created",
        "round_updated",
        "boards_added",
        "round_reset",
    }
)
_NEW_BOARDS = frozenset({"round_paired", "boards_added"})


def _has_round_delay(state: TournamentState) -> bool:
    return any(rnd.delay_s > 0 for rnd in state.rounds)


def _released(times_ms: list[int], cutoff_ms: int) -> int:
    """How many leading events were committed at or before ``cutoff_ms``."""
    count = 0
    for at_ms in times_ms:
        if at_ms > cutoff_ms:
            break
        count += 1
    return count


def _history(events: list[dict[str, Any]], bodies: list[str]) -> tuple[list[str], list[int]]:
    """The replay window of a game: the last events' stored texts and their seqs."""
    recent = slice(-REPLAY_HISTORY, None)
    return bodies[recent], [e["seq"] for e in events[recent]]


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))
