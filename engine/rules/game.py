"""A game as an immutable value, and how events change it.

:func:`evolve` folds one event into the state; the live path and the rebuild from the
store both go through it, so a game rebuilt from its persisted events is the game that was
running. The commands that decide events live in :mod:`engine.rules.commands`. ``now_ms`` is a
monotonic millisecond counter owned by the caller; only differences between two values
matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import chess

from engine.rules.clock import Clock, TimeControl
from engine.rules.errors import InvalidInput
from engine.rules.wire import (
    ClockJSON,
    EvalJSON,
    GameEvent,
    Mode,
    PlayerJSON,
    Result,
    ReviewJSON,
    Status,
    Termination,
    parse_color,
)


@dataclass(frozen=True, slots=True)
class Player:
    """A player's public identity; ``rating`` is an Elo, ``title`` a FIDE title such as GM."""

    name: str
    rating: int | None = None
    title: str | None = None
    fide_id: int | None = None

    def to_json(self) -> PlayerJSON:
        """The wire form."""
        return {
            "name": self.name,
            "rating": self.rating,
            "title": self.title,
            "fide_id": self.fide_id,
        }

    @classmethod
    def from_json(cls, data: PlayerJSON) -> Player:
        """Inverse of :meth:`to_json`."""
        return cls(data["name"], data["rating"], data["title"], data["fide_id"])


@dataclass(frozen=True, slots=True)
class GameSetup:
    """What is fixed when a game is created; persisted once, before the game is announced."""

    id: str
    white: Player
    black: Player
    control: TimeControl
    mode: Mode = "server"
    initial_fen: str = chess.STARTING_FEN
    event: str = "Grandmaster game"
    created_at: str = ""
    tournament: str | None = None
    round: int | None = None
    board: int | None = None


def parse_start_fen(fen: str) -> str:
    """Validate a start position and return it normalised.

    Raises InvalidInput for a malformed FEN, an impossible position (``is_valid()``) or a
    position that is already over.
    """
    try:
        board = chess.Board(fen)
    except ValueError as exc:
        raise InvalidInput(f"malformed FEN: {exc}") from None
    if not board.is_valid():
        raise InvalidInput(f"impossible position: {board.status()!r}")
    if board.outcome() is not None:
        raise InvalidInput("the position is already decided (no legal move or dead draw)")
    return board.fen()


@dataclass(frozen=True, slots=True)
class MoveRecord:
    """One accepted half-move; ``clock_ms`` is the mover's time after it, increment included."""

    uci: str
    san: str
    clock_ms: int


@dataclass(frozen=True, slots=True)
class GameState:
    """Everything about one game at one event ``seq``.

    ``board`` is shared between states and must never be kept mutated: every change works
    on a :func:`successor_board`. (python-chess's repetition checks pop and re-push moves
    internally; they leave the board as they found it.)
    """

    setup: GameSetup
    board: chess.Board = field(compare=False, repr=False)
    clock: Clock
    status: Status = "created"
    result: Result = "*"
    termination: Termination | None = None
    moves: tuple[MoveRecord, ...] = ()
    draw_offer: chess.Color | None = None
    seq: int = 0
    # How many takebacks the game has seen: moves are keyed by (line, ply) in the store,
    # so a ply played again after a takeback is not taken for a duplicate.
    line: int = 0
    # The latest evaluation of each analysed position, by ply (read-only once built).
    evals: Mapping[int, EvalJSON] = field(default_factory=dict)
    # The review of the finished game, once done (read-only; a takeback drops it).
    review: ReviewJSON | None = None

    @classmethod
    def new(cls, setup: GameSetup) -> GameState:
        """The state of a freshly created game (``seq`` 0, no events yet)."""
        return cls(
            setup=setup,
            board=chess.Board(setup.initial_fen),
            clock=Clock.from_control(setup.control),
        )

    @classmethod
    def rebuild(cls, setup: GameSetup, events: Iterable[GameEvent], now_ms: int) -> GameState:
        """Replay persisted events in ``seq`` order; the running clock resumes at ``now_ms``."""
        state = cls.new(setup)
        for event in events:
            state = evolve(state, event, now_ms)
        return state

    @property
    def ply(self) -> int:
        """Half-moves played since the start position."""
        return len(self.moves)

    @property
    def is_finished(self) -> bool:
        """Whether the game has a result."""
        return self.status == "finished"

    @property
    def turn(self) -> chess.Color:
        """The side to move."""
        return self.board.turn

    def board_at(self, ply: int) -> chess.Board:
        """A fresh board of the position after ``ply`` half-moves (0 <= ply <= self.ply)."""
        board = chess.Board(self.setup.initial_fen)
        for record in self.moves[:ply]:
            # Stored moves were legal when accepted: skip push_uci's legality check.
            board.push(chess.Move.from_uci(record.uci))
        return board


