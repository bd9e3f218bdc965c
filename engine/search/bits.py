"""The bitboard reads the search makes at every node, as plain functions of a board.

python-chess's own (`piece_type_at`, `attackers_mask`, `is_check`, `scan_reversed`, `lsb`,
`ray`, `between`, ...) are methods, generators and functions that stay interpreted Python when
the search is compiled (`make native`); these give the same answers from the same fields, on
the search's signed bitboards (`engine.search.constants`), and compile to C with the search.
They are the same code when run from source.

Sliding attacks come from tables indexed by the occupancy of one line through the square, an
8-bit number gathered with shifts: python-chess's tables are dictionaries keyed by the
occupancy itself, a hashed object per lookup. The tables hold python-chess's attacks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import chess
from librt.vecs import vec
from mypy_extensions import i64

from engine.search.constants import (
    BB_BETWEEN,
    BB_FILE_A,
    BB_KING_ATTACKS,
    BB_KNIGHT_ATTACKS,
    BB_PAWN_ATTACKS,
    BB_RAYS,
    BB_SQUARES,
    BISHOP,
    KING,
    KNIGHT,
    PAWN,
    QUEEN,
    ROOK,
    to_bitboard,
)

if TYPE_CHECKING:
    # Only a type here: the board's module uses these functions.
    from engine.search.board import SearchBoard

__all__ = [
    "BISHOP_LINES",
    "FILE_SETS",
    "ROOK_LINES",
    "attackers",
    "between",
    "bishop_attacks",
    "flip_bitboard",
    "highest_square",
    "in_check",
    "lowest_square",
    "more_than_one",
    "occupied_files",
    "piece_type_at",
    "popcount",
    "ray",
    "rook_attacks",
    "square_distance",
    "squares_down",
    "squares_up",
    "wrap",
]

_SQUARES: Final = BB_SQUARES
_KING_ATTACKS: Final = BB_KING_ATTACKS
_KNIGHT_ATTACKS: Final = BB_KNIGHT_ATTACKS
_PAWN_ATTACKS: Final = BB_PAWN_ATTACKS
_RAYS: Final = BB_RAYS
_BETWEEN: Final = BB_BETWEEN
# Compiled, a literal constant of 2**62 or more is stored as a Python object, which every use
# converts back to a machine word: bit 62 is read by shifting it down, and the masks of h8 and
# of the squares below it are computed (a `Final` computed at import is a machine word).
_BELOW_62: Final[i64] = (1 << 62) - 1
_H8: Final[i64] = BB_SQUARES[63]
_BELOW_H8: Final[i64] = ~_H8
_ONES: Final = vec[i64]([int.bit_count(index) for index in range(1 << 16)])


def _line(square: int, step_file: int, step_rank: int) -> list[int]:
    """The squares of the line through `square` in one direction and the other, by file
    (by rank for a file)."""
    squares = [square]
    for sign in (1, -1):
        file, rank = chess.square_file(square), chess.square_rank(square)
        while True:
            file += sign * step_file
            rank += sign * step_rank
            if not (0 <= file < 8 and 0 <= rank < 8):
                break
            squares.append(chess.square(file, rank))
    return squares


def _line_mask(square: int, step_file: int, step_rank: int) -> int:
    """The line through `square` (itself included), as python-chess's bitboard."""
    mask = 0
    for on_line in _line(square, step_file, step_rank):
        mask |= chess.BB_SQUARES[on_line]
    return mask


def _line_table(
    step_file: int, step_rank: int, table: list[dict[int, int]], masks: list[int]
) -> vec[i64]:
    """For each square and each 8-bit occupancy of its line (bit `i`: the line's square on
    file `i`, or on rank `i` for a file), the attacks along that line, from python-chess's
    `table` (its rank, file or diagonal attacks, keyed by the occupancy within `masks`)."""
    attacks: list[i64] = []
    for square in chess.SQUARES:
        line = _line(square, step_file, step_rank)
        line_mask = _line_mask(square, step_file, step_rank)
        for index in range(256):
            occupied = 0
            for on_line in line:
                coordinate = chess.square_rank(on_line) if step_file == 0 else on_line & 7
                if index >> coordinate & 1:
                    occupied |= chess.BB_SQUARES[on_line]
            reach = table[square][occupied & masks[square]] & line_mask
            attacks.append(to_bitboard(reach))
    return vec[i64](attacks)


