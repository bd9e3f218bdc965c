"""JSON shapes that leave the server: game views and game events (``shared/API.md``).

Events are built once by the core, persisted as they are, and serialised once for every
subscriber; their keys are the wire format.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

import chess

ColorName = Literal["white", "black"]
Status = Literal["created", "started", "finished"]
Result = Literal["1-0", "0-1", "1/2-1/2", "*"]
Mode = Literal["server", "relay"]
Termination = Literal[
    "checkmate",
    "resignation",
    "timeout",
    "stalemate",
    "insufficient_material",
    "threefold_repetition",
    "fivefold_repetition",
    "fifty_moves",
    "seventyfive_moves",
    "agreement",
    "arbiter",
    "forfeit",
]


def color_name(color: chess.Color) -> ColorName:
    """``chess.WHITE`` -> ``"white"``."""
    return "white" if color == chess.WHITE else "black"


def parse_color(name: ColorName) -> chess.Color:
    """``"white"`` -> ``chess.WHITE``."""
    return chess.WHITE if name == "white" else chess.BLACK


class ClockJSON(TypedDict):
    """Remaining times in ms and the side whose time is running."""

    white_ms: int
    black_ms: int
    running: ColorName | None


class PlayerJSON(TypedDict):
    """A player as shown in a game."""

    name: str
    rating: int | None
    title: str | None
    fide_id: int | None


class MoveJSON(TypedDict):
    """One half-move: ``clock_ms`` is the mover's time after it, increment included."""

    uci: str
    san: str
    clock_ms: int


class ScoreJSON(TypedDict, total=False):
    """White's point of view: exactly one of ``cp`` and ``mate``."""

    cp: int
    mate: int


def score_json(cp: int | None, mate: int | None) -> ScoreJSON:
    """A White-view score in wire form: ``{"mate": -3}`` when ``mate`` is set, else ``{"cp": 31}``.

    ``mate`` counts moves, positive when White mates. Raises ValueError when both are None.
    """
    if mate is not None:
        return {"mate": mate}
    if cp is None:
        raise ValueError("a score needs cp or mate")
    return {"cp": cp}


class EvalJSON(TypedDict):
    """The latest evaluation of the current position."""

    ply: int
    depth: int
    score: ScoreJSON
    best: str | None
    pv: list[str]
    nodes: int
    engine: str


class StartEvent(TypedDict):
    """The game started; the side to move's clock runs."""

    type: Literal["start"]
    game: str
    seq: int
    fen: str
    clock: ClockJSON


class MoveEvent(TypedDict):
    """A move was accepted and durably written. ``ply`` counts the half-moves after it."""

    type: Literal["move"]
    game: str
    seq: int
    ply: int
    uci: str
    san: str
    fen: str
    clock: ClockJSON


class DrawOfferEvent(TypedDict):
    """A draw offer by ``by`` is pending; ``by`` null means no offer stands any more."""

    type: Literal["draw_offer"]
    game: str
    seq: int
    by: ColorName | None


class EndEvent(TypedDict):
    """The game ended; ``reason`` is the arbiter's note, when one was given."""

    type: Literal["end"]
    game: str
    seq: int
    result: Result
    termination: Termination
    clock: ClockJSON
    reason: NotRequired[str]


class ClockEvent(TypedDict):
    """The clocks as they stand; written periodically so a crash refunds little time."""

    type: Literal["clock"]
    game: str
    seq: int
    clock: ClockJSON


class TakebackEvent(TypedDict):
    """The game went back to the position after ``ply`` half-moves (relay corrections).

    Every later move is gone; a finished game is reopened (status ``started``, result
    ``*``, no termination, no draw offer). ``fen`` is the position after ``ply``; ``clock``
    shows each side's last reported time up to that ply. Each takeback starts a new line
    of play (:attr:`engine.rules.game.GameState.line`), so a ply replayed after it is a new
    move, not a duplicate of the one taken back.
    """

    type: Literal["takeback"]
    game: str
    seq: int
    ply: int
    fen: str
    clock: ClockJSON


class EvalEvent(EvalJSON):
    """An engine's evaluation of the position after ``ply`` half-moves (White's view)."""

    type: Literal["eval"]
    game: str
    seq: int


# --- game review (``GET /api/games/{id}/review``, the ``review`` event) ---

JudgmentName = Literal["Inaccuracy", "Mistake", "Blunder"]


class JudgmentJSON(TypedDict):
    """Why a move is marked: its ``nag`` (6 ``?!``, 2 ``?``, 4 ``??``) and lichess's comment."""

    name: JudgmentName
    nag: int
    comment: str


class MoveReviewJSON(TypedDict):
    """One reviewed half-move: ``score`` (White's view) is the position after it.

    ``best`` is the engine's move in the position before it (null where there was nothing
    to search); ``variation`` the engine's line from there (UCI, at most 20 half-moves),
    given for judged moves only. ``accuracy`` is the move's accuracy for its mover (0-100).
    """

    ply: int
    uci: str
    san: str
    score: ScoreJSON
    depth: int
    accuracy: float
    judgment: JudgmentJSON | None
    best: str | None
    variation: list[str]


class PlayerReviewJSON(TypedDict):
    """One side's figures: lichess's accuracy (0-100), average centipawn loss, and counts."""

    accuracy: float | None
    acpl: int | None
    inaccuracy: int
    mistake: int
    blunder: int


class BudgetJSON(TypedDict, total=False):
    """The fixed search budget of each position: a ``depth`` or a number of ``nodes``."""

    depth: int
    nodes: int


class PositionReviewJSON(TypedDict):
    """The evaluation of the start position (White's view)."""

    score: ScoreJSON
    depth: int
    best: str | None


class ReviewJSON(TypedDict):
    """A finished game's review (``status`` ``done``), as REST and the event carry it."""

    status: Literal["done"]
    engine: str
    budget: BudgetJSON
    completed_at: str
    initial: PositionReviewJSON
    white: PlayerReviewJSON
    black: PlayerReviewJSON
    moves: list[MoveReviewJSON]


class ReviewEvent(ReviewJSON):
    """The game's review is done (or replaced by a newer one)."""

    type: Literal["review"]
    game: str
    seq: int


GameEvent = (
    StartEvent
    | MoveEvent
    | DrawOfferEvent
    | EndEvent
    | ClockEvent
    | EvalEvent
    | TakebackEvent
    | ReviewEvent
)


class GameJSON(TypedDict):
    """The full state of a game as ``GET /api/games/{id}`` returns it."""

    id: str
    tournament: str | None
    round: int | None
    board: int | None
    white: PlayerJSON
    black: PlayerJSON
    mode: Mode
    time_control: dict[str, int]
    status: Status
    result: Result
    termination: Termination | None
    initial_fen: str
    fen: str
    ply: int
    moves: list[MoveJSON]
    clock: ClockJSON
    draw_offer: ColorName | None
    eval: EvalJSON | None
    spectators: int
    seq: int
    created_at: str
