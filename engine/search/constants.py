"""python-chess's constants under this package's own final names, bitboards as native integers.

Compiled by mypyc, a name read from another module (`chess.PAWN`, `chess.BB_SQUARES`) is
looked up in that module's dictionary at every use; a name declared `Final` here is a C
constant (a literal) or a C static (a table) in the compiled code. Piece types and colours
are python-chess's values, written out.

The search's bitboards are `i64`: compiled, a machine word; from source, a Python `int` in the
same range. python-chess's bitboards run from 0 to 2**64 - 1, and mypyc's `int` holds only 63
bits unboxed, so every bitboard with g8 or h8 on it would be an object on the heap (allocated
by each operation on it). Here a bitboard is the same 64 bits read as a signed number: h8 is
the sign bit. `to_bitboard` and `from_bitboard` convert at the edges; inside, `&`, `|`, `^`,
`~` and `>>` give the same bits either way (`>>` fills from h8, so a right shift is masked
where that matters), while a left shift, negation and subtraction may leave the range from
source and are written with `wrap` where they can (see `engine.search.bits`).
"""

from __future__ import annotations

from typing import Final

import chess
from librt.vecs import vec
from mypy_extensions import i64

PAWN: Final = 1
KNIGHT: Final = 2
BISHOP: Final = 3
ROOK: Final = 4
QUEEN: Final = 5
KING: Final = 6
WHITE: Final = True
BLACK: Final = False

_BITS: Final = 0xFFFF_FFFF_FFFF_FFFF


def to_bitboard(mask: int) -> i64:
    """python-chess's bitboard `mask` (any integer: its low 64 bits) as the search's."""
    mask &= _BITS
    return mask - (1 << 64) if mask >> 63 else mask


def from_bitboard(mask: int) -> int:
    """The search's bitboard `mask` as python-chess's (0 to 2**64 - 1); python-chess's own
    comes back unchanged."""
    return mask & _BITS


def _table(masks: list[int]) -> vec[i64]:
    return vec[i64]([to_bitboard(mask) for mask in masks])


BB_ALL: Final[i64] = -1
BB_LIGHT_SQUARES: Final[i64] = to_bitboard(chess.BB_LIGHT_SQUARES)
BB_DARK_SQUARES: Final[i64] = to_bitboard(chess.BB_DARK_SQUARES)
BB_CORNERS: Final[i64] = to_bitboard(chess.BB_CORNERS)
BB_FILE_A: Final[i64] = chess.BB_FILE_A
BB_FILE_H: Final[i64] = to_bitboard(chess.BB_FILE_H)
BB_RANK_1: Final[i64] = chess.BB_RANK_1
BB_RANK_2: Final[i64] = chess.BB_RANK_2
BB_RANK_3: Final[i64] = chess.BB_RANK_3
BB_RANK_4: Final[i64] = chess.BB_RANK_4
BB_RANK_5: Final[i64] = chess.BB_RANK_5
BB_RANK_6: Final[i64] = chess.BB_RANK_6
BB_RANK_7: Final[i64] = chess.BB_RANK_7
BB_RANK_8: Final[i64] = to_bitboard(chess.BB_RANK_8)
BB_FILES: Final = _table(chess.BB_FILES)
BB_SQUARES: Final = _table(chess.BB_SQUARES)
BB_KING_ATTACKS: Final = _table(chess.BB_KING_ATTACKS)
BB_KNIGHT_ATTACKS: Final = _table(chess.BB_KNIGHT_ATTACKS)
BB_PAWN_ATTACKS: Final = [_table(attacks) for attacks in chess.BB_PAWN_ATTACKS]
BB_RAYS: Final = [_table(rays) for rays in chess.BB_RAYS]
BB_BETWEEN: Final = [_table([chess.between(a, b) for b in chess.SQUARES]) for a in chess.SQUARES]
