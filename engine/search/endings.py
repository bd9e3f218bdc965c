"""Endings the side ahead cannot win, whatever its material says.

The evaluation is a sum of terms, each blind to the rest of the board: it counts a bishop
up as a bishop up, though without pawns a lone minor piece cannot mate, and bishops of
opposite colours hold many positions a pawn or two down. `scale_drawish` shrinks the
evaluation of such endings towards a draw, so that the search does not trade into them as
into a win and spectators do not see rook and bishop against rook as +3.5.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import i64

from engine.search.bits import popcount
from engine.search.board import SearchBoard
from engine.search.constants import (
    BB_LIGHT_SQUARES,
    BISHOP,
    KNIGHT,
    QUEEN,
    ROOK,
    WHITE,
)

__all__ = ["scale_drawish"]

_SCALE_FULL: Final = 64
"""The denominator of the factors below."""
_CANNOT_MATE: Final = 0
"""Less than a rook and no pawns (a minor piece, or two knights against a bare king)."""
_MINOR_UP: Final = 4
"""No pawns, at most a minor piece up, against no more than a minor piece (KR v KB)."""
_MINOR_UP_AGAINST_MORE: Final = 14
"""No pawns, at most a minor piece up, against more (KRB v KR, KQ v KRB)."""
_OPPOSITE_BISHOPS: Final = 32
"""One bishop each, on squares of opposite colours, and nothing else but pawns."""

_VALUES: Final = (0, 0, 320, 330, 500, 1000, 0)
"""Material without pawns, by piece type, for telling these endings apart: a queen counts
for more than any two minor pieces by more than a bishop (queen against two minor pieces
wins, queen against rook and bishop mostly draws)."""
_MINOR: Final = _VALUES[BISHOP]
_ROOK: Final = _VALUES[ROOK]


def _material(board: SearchBoard, mask: i64) -> int:
    return (
        _VALUES[KNIGHT] * popcount(board.knights & mask)
        + _MINOR * popcount(board.bishops & mask)
        + _ROOK * popcount(board.rooks & mask)
        + _VALUES[QUEEN] * popcount(board.queens & mask)
    )


def scale_drawish(board: SearchBoard, score: int) -> int:
    """Shrink `score` (White's view) towards 0 where the side it favours can hardly win.

    Rounds towards zero, so that a position and its colour mirror score exactly opposite; the
    sign never changes. Cheap where nothing applies: both sides have pawns and there is more
    on the board than bishops.
    """
    ahead = score > 0
    strong = board.side(ahead)
    pawns = board.pawns
    if not pawns & strong:
        knights = board.knights
        if not pawns and not strong & ~(board.kings | knights) and popcount(strong & knights) <= 2:
            return 0  # Two knights cannot force mate without pawns to lift a stalemate.
        strong_material = _material(board, strong)
        weak_material = _material(board, board.side(not ahead))
        if strong_material - weak_material <= _MINOR:
            if strong_material < _ROOK:
                factor = _CANNOT_MATE
            elif weak_material <= _MINOR:
                factor = _MINOR_UP
            else:
                factor = _MINOR_UP_AGAINST_MORE
            return _scaled(score, factor)
    bishops = board.bishops
    if (
        not (board.knights | board.rooks | board.queens)
        and popcount(bishops) == 2
        and popcount(bishops & board.side(WHITE)) == 1
        and popcount(bishops & BB_LIGHT_SQUARES) == 1
    ):
        return _scaled(score, _OPPOSITE_BISHOPS)
    return score


def _scaled(score: int, factor: int) -> int:
    total = score * factor
    return total // _SCALE_FULL if total >= 0 else -(-total // _SCALE_FULL)
