"""The bitboard reads the search makes at every node, as plain functions of a board.

python-chess's own (`piece_type_at`, `attackers_mask`, `is_check`, `scan_reversed`, `lsb`,
`ray`, `between`, ...) are methods, generators and functions that stay interpreted Python when
the search is compiled (`make native`); these give the same answers from the same fields and
attack tables, and compile to C with the search. They are the same code when run from source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import chess

from engine.search.constants import (
    BB_DIAG_ATTACKS,
    BB_DIAG_MASKS,
    BB_FILE_ATTACKS,
    BB_FILE_MASKS,
    BB_KING_ATTACKS,
    BB_KNIGHT_ATTACKS,
    BB_PAWN_ATTACKS,
    BB_RANK_ATTACKS,
    BB_RANK_MASKS,
    BB_RAYS,
    BB_SQUARES,
    BISHOP,
    KING,
    KNIGHT,
    PAWN,
    QUEEN,
    ROOK,
)

if TYPE_CHECKING:
    # Only a type here: the board's module uses these functions.
    from engine.search.board import SearchBoard

__all__ = [
    "attackers",
    "between",
    "flip_vertical",
    "in_check",
    "lowest_square",
    "piece_type_at",
    "ray",
    "square_distance",
    "squares_down",
    "squares_up",
]

_SQUARES: Final = BB_SQUARES
_KING_ATTACKS: Final = BB_KING_ATTACKS
_KNIGHT_ATTACKS: Final = BB_KNIGHT_ATTACKS
_PAWN_ATTACKS: Final = BB_PAWN_ATTACKS
_RANK_ATTACKS: Final = BB_RANK_ATTACKS
_FILE_ATTACKS: Final = BB_FILE_ATTACKS
_DIAG_ATTACKS: Final = BB_DIAG_ATTACKS
_RANK_MASKS: Final = BB_RANK_MASKS
_FILE_MASKS: Final = BB_FILE_MASKS
_DIAG_MASKS: Final = BB_DIAG_MASKS
_RAYS: Final = BB_RAYS
_BETWEEN: Final = [[chess.between(a, b) for b in chess.SQUARES] for a in chess.SQUARES]


def lowest_square(mask: int) -> int:
    """The lowest square of the non-empty `mask`, as `chess.lsb`."""
    return (mask & -mask).bit_length() - 1


def ray(a: int, b: int) -> int:
    """The whole line through squares `a` and `b` (empty if they share none), as `chess.ray`."""
    return _RAYS[a][b]


def between(a: int, b: int) -> int:
    """The squares strictly between `a` and `b` on their line, as `chess.between`."""
    return _BETWEEN[a][b]


def square_distance(a: int, b: int) -> int:
    """The king's distance from `a` to `b`, as `chess.square_distance`."""
    return max(abs((a & 7) - (b & 7)), abs((a >> 3) - (b >> 3)))


def flip_vertical(mask: int) -> int:
    """`mask` with rank 1 and rank 8 swapped and so on, as `chess.flip_vertical`."""
    mask = (mask >> 8) & 0x00FF_00FF_00FF_00FF | (mask & 0x00FF_00FF_00FF_00FF) << 8
    mask = (mask >> 16) & 0x0000_FFFF_0000_FFFF | (mask & 0x0000_FFFF_0000_FFFF) << 16
    return mask >> 32 | (mask & 0x0000_0000_FFFF_FFFF) << 32


def squares_down(mask: int) -> list[int]:
    """The squares of `mask` from the highest, as `chess.scan_reversed` gives them."""
    squares = []
    while mask:
        square = mask.bit_length() - 1
        squares.append(square)
        mask ^= _SQUARES[square]
    return squares


def squares_up(mask: int) -> list[int]:
    """The squares of `mask` from the lowest, as `chess.scan_forward` gives them."""
    squares = []
    while mask:
        lowest = mask & -mask
        squares.append(lowest.bit_length() - 1)
        mask ^= lowest
    return squares


def piece_type_at(board: SearchBoard, square: int) -> int:
    """The type of the piece on `square`, 0 when it is empty (python-chess says None)."""
    mask = _SQUARES[square]
    if not board.occupied & mask:
        return 0
    if board.pawns & mask:
        return PAWN
    if board.knights & mask:
        return KNIGHT
    if board.bishops & mask:
        return BISHOP
    if board.rooks & mask:
        return ROOK
    if board.queens & mask:
        return QUEEN
    return KING


def attackers(board: SearchBoard, color: bool, square: int, occupied: int) -> int:
    """The pieces of `color` that attack `square` with `occupied` as the blockers, as
    `board.attackers_mask(color, square, occupied)`."""
    queens = board.queens
    straight = queens | board.rooks
    diagonal = queens | board.bishops
    found = (
        (_KING_ATTACKS[square] & board.kings)
        | (_KNIGHT_ATTACKS[square] & board.knights)
        | (_RANK_ATTACKS[square][_RANK_MASKS[square] & occupied] & straight)
        | (_FILE_ATTACKS[square][_FILE_MASKS[square] & occupied] & straight)
        | (_DIAG_ATTACKS[square][_DIAG_MASKS[square] & occupied] & diagonal)
        | (_PAWN_ATTACKS[not color][square] & board.pawns)
    )
    return found & board.occupied_co[color]


def in_check(board: SearchBoard) -> bool:
    """Whether the side to move is in check, as `board.is_check()`."""
    turn = board.turn
    king = board.occupied_co[turn] & board.kings & ~board.promoted
    if not king:
        return False
    return bool(attackers(board, not turn, king.bit_length() - 1, board.occupied))
