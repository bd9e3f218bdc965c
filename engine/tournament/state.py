"""A tournament as an immutable value, the events that change it, and the commands.

The tournament log holds what the operator decided (entries, withdrawals, requested byes,
paired and started rounds). Results are not events of the tournament: each board's result
is its game's, folded in with :meth:`TournamentState.with_result` whenever a game ends (and
when the server rebuilds), so the game is the one record of a result.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from engine.rules.clock import TimeControl
from engine.rules.errors import InvalidInput
from engine.rules.game import GameState
from engine.rules.wire import Mode, Result, Termination
from engine.tournament.errors import (
    RoundUnfinished,
    TournamentConflict,
    TournamentFinished,
)
from engine.tournament.wire import (
    BoardsAddedEvent,
    ByeJSON,
    ByeKind,
    ByeRequestedEvent,
    EntrantJSON,
    Format,
    PairedBoardJSON,
    PairingResult,
    PlayerAddedEvent,
    RoundCreatedEvent,
    RoundPairedEvent,
    RoundResetEvent,
    RoundStartedEvent,
    RoundStatus,
    RoundUpdatedEvent,
    TournamentEvent,
    TournamentStatus,
    WithdrawnEvent,
)

# Points a pairing result gives White and Black.
RESULT_POINTS: dict[PairingResult, tuple[float, float]] = {
    "1-0": (1.0, 0.0),
    "0-1": (0.0, 1.0),
    "1/2-1/2": (0.5, 0.5),
    "+/-": (1.0, 0.0),
    "-/+": (0.0, 1.0),
    "-/-": (0.0, 0.0),
    "*": (0.0, 0.0),
}
FORFEITS: frozenset[PairingResult] = frozenset({"+/-", "-/+", "-/-"})
# Game events after which a board's result may differ (a game ends, or is reopened).
RESULT_EVENTS: frozenset[str] = frozenset({"end", "takeback"})


@dataclass(frozen=True, slots=True)
class TournamentSetup:
    """What is fixed when a tournament is created; persisted once."""

    id: str
    name: str
    format: Format
    control: TimeControl
    mode: Mode = "server"
    # Swiss only: the number of rounds (round robins derive theirs from the players).
    swiss_rounds: int = 0
    tiebreaks: tuple[str, ...] = ()
    bye_points: float = 1.0
    delay_s: int = 0
    relay_url: str | None = None
    pairing_system: str = ""
    created_at: str = ""
    site: str | None = None
    city: str | None = None
    federation: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    arbiter: str | None = None
    # Broadcasts: the account that created it, a description (Markdown) and lichess's
    # ``info`` fields (format, tc, location, website, ...).
    owner: str | None = None
    description: str | None = None
    info: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_round_robin(self) -> bool:
        """Whether rounds follow the Berger tables (single or double)."""
        return self.format in ("round_robin", "double_round_robin")

    @property
    def is_broadcast(self) -> bool:
        """Whether rounds are created by the operator and boards by pushed games."""
        return self.format == "broadcast"


@dataclass(frozen=True, slots=True)
class Entrant:
    """A player of a tournament; ``number`` is the pairing number (1 first)."""

    id: str
    number: int
    name: str
    rating: int | None = None
    title: str | None = None
    fide_id: int | None = None
    federation: str | None = None
    # The first round in which the player is no longer paired (None: still playing).
    withdrawn_from: int | None = None

    def to_json(self) -> EntrantJSON:
        """The persisted form (withdrawal is an event of its own)."""
        return {
            "id": self.id,
            "number": self.number,
            "name": self.name,
            "rating": self.rating,
            "title": self.title,
            "fide_id": self.fide_id,
            "federation": self.federation,
        }

    @classmethod
    def from_json(cls, data: EntrantJSON) -> Entrant:
        """Inverse of :meth:`to_json`."""
        return cls(
            data["id"],
            data["number"],
            data["name"],
            data["rating"],
            data["title"],
            data["fide_id"],
            data["federation"],
        )

    def plays_in(self, round_no: int) -> bool:
        """Whether the player may be paired in ``round_no`` (not withdrawn before it)."""
        return self.withdrawn_from is None or round_no < self.withdrawn_from


@dataclass(frozen=True, slots=True)
class Pairing:
    """One board: ``white`` and ``black`` are player ids; ``game`` the game played on it."""

    board: int
    white: str
    black: str
    game: str | None = None
    result: PairingResult = "*"


@dataclass(frozen=True, slots=True)
class Bye:
    """A player who plays no game in a round: ``pairing`` (Swiss, ``bye_points``),
    ``half``/``zero`` (requested), ``free`` (round robin: no opponent that round, 0)."""

    player: str
    points: float
    kind: ByeKind

    def to_json(self) -> ByeJSON:
        """The wire form."""
        return {"player": self.player, "points": self.points, "kind": self.kind}


@dataclass(frozen=True, slots=True)
class Round:
    """A paired round; ``started`` once its games were started."""

    number: int
    pairings: tuple[Pairing, ...]
    byes: tuple[Bye, ...] = ()
    start_at: str | None = None
    started: bool = False
    # Broadcast rounds: their own id and name, a polled source, a delay, and whether the
    # operator closed them (an open broadcast round may still get boards).
    id: str | None = None
    name: str | None = None
    sync_url: str | None = None
    delay_s: int = 0
    closed: bool = False
    # Broadcast rounds: when the round was created (Unix ms).
    created_ms: int = 0

    @property
    def is_broadcast(self) -> bool:
        """Whether this is a broadcast round (created empty, boards from pushes)."""
        return self.id is not None

    @property
    def is_finished(self) -> bool:
        """Whether every board has a result (a round of byes only is finished at once);
        a broadcast round when it was closed, or has boards that all have results."""
        decided = all(p.result != "*" for p in self.pairings)
        if self.is_broadcast:
            return self.closed or (bool(self.pairings) and decided)
        return decided

    @property
    def status(self) -> RoundStatus:
        """``paired`` (not started; a broadcast round without boards), ``running`` or
        ``finished``."""
        if self.is_finished and (self.started or not self.pairings):
            return "finished"
        return "running" if self.started else "paired"

    def pairing_of(self, player: str) -> Pairing | None:
        """The board ``player`` plays on in this round, if any."""
        for pairing in self.pairings:
            if player in (pairing.white, pairing.black):
                return pairing
        return None

    def bye_of(self, player: str) -> Bye | None:
        """The bye ``player`` has in this round, if any."""
        for bye in self.byes:
            if bye.player == player:
                return bye
        return None


@dataclass(frozen=True, slots=True)
class TournamentState:
    """Everything about one tournament at one event ``seq``."""

    setup: TournamentSetup
    players: tuple[Entrant, ...] = ()
    rounds: tuple[Round, ...] = ()
    # Requested byes of rounds not yet paired: (player id, round) -> points.
    requested_byes: Mapping[tuple[str, int], float] = field(default_factory=dict)
    seq: int = 0

    @classmethod
    def rebuild(cls, setup: TournamentSetup, events: Iterable[TournamentEvent]) -> TournamentState:
        """Replay persisted events in ``seq`` order (results are folded in afterwards)."""
        state = cls(setup)
        for event in events:
            state = evolve(state, event)
        return state

    @property
    def id(self) -> str:
        """The tournament id."""
        return self.setup.id

    @property
    def rounds_total(self) -> int:
        """How many rounds the tournament has (round robins: from the number of players;
        a broadcast: those created so far)."""
        if self.setup.format == "broadcast":
            return len(self.rounds)
        if not self.setup.is_round_robin:
            return self.setup.swiss_rounds
        n = len(self.players)
        single = n - 1 if n % 2 == 0 else n
        single = max(single, 0)
        return 2 * single if self.setup.format == "double_round_robin" else single

    @property
    def current_round(self) -> Round | None:
        """The last paired round, if any."""
        return self.rounds[-1] if self.rounds else None

    @property
    def status(self) -> TournamentStatus:
        """``created`` (nothing paired), ``running`` or ``finished`` (last round done)."""
        if not self.rounds:
            return "created"
        last = self.rounds[-1]
        if len(self.rounds) >= self.rounds_total and last.status == "finished":
            return "finished"
        return "running"

    def player(self, player_id: str) -> Entrant:
        """The player with this id; raises KeyError."""
        for entrant in self.players:
            if entrant.id == player_id:
                return entrant
        raise KeyError(player_id)

    def by_number(self) -> dict[int, Entrant]:
        """Players by pairing number."""
        return {p.number: p for p in self.players}

    def round(self, number: int) -> Round:
        """The paired round ``number`` (1 first); raises KeyError."""
        if 1 <= number <= len(self.rounds):
            return self.rounds[number - 1]
        raise KeyError(number)

    def with_result(self, round_no: int, board: int, result: PairingResult) -> TournamentState:
        """The same tournament with the board's result set (not an event: see the module)."""
        rnd = self.round(round_no)
        pairings = tuple(replace(p, result=result) if p.board == board else p for p in rnd.pairings)
        rounds = list(self.rounds)
        rounds[round_no - 1] = replace(rnd, pairings=pairings)
        return replace(self, rounds=tuple(rounds))

    def game_ids(self) -> list[str]:
        """Every game of the tournament, in round and board order."""
        return [p.game for rnd in self.rounds for p in rnd.pairings if p.game is not None]

    def find_game(self, game_id: str) -> tuple[int, Pairing] | None:
        """The round number and board of ``game_id``, if it belongs to this tournament."""
        for rnd in self.rounds:
            for pairing in rnd.pairings:
                if pairing.game == game_id:
                    return rnd.number, pairing
        return None