_RANK_TABLE: Final = _line_table(1, 0, chess.BB_RANK_ATTACKS, chess.BB_RANK_MASKS)
_FILE_TABLE: Final = _line_table(0, 1, chess.BB_FILE_ATTACKS, chess.BB_FILE_MASKS)
_DIAG_TABLE: Final = _line_table(1, 1, chess.BB_DIAG_ATTACKS, chess.BB_DIAG_MASKS)
_ANTI_TABLE: Final = _line_table(1, -1, chess.BB_DIAG_ATTACKS, chess.BB_DIAG_MASKS)
_DIAG_LINES: Final = vec[i64]([to_bitboard(_line_mask(sq, 1, 1)) for sq in chess.SQUARES])
_ANTI_LINES: Final = vec[i64]([to_bitboard(_line_mask(sq, 1, -1)) for sq in chess.SQUARES])


def rook_attacks(square: int, occupied: i64) -> i64:
    """The squares a rook on `square` attacks with `occupied` as the blockers."""
    rank = occupied >> (square & 56) & 255
    # The file's eight squares gathered into one byte, rank by rank.
    gathered = occupied >> (square & 7) & BB_FILE_A
    gathered |= gathered >> 7
    gathered |= gathered >> 14
    gathered |= gathered >> 28
    return _RANK_TABLE[square << 8 | rank] | _FILE_TABLE[square << 8 | (gathered & 255)]


def bishop_attacks(square: int, occupied: i64) -> i64:
    """The squares a bishop on `square` attacks with `occupied` as the blockers."""
    # Each diagonal has one square per file: its ranks folded onto one byte keep them apart.
    diagonal = occupied & _DIAG_LINES[square]
    diagonal |= diagonal >> 32
    diagonal |= diagonal >> 16
    diagonal |= diagonal >> 8
    anti = occupied & _ANTI_LINES[square]
    anti |= anti >> 32
    anti |= anti >> 16
    anti |= anti >> 8
    return _DIAG_TABLE[square << 8 | (diagonal & 255)] | _ANTI_TABLE[square << 8 | (anti & 255)]


# The lines from each square, the blockers aside: where a slider there could pin or check.
ROOK_LINES: Final = vec[i64]([rook_attacks(square, 0) for square in range(64)])
BISHOP_LINES: Final = vec[i64]([bishop_attacks(square, 0) for square in range(64)])


def wrap(mask: i64) -> i64:
    """`mask`'s low 64 bits as a bitboard: a left shift's result. Compiled, the shift has
    already wrapped (a C shift of an `int64_t` into the sign bit, which GCC, the compiler
    `make native` uses, defines as two's complement) and this changes nothing; from source it
    drops what went past h8."""
    return (mask & _BELOW_H8) | (_H8 if mask >> 63 & 1 else 0)


def lowest_square(mask: i64) -> int:
    """The lowest square of the non-empty `mask`, as `chess.lsb`."""
    low = mask & _BELOW_62
    if low:
        # Below g8 the number fits an unboxed `int`, whose bit_length is native.
        return int(low & -low).bit_length() - 1
    return 62 if mask >> 62 & 1 else 63


def highest_square(mask: i64) -> int:
    """The highest square of the non-empty `mask`, as `chess.msb`."""
    if mask < 0:
        return 63
    if mask >> 62 & 1:
        return 62
    return int(mask).bit_length() - 1


def popcount(mask: i64) -> int:
    """How many squares `mask` holds, as `chess.popcount`."""
    ones = _ONES
    return (
        ones[mask & 0xFFFF]
        + ones[mask >> 16 & 0xFFFF]
        + ones[mask >> 32 & 0xFFFF]
        + ones[mask >> 48 & 0xFFFF]
    )