def current_eval(state: GameState) -> EvalJSON | None:
    """The latest evaluation of the position on the board, if any."""
    return state.evals.get(state.ply)


def flag_deadline_ms(state: GameState) -> int | None:
    """When the side to move's flag falls if nothing happens first (server clocks only)."""
    if state.setup.mode != "server" or state.status != "started":
        return None
    return state.clock.deadline_ms()


def evolve(state: GameState, event: GameEvent, now_ms: int) -> GameState:
    """Fold one event into the state; a running clock counts from ``now_ms``.

    Raises ValueError when the event does not follow the state (wrong ``seq`` or game),
    which means the caller's log is corrupt.
    """
    if event["seq"] != state.seq + 1 or event["game"] != state.setup.id:
        raise ValueError(f"event {event['seq']} does not follow seq {state.seq}")
    seq = event["seq"]
    if event["type"] == "start":
        clock = _clock_from(event["clock"], now_ms)
        return replace(state, status="started", clock=clock, seq=seq)
    if event["type"] == "clock":
        return replace(state, clock=_clock_from(event["clock"], now_ms), seq=seq)
    if event["type"] == "eval":
        evaluation: EvalJSON = {
            "ply": event["ply"],
            "depth": event["depth"],
            "score": event["score"],
            "best": event["best"],
            "pv": event["pv"],
            "nodes": event["nodes"],
            "engine": event["engine"],
        }
        return replace(state, evals={**state.evals, event["ply"]: evaluation}, seq=seq)
    if event["type"] == "move":
        mover = state.turn
        board = successor_board(state.board)
        board.push_uci(event["uci"])
        clock = _clock_from(event["clock"], now_ms)
        record = MoveRecord(event["uci"], event["san"], clock.stored_ms(mover))
        offer = None if state.draw_offer == (not mover) else state.draw_offer
        moves = (*state.moves, record)
        return replace(state, board=board, clock=clock, moves=moves, draw_offer=offer, seq=seq)
    if event["type"] == "draw_offer":
        by = None if event["by"] is None else parse_color(event["by"])
        return replace(state, draw_offer=by, seq=seq)
    if event["type"] == "review":
        review: ReviewJSON = {
            "status": event["status"],
            "engine": event["engine"],
            "budget": event["budget"],
            "completed_at": event["completed_at"],
            "initial": event["initial"],
            "white": event["white"],
            "black": event["black"],
            "moves": event["moves"],
        }
        return replace(state, review=review, seq=seq)
    if event["type"] == "takeback":
        ply = event["ply"]
        # Rare (relay corrections only): rebuilding from the start is simpler than
        # popping the shared board.
        return replace(
            state,
            board=state.board_at(ply),
            clock=_clock_from(event["clock"], now_ms),
            status="started",
            result="*",
            termination=None,
            moves=state.moves[:ply],
            draw_offer=None,
            evals={p: e for p, e in state.evals.items() if p <= ply},
            review=None,
            line=state.line + 1,
            seq=seq,
        )
    clock = _clock_from(event["clock"], now_ms)
    return replace(
        state,
        status="finished",
        result=event["result"],
        termination=event["termination"],
        clock=clock,
        draw_offer=None,
        seq=seq,
    )


def evolve_all(state: GameState, events: Iterable[GameEvent], now_ms: int) -> GameState:
    """:func:`evolve` each event in turn."""
    for event in events:
        state = evolve(state, event, now_ms)
    return state


def successor_board(board: chess.Board) -> chess.Board:
    """A copy of ``board`` to push a move on, sharing the history of ``board``.

    ``Board.copy()`` copies every move of the stack one by one (about 5 us a ply, so over a
    millisecond late in a long game); the stack entries are never mutated, so copying the
    two lists is enough.
    """
    successor = board.copy(stack=False)
    successor.move_stack = board.move_stack.copy()
    successor._stack = board._stack.copy()
    return successor


def _clock_from(data: ClockJSON, now_ms: int) -> Clock:
    running = None if data["running"] is None else parse_color(data["running"])
    return Clock(data["white_ms"], data["black_ms"], running, now_ms)