def pairing_result(result: Result, termination: Termination | None) -> PairingResult:
    """A board's result from its game: forfeits are games ended with ``forfeit``."""
    if termination == "forfeit":
        if result == "1-0":
            return "+/-"
        if result == "0-1":
            return "-/+"
        return "-/-"
    return result


def game_result(result: PairingResult) -> tuple[Result, Termination]:
    """The game result and termination that record a board result set by the operator."""
    if result == "*":
        raise InvalidInput("a result must be decided")
    if result == "+/-":
        return "1-0", "forfeit"
    if result == "-/+":
        return "0-1", "forfeit"
    if result == "-/-":
        return "*", "forfeit"
    return result, "arbiter"


class GameOutcome(Protocol):
    """What a board's result is taken from: a game's state, or what the store says of it."""

    @property
    def result(self) -> Result:
        """The game's result (``*`` while it runs)."""

    @property
    def termination(self) -> Termination | None:
        """How it ended."""

    @property
    def is_finished(self) -> bool:
        """Whether it has a result."""


@dataclass(frozen=True, slots=True)
class FinishedGame:
    """The outcome of a finished game that is not in memory (read from the store)."""

    result: Result
    termination: Termination | None
    is_finished: bool = True


def with_game_result(state: TournamentState, game: GameState) -> TournamentState:
    """``state`` with the board of ``game`` showing the game's result now."""
    found = state.find_game(game.setup.id)
    if found is None:
        return state
    round_no, pairing = found
    result = pairing_result(game.result, game.termination) if game.is_finished else "*"
    if result == pairing.result:
        return state
    return state.with_result(round_no, pairing.board, result)