def more_than_one(mask: i64) -> bool:
    """Whether `mask` holds two squares or more."""
    return mask != _H8 and bool(mask & (mask - 1))


def ray(a: int, b: int) -> i64:
    """The whole line through squares `a` and `b` (empty if they share none), as `chess.ray`."""
    return _RAYS[a][b]


def between(a: int, b: int) -> i64:
    """The squares strictly between `a` and `b` on their line, as `chess.between`."""
    return _BETWEEN[a][b]


def square_distance(a: int, b: int) -> int:
    """The king's distance from `a` to `b`, as `chess.square_distance`."""
    return max(abs((a & 7) - (b & 7)), abs((a >> 3) - (b >> 3)))


def flip_bitboard(mask: i64) -> i64:
    """`mask` with rank 1 and rank 8 swapped and so on, as `chess.flip_vertical`, for any of
    the search's bitboards."""
    mask = (mask >> 8) & 0x00FF_00FF_00FF_00FF | (mask & 0x00FF_00FF_00FF_00FF) << 8
    mask = (mask >> 16) & 0x0000_FFFF_0000_FFFF | (mask & 0x0000_FFFF_0000_FFFF) << 16
    # From source the shifts above may set bit 63 as a positive number; here h1's bit goes
    # to h8 on its own, so that the result is a bitboard from source too.
    flipped = (mask >> 32) & 0xFFFF_FFFF | (mask & 0x7FFF_FFFF) << 32
    return flipped | _H8 if mask & 0x8000_0000 else flipped


def occupied_files(mask: i64) -> int:
    """The files `mask` has a square on, as 8 bits: bit `f` for file `f` (a is 0)."""
    # The ranks folded onto the first; what `>>` fills in from h8 stays above it.
    mask |= mask >> 8
    mask |= mask >> 16
    return (mask | mask >> 32) & 0xFF


# For each set of files as `occupied_files` gives it, their squares.
FILE_SETS: Final = vec[i64](
    [
        to_bitboard(sum(chess.BB_FILES[file] for file in range(8) if files >> file & 1))
        for files in range(256)
    ]
)


def squares_down(mask: i64) -> list[int]:
    """The squares of `mask` from the highest, as `chess.scan_reversed` gives them."""
    squares = []
    if mask < 0:
        squares.append(63)
    if mask >> 62 & 1:
        squares.append(62)
    low = int(mask & _BELOW_62)
    while low:
        square = low.bit_length() - 1
        squares.append(square)
        low ^= 1 << square
    return squares


def squares_up(mask: i64) -> list[int]:
    """The squares of `mask` from the lowest, as `chess.scan_forward` gives them."""
    squares = []
    low = int(mask & _BELOW_62)
    while low:
        lowest = low & -low
        squares.append(lowest.bit_length() - 1)
        low ^= lowest
    if mask >> 62 & 1:
        squares.append(62)
    if mask < 0:
        squares.append(63)
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


def attackers(board: SearchBoard, color: bool, square: int, occupied: i64) -> i64:
    """The pieces of `color` that attack `square` with `occupied` as the blockers, as
    `board.attackers_mask(color, square, occupied)`."""
    queens = board.queens
    found = (
        (_KING_ATTACKS[square] & board.kings)
        | (_KNIGHT_ATTACKS[square] & board.knights)
        | (_PAWN_ATTACKS[not color][square] & board.pawns)
    )
    straight = queens | board.rooks
    if straight:
        found |= rook_attacks(square, occupied) & straight
    diagonal = queens | board.bishops
    if diagonal:
        found |= bishop_attacks(square, occupied) & diagonal
    return found & board.side(color)


def in_check(board: SearchBoard) -> bool:
    """Whether the side to move is in check, as `board.is_check()`."""
    turn = board.turn
    king = board.side(turn) & board.kings & ~board.promoted
    if not king:
        return False
    return bool(attackers(board, not turn, lowest_square(king), board.occupied))
