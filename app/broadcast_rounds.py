"""Rounds of broadcast tournaments: created by hand, their boards made by the games pushed.

A broadcast (lichess's "broadcast tournament") has no pairing system: the operator creates
each round (with a name, a start time, a source to poll and a delay), and the games an
over-the-board relay pushes become its boards. A pushed game with both players named and
no board yet gets one, in the same transaction as its game and any player entered for it;
players are found again by FIDE id, else by name. Rounds have ids of their own (what the
lichess routes name them by).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from app.auth import new_id
from app.errors import not_found
from app.games import GameService, NewGame
from app.tournaments import LiveTournament, TournamentService
from engine.rules.game import Player
from engine.rules.relay import PushedGame
from engine.tournament import state as core
from engine.tournament.relay import name_key
from engine.tournament.state import Entrant, Round, TournamentState
from engine.tournament.wire import EntrantJSON, TournamentEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Seat:
    """A pushed game that needs a board: its players as the tags name them."""

    board: int | None
    white: Player
    black: Player


class BroadcastRounds:
    """Creates, edits and empties broadcast rounds, and seats pushed games on boards."""

    def __init__(
        self, tournaments: TournamentService, games: GameService, *, wall_ms: Callable[[], int]
    ) -> None:
        self._tournaments = tournaments
        self._games = games
        self._wall_ms = wall_ms
        # Round id -> tournament id (rounds never move; filled as rounds are looked up).
        self._index: dict[str, str] = {}

    def find(self, round_id: str) -> tuple[LiveTournament, Round]:
        """The tournament and round with this round id, or ApiError 404."""
        tid = self._index.get(round_id)
        if tid is None:
            for live in self._tournaments.all():
                for rnd in live.state.rounds:
                    if rnd.id is not None:
                        self._index[rnd.id] = live.id
            tid = self._index.get(round_id)
        if tid is not None:
            live = self._tournaments.get(tid)
            for rnd in live.state.rounds:
                if rnd.id == round_id:
                    return live, rnd
        raise not_found("broadcast round")

    async def create(
        self,
        live: LiveTournament,
        name: str | None,
        *,
        start_at: str | None = None,
        sync_url: str | None = None,
        delay_s: int = 0,
    ) -> Round:
        """A new empty round (named "Round n" when ``name`` is None)."""
        round_id = new_id()

        def command(state: TournamentState) -> list[TournamentEvent]:
            label = name or f"Round {len(state.rounds) + 1}"
            return core.create_round(
                state,
                round_id,
                label,
                start_at=start_at,
                sync_url=sync_url,
                delay_s=delay_s,
                created_ms=self._wall_ms(),
            )

        state = await self._tournaments.run(live, lambda s: (command(s), []))
        self._index[round_id] = live.id
        return state.rounds[-1]

    async def update(
        self,
        live: LiveTournament,
        round_no: int,
        *,
        name: str,
        start_at: str | None,
        sync_url: str | None,
        delay_s: int,
        finished: bool,
    ) -> Round:
        """Change a round's settings; returns the round as it is now."""
        state = await self._tournaments.run(
            live,
            lambda s: (
                core.update_round(
                    s,
                    round_no,
                    name=name,
                    start_at=start_at,
                    sync_url=sync_url,
                    delay_s=delay_s,
                    finished=finished,
                ),
                [],
            ),
        )
        return state.round(round_no)

    async def reset(self, live: LiveTournament, round_no: int) -> Round:
        """Empty a round: its boards go (their games stay stored)."""
        state = await self._tournaments.run(live, lambda s: (core.reset_round(s, round_no), []))
        return state.round(round_no)

    async def seat(
        self, live: LiveTournament, round_no: int, seats: Sequence[tuple[int, Seat]]
    ) -> tuple[Round, dict[int, str]]:
        """Give each of ``seats`` (push index, seat) a board with a new relay game,
        entering players not met before (by FIDE id, else by name); one transaction.

        Returns the round now and, by push index, why a seat got no board (a player who
        already has one in the round).
        """
        refused: dict[int, str] = {}

        def command(state: TournamentState) -> tuple[list[TournamentEvent], list[NewGame]]:
            refused.clear()
            events: list[TournamentEvent] = []
            news: list[NewGame] = []
            boards: list[tuple[int | None, str, str, str]] = []
            finder = _Players(state.players)
            rnd = state.round(round_no)
            seated = {p for pairing in rnd.pairings for p in (pairing.white, pairing.black)}
            for index, seat in seats:
                white, black = finder.find(seat.white), finder.find(seat.black)
                taken = [
                    p.name for p, i in ((seat.white, white), (seat.black, black)) if i in seated
                ]
                if taken or (white is not None and white == black):
                    refused[index] = f"{' and '.join(taken)} already has a board in this round"
                    continue
                ids = []
                for player, known in ((seat.white, white), (seat.black, black)):
                    if known is None:
                        entry = _entry(player)
                        events += core.add_player(core.evolve_all(state, events), entry)
                        known = entry["id"]
                        finder.add(player, known)
                    ids.append(known)
                seated |= set(ids)
                new = self._games.prepare(
                    seat.white,
                    seat.black,
                    state.setup.control,
                    mode="relay",
                    event=state.setup.name,
                    tournament=state.id,
                    round_no=round_no,
                    board_no=None,
                )
                news.append(new)
                boards.append((seat.board, ids[0], ids[1], new.state.setup.id))
            added = core.add_boards(core.evolve_all(state, events), round_no, boards)
            # The games learn their board numbers from the event (a taken number moves).
            placed = {
                p["game"]: p["board"]
                for e in added
                if e["type"] == "boards_added"
                for p in e["pairings"]
            }
            news = [_on_board(new, placed[new.state.setup.id]) for new in news]
            return events + added, news

        state = await self._tournaments.run(live, command)
        return state.round(round_no), dict(refused)