def with_game_results(
    state: TournamentState, game_of: Callable[[str], GameOutcome | None]
) -> TournamentState:
    """``state`` with every board's result taken from its game (one pass over the boards)."""
    rounds = []
    for rnd in state.rounds:
        pairings = []
        for pairing in rnd.pairings:
            game = None if pairing.game is None else game_of(pairing.game)
            if game is not None:
                result = pairing_result(game.result, game.termination) if game.is_finished else "*"
                if result != pairing.result:
                    pairing = replace(pairing, result=result)
            pairings.append(pairing)
        rounds.append(replace(rnd, pairings=tuple(pairings)))
    return replace(state, rounds=tuple(rounds))


# --- events ---


def evolve(state: TournamentState, event: TournamentEvent) -> TournamentState:
    """Fold one persisted event into the state.

    Raises ValueError when the event does not follow the state (wrong ``seq`` or
    tournament): the caller's log is corrupt.
    """
    if event["seq"] != state.seq + 1 or event["tournament"] != state.setup.id:
        raise ValueError(f"event {event['seq']} does not follow seq {state.seq}")
    seq = event["seq"]
    if event["type"] == "player_added":
        entrant = Entrant.from_json(event["player"])
        return replace(state, players=(*state.players, entrant), seq=seq)
    if event["type"] == "withdrawn":
        players = tuple(
            replace(p, withdrawn_from=event["from_round"]) if p.id == event["player"] else p
            for p in state.players
        )
        return replace(state, players=players, seq=seq)
    if event["type"] == "bye_requested":
        key = (event["player"], event["round"])
        byes = {**state.requested_byes, key: event["points"]}
        return replace(state, requested_byes=byes, seq=seq)
    if event["type"] == "round_paired":
        rnd = Round(
            number=event["round"],
            pairings=tuple(
                Pairing(p["board"], p["white"], p["black"], p["game"]) for p in event["pairings"]
            ),
            byes=tuple(Bye(b["player"], b["points"], b["kind"]) for b in event["byes"]),
            start_at=event["start_at"],
        )
        byes = {k: v for k, v in state.requested_byes.items() if k[1] != event["round"]}
        return replace(state, rounds=(*state.rounds, rnd), requested_byes=byes, seq=seq)
    if event["type"] == "round_created":
        rnd = Round(
            number=event["round"],
            pairings=(),
            start_at=event["start_at"],
            id=event["id"],
            name=event["name"],
            sync_url=event["sync_url"],
            delay_s=event["delay_s"],
            created_ms=event["created_ms"],
        )
        return replace(state, rounds=(*state.rounds, rnd), seq=seq)
    number = event["round"]
    if event["type"] == "round_updated":
        update = event
        return _with_round(
            state,
            number,
            seq,
            lambda r: replace(
                r,
                name=update["name"],
                start_at=update["start_at"],
                sync_url=update["sync_url"],
                delay_s=update["delay_s"],
                closed=update["finished"],
            ),
        )
    if event["type"] == "boards_added":
        added = tuple(
            Pairing(p["board"], p["white"], p["black"], p["game"]) for p in event["pairings"]
        )
        return _with_round(
            state, number, seq, lambda r: replace(r, pairings=r.pairings + added, started=True)
        )
    if event["type"] == "round_reset":
        return _with_round(
            state, number, seq, lambda r: replace(r, pairings=(), started=False, closed=False)
        )
    return _with_round(state, number, seq, lambda r: replace(r, started=True))


def _with_round(
    state: TournamentState, number: int, seq: int, change: Callable[[Round], Round]
) -> TournamentState:
    rounds = tuple(change(r) if r.number == number else r for r in state.rounds)
    return replace(state, rounds=rounds, seq=seq)


def evolve_all(state: TournamentState, events: Iterable[TournamentEvent]) -> TournamentState:
    """:func:`evolve` each event in turn."""
    for event in events:
        state = evolve(state, event)
    return state


# --- commands: state in, events out (or a refusal) ---


def add_player(state: TournamentState, entrant: EntrantJSON) -> list[TournamentEvent]:
    """Enter a player (``number`` is assigned here: the next pairing number).

    Round robins take entries only before the first round is paired (the tables are
    fixed then); a Swiss takes them until the last round is paired, the player missing
    the rounds already paired (absent: no points).
    """
    if state.setup.is_round_robin and state.rounds:
        raise TournamentConflict("a round robin takes no entries once a round is paired")
    if not state.setup.is_broadcast and state.rounds and len(state.rounds) >= state.rounds_total:
        raise TournamentFinished("every round has been paired")
    if any(p.id == entrant["id"] for p in state.players):
        raise TournamentConflict("this player id is taken")
    player: EntrantJSON = {**entrant, "number": len(state.players) + 1}
    event: PlayerAddedEvent = {
        "type": "player_added",
        "tournament": state.id,
        "seq": state.seq + 1,
        "player": player,
    }
    return [event]


# FIDE titles from the strongest, for the initial order (C.04.2 B).
_TITLE_ORDER = ("GM", "IM", "WGM", "FM", "WIM", "CM", "WFM", "WCM")


def initial_order(players: Sequence[EntrantJSON]) -> list[EntrantJSON]:
    """A Swiss's initial order (C.04.2 B): rating, then FIDE title, then name.

    The Dutch system pairs by this order (pairing number 1 is the strongest), so a Swiss's
    entries at creation are numbered in it; a round robin keeps the operator's order (the
    drawn lots). Unrated players come last; the sort is stable.
    """

    def key(player: EntrantJSON) -> tuple[int, int, str]:
        title = player["title"]
        rank = _TITLE_ORDER.index(title) if title in _TITLE_ORDER else len(_TITLE_ORDER)
        return -(player["rating"] or 0), rank, player["name"].casefold()

    return sorted(players, key=key)