def seats_of(pushed: Sequence[PushedGame]) -> list[Seat | None]:
    """The seat each pushed game asks for, or None when a player is not named."""
    seats: list[Seat | None] = []
    for game in pushed:
        white, black = _player(game, "White"), _player(game, "Black")
        if white is None or black is None:
            seats.append(None)
            continue
        board = game.board
        if board is None:
            board = game.round_board[1]
        seats.append(Seat(board, white, black))
    return seats


def _player(game: PushedGame, colour: str) -> Player | None:
    name = game.tags.get(colour, "").strip()
    if not name or name in ("?", "-") or not name_key(name):
        return None
    return Player(
        name[:80],
        _int(game.tags.get(f"{colour}Elo")),
        (game.tags.get(f"{colour}Title") or None),
        _int(game.tags.get(f"{colour}FideId")),
    )


def _int(text: str | None) -> int | None:
    if text is None or not text.strip().isdigit():
        return None
    value = int(text.strip())
    return value if 0 < value < 2**31 else None


def _entry(player: Player) -> EntrantJSON:
    return {
        "id": new_id(),
        "number": 0,
        "name": player.name,
        "rating": player.rating,
        "title": player.title,
        "fide_id": player.fide_id,
        "federation": None,
    }


def _on_board(new: NewGame, board: int | None) -> NewGame:
    """``new`` with its setup's board number set (before it is stored)."""
    setup = replace(new.state.setup, board=board)
    return replace(new, state=replace(new.state, setup=setup))


class _Players:
    """A broadcast's players by FIDE id and by name, to enter each person once: the same
    FIDE id is the same player; else the same name is, unless both have FIDE ids."""

    def __init__(self, players: Sequence[Entrant]) -> None:
        self._by_fide: dict[int, str] = {}
        self._by_name: dict[tuple[str, ...], tuple[str, int | None]] = {}
        for entrant in players:
            self.add(Player(entrant.name, fide_id=entrant.fide_id), entrant.id)

    def find(self, player: Player) -> str | None:
        """The entrant id of ``player``, if entered."""
        if player.fide_id is not None and player.fide_id in self._by_fide:
            return self._by_fide[player.fide_id]
        found = self._by_name.get(name_key(player.name))
        if found is None:
            return None
        entrant_id, fide_id = found
        if fide_id is not None and player.fide_id is not None:
            return None
        return entrant_id

    def add(self, player: Player, entrant_id: str) -> None:
        """Remember an entrant."""
        if player.fide_id is not None:
            self._by_fide.setdefault(player.fide_id, entrant_id)
        self._by_name.setdefault(name_key(player.name), (entrant_id, player.fide_id))