def withdraw(state: TournamentState, player_id: str) -> list[TournamentEvent]:
    """Withdraw a player from the next round to be paired on (idempotent)."""
    entrant = _entrant(state, player_id)
    if entrant.withdrawn_from is not None:
        return []
    event: WithdrawnEvent = {
        "type": "withdrawn",
        "tournament": state.id,
        "seq": state.seq + 1,
        "player": player_id,
        "from_round": len(state.rounds) + 1,
    }
    return [event]


def request_bye(
    state: TournamentState, player_id: str, round_no: int, points: float
) -> list[TournamentEvent]:
    """A requested half-point or zero-point bye for a Swiss round not yet paired."""
    entrant = _entrant(state, player_id)
    if state.setup.is_round_robin:
        raise TournamentConflict("round robins follow fixed tables: no requested byes")
    if points not in (0.0, 0.5):
        raise InvalidInput("a requested bye scores 0.5 or 0")
    if round_no <= len(state.rounds):
        raise TournamentConflict(f"round {round_no} is already paired")
    if round_no > state.rounds_total:
        # A well-formed round number that this tournament's length refuses.
        raise TournamentConflict(f"the tournament has {state.rounds_total} rounds")
    if not entrant.plays_in(round_no):
        raise TournamentConflict("the player has withdrawn")
    event: ByeRequestedEvent = {
        "type": "bye_requested",
        "tournament": state.id,
        "seq": state.seq + 1,
        "player": player_id,
        "round": round_no,
        "points": points,
    }
    return [event]


def next_round(state: TournamentState) -> int:
    """The number of the round to pair now.

    Raises RoundUnfinished while a board of the current round has no result (or the
    round has not started), TournamentFinished after the last round, TournamentConflict when
    fewer than two players could be paired.
    """
    current = state.current_round
    if current is not None and current.status != "finished":
        raise RoundUnfinished(f"round {current.number} is not finished")
    if state.rounds and len(state.rounds) >= state.rounds_total:
        raise TournamentFinished("every round has been paired")
    number = len(state.rounds) + 1
    if len(active_players(state, number)) < 2:
        raise TournamentConflict("fewer than two players can be paired")
    return number


def active_players(state: TournamentState, round_no: int) -> list[Entrant]:
    """Players who may be paired in ``round_no``: not withdrawn, no requested bye."""
    return [
        p
        for p in state.players
        if p.plays_in(round_no) and (p.id, round_no) not in state.requested_byes
    ]


def requested_byes(state: TournamentState, round_no: int) -> list[Bye]:
    """The requested byes of ``round_no`` as :class:`Bye` values, in pairing-number order."""
    byes = []
    for entrant in state.players:
        points = state.requested_byes.get((entrant.id, round_no))
        if points is not None and entrant.plays_in(round_no):
            byes.append(Bye(entrant.id, points, "half" if points else "zero"))
    return byes


def pair_round(
    state: TournamentState,
    round_no: int,
    boards: Sequence[tuple[str, str, str | None]],
    byes: Sequence[Bye],
    start_at: str | None = None,
) -> list[TournamentEvent]:
    """The ``round_paired`` event of ``round_no``: ``boards`` are (white, black, game id)
    in board order. Raises ValueError when a player appears twice (a pairing bug)."""
    seen: list[str] = [b.player for b in byes]
    for white, black, _ in boards:
        seen += [white, black]
    if len(seen) != len(set(seen)):
        raise ValueError("a player is paired twice in one round")
    pairings: list[PairedBoardJSON] = [
        {"board": i, "white": white, "black": black, "game": game}
        for i, (white, black, game) in enumerate(boards, start=1)
    ]
    event: RoundPairedEvent = {
        "type": "round_paired",
        "tournament": state.id,
        "seq": state.seq + 1,
        "round": round_no,
        "start_at": start_at,
        "pairings": pairings,
        "byes": [b.to_json() for b in byes],
    }
    return [event]


def start_round(state: TournamentState, round_no: int) -> list[TournamentEvent]:
    """The ``round_started`` event (nothing when the round already started)."""
    if state.round(round_no).started:
        return []
    event: RoundStartedEvent = {
        "type": "round_started",
        "tournament": state.id,
        "seq": state.seq + 1,
        "round": round_no,
    }
    return [event]


# --- broadcast rounds ---

# Games one push may carry, and rounds a broadcast may have (lichess's limits).
MAX_PUSHED_GAMES = 100
MAX_BROADCAST_ROUNDS = 64


def create_round(
    state: TournamentState,
    round_id: str,
    name: str,
    *,
    start_at: str | None = None,
    sync_url: str | None = None,
    delay_s: int = 0,
    created_ms: int = 0,
) -> list[TournamentEvent]:
    """A new, empty round of a broadcast (``round_id`` chosen by the caller, unique;
    ``created_ms`` the time of creation, Unix ms)."""
    _require_broadcast(state)
    if len(state.rounds) >= MAX_BROADCAST_ROUNDS:
        raise TournamentConflict(f"a broadcast has at most {MAX_BROADCAST_ROUNDS} rounds")
    event: RoundCreatedEvent = {
        "type": "round_created",
        "tournament": state.id,
        "seq": state.seq + 1,
        "round": len(state.rounds) + 1,
        "id": round_id,
        "name": name,
        "start_at": start_at,
        "sync_url": sync_url,
        "delay_s": delay_s,
        "created_ms": created_ms,
    }
    return [event]


def update_round(
    state: TournamentState,
    round_no: int,
    *,
    name: str,
    start_at: str | None,
    sync_url: str | None,
    delay_s: int,
    finished: bool,
) -> list[TournamentEvent]:
    """Change a broadcast round's settings (nothing when they are unchanged)."""
    _require_broadcast(state)
    rnd = _round(state, round_no)
    if (rnd.name, rnd.start_at, rnd.sync_url, rnd.delay_s, rnd.closed) == (
        name,
        start_at,
        sync_url,
        delay_s,
        finished,
    ):
        return []
    event: RoundUpdatedEvent = {
        "type": "round_updated",
        "tournament": state.id,
        "seq": state.seq + 1,
        "round": round_no,
        "name": name,
        "start_at": start_at,
        "sync_url": sync_url,
        "delay_s": delay_s,
        "finished": finished,
    }
    return [event]


def add_boards(
    state: TournamentState, round_no: int, boards: Sequence[tuple[int | None, str, str, str]]
) -> list[TournamentEvent]:
    """Boards for a broadcast round: (board number or None, white, black, game id) each.

    A number already taken (or None) becomes the next free one after the round's last
    board. Raises TournamentConflict for a closed round or a player who already has a
    board in it.
    """
    _require_broadcast(state)
    rnd = _round(state, round_no)
    if rnd.closed:
        raise TournamentConflict(f"round {round_no} is finished")
    seated = {p for pairing in rnd.pairings for p in (pairing.white, pairing.black)}
    taken = {p.board for p in rnd.pairings}
    pairings: list[PairedBoardJSON] = []
    for wanted, white, black, game in boards:
        if white == black or white in seated or black in seated:
            raise TournamentConflict("a player already has a board in this round")
        seated |= {white, black}
        board = wanted if wanted is not None and wanted > 0 and wanted not in taken else None
        if board is None:
            board = max(taken, default=0) + 1
        taken.add(board)
        pairings.append({"board": board, "white": white, "black": black, "game": game})
    if not pairings:
        return []
    event: BoardsAddedEvent = {
        "type": "boards_added",
        "tournament": state.id,
        "seq": state.seq + 1,
        "round": round_no,
        "pairings": pairings,
    }
    return [event]


def reset_round(state: TournamentState, round_no: int) -> list[TournamentEvent]:
    """Empty a broadcast round (its games stay stored, detached from the round)."""
    _require_broadcast(state)
    rnd = _round(state, round_no)
    if not rnd.pairings and not rnd.closed:
        return []
    event: RoundResetEvent = {
        "type": "round_reset",
        "tournament": state.id,
        "seq": state.seq + 1,
        "round": round_no,
    }
    return [event]


def _require_broadcast(state: TournamentState) -> None:
    if not state.setup.is_broadcast:
        raise TournamentConflict("only a broadcast tournament has rounds made by hand")


def _round(state: TournamentState, round_no: int) -> Round:
    try:
        return state.round(round_no)
    except KeyError:
        raise InvalidInput(f"no round {round_no}") from None


def _entrant(state: TournamentState, player_id: str) -> Entrant:
    try:
        return state.player(player_id)
    except KeyError:
        raise InvalidInput("no such player in this tournament") from None
