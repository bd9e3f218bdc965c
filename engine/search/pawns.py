"""Pawn structure and king shelter: the evaluation terms that depend on pawns and kings only.

Doubled and isolated pawns cost, passed pawns earn a bonus by rank (more in the endgame, and
more when the enemy king is far from the pawn's path and the own king near it), and in the
middlegame a king on its first two ranks wants pawns in front of it on its own and the
neighbouring files. The weights are fitted (see `engine.search.evaluation`) and add to the
pawns' placement tables, which pay for the advance: with them a passed pawn is worth more
the further it is, though the bonus alone is not larger on every rank.

The terms are counted on the search's machine-word bitboards (`engine.search.constants`),
whole sets of pawns at a time where they can be: the pawns that may be passed are those not
in the squares filled behind the others, and only they are visited one by one. Tables are
`vec`s, read without an object; a mask past g8 kept as an `int` would be one, and so would
a list of squares.

Those terms change only when a pawn or a king moves, which is rare in a search tree, so a
`PawnTable` keeps them per pawn-and-king placement. A table belongs to one search job, or to
one game's searches in turn (see `engine.search.search.SearchMemory`), like the move-ordering
memory; it is bounded and nothing here is module-level state but constants.
"""

from __future__ import annotations

from typing import Final

import chess
from librt.vecs import vec
from mypy_extensions import i64

from engine.search.bits import (
    FILE_SETS,
    flip_bitboard,
    lowest_square,
    occupied_files,
    popcount,
    square_distance,
)
from engine.search.board import SearchBoard
from engine.search.constants import (
    BB_FILE_A,
    BB_FILE_H,
    BB_FILES,
    WHITE,
    to_bitboard,
)

__all__ = ["PawnTable", "pawn_terms"]

_DOUBLED: Final = (-8, -27)
_ISOLATED: Final = (-10, -9)
# Indexed by the pawn's rank counted from its own side (1 = the starting rank).
_PASSED_MG: Final = vec[i64]([0, -15, -26, -6, 11, 50, 2, 0])
_PASSED_EG: Final = vec[i64]([0, 21, 30, 43, 66, 57, 58, 0])
# Per rank step beyond the third, per square of king distance (capped) to the square in front.
_PASSED_THEIR_KING_EG: Final = 10
_PASSED_OWN_KING_EG: Final = -9
_KING_DISTANCE_CAP: Final = 5
_SHIELD_MISSING_MG: Final = -12
_SHIELD_OPEN_MG: Final = -13
# Fitted above zero: a shield pawn advanced beyond the third rank still beats none at all.
_SHIELD_ADVANCED_MG: Final = 5

# The squares above each rank.
_RANKS_ABOVE: Final = vec[i64]([to_bitboard(chess.BB_ALL << 8 * (rank + 1)) for rank in range(8)])
# The king's distance between two squares `a << 6 | b`, capped.
_CAPPED_DISTANCE: Final = vec[i64](
    [min(square_distance(a, b), _KING_DISTANCE_CAP) for a in range(64) for b in range(64)]
)


def _white_terms(own: i64, their: i64, own_king: int, their_king: int) -> tuple[i64, i64]:
    """Return `(mg, eg)` of the pawns `own` and king `own_king` of the side moving up the board."""
    files = occupied_files(own)
    # Machine words: compiled, an `int` product with a negative weight takes the slow path.
    extra: i64 = popcount(own) - popcount(files)
    # Files with pawns but none on either side of them.
    isolated = files & ~(files << 1 | files >> 1)
    alone: i64 = popcount(own & FILE_SETS[isolated])
    mg: i64 = _DOUBLED[0] * extra + _ISOLATED[0] * alone
    eg: i64 = _DOUBLED[1] * extra + _ISOLATED[1] * alone
    # The squares behind an enemy pawn on its file and the neighbouring ones (a pawn there is
    # stopped or taken on its way), and behind an own pawn on its file (only the front pawn of
    # a file can be passed). Pawns stand on ranks 2 to 7, so no shift reaches h8.
    theirs_behind = their >> 8
    theirs_behind |= theirs_behind >> 8
    theirs_behind |= theirs_behind >> 16
    theirs_behind |= theirs_behind >> 32
    own_behind = own >> 8
    own_behind |= own_behind >> 8
    own_behind |= own_behind >> 16
    own_behind |= own_behind >> 32
    passed = own & ~(
        theirs_behind
        | (theirs_behind & ~BB_FILE_A) >> 1
        | (theirs_behind & ~BB_FILE_H) << 1
        | own_behind
    )
    while passed:
        square = lowest_square(passed)
        passed &= passed - 1
        rank = square >> 3
        mg += _PASSED_MG[rank]
        eg += _PASSED_EG[rank]
        if rank >= 3:
            stop = square + 8
            eg += (rank - 2) * (
                _PASSED_THEIR_KING_EG * _CAPPED_DISTANCE[their_king << 6 | stop]
                + _PASSED_OWN_KING_EG * _CAPPED_DISTANCE[own_king << 6 | stop]
            )
    king_rank = own_king >> 3
    if king_rank <= 1:
        king_file = own_king & 7
        ahead = own & _RANKS_ABOVE[king_rank]
        for file in range(max(king_file - 1, 0), min(king_file + 1, 7) + 1):
            file_mask = BB_FILES[file]
            shield = ahead & file_mask
            if not shield:
                mg += _SHIELD_MISSING_MG
                if not their & file_mask:
                    mg += _SHIELD_OPEN_MG
            elif lowest_square(shield) >> 3 > king_rank + 2:
                mg += _SHIELD_ADVANCED_MG
    return mg, eg


def pawn_terms(white: i64, black: i64, white_king: int, black_king: int) -> tuple[int, int]:
    """Return `(mg, eg)` of pawn structure and king shelter, from White's point of view.

    `white` and `black` are the pawn bitboards (on ranks 2 to 7, as in any legal position),
    the kings are squares. Black's terms are White's terms of the mirrored placement, so a
    mirrored position scores exactly opposite.
    """
    white_mg, white_eg = _white_terms(white, black, white_king, black_king)
    black_mg, black_eg = _white_terms(
        flip_bitboard(black),
        flip_bitboard(white),
        black_king ^ 56,
        white_king ^ 56,
    )
    return white_mg - black_mg, white_eg - black_eg


_EMPTY: Final[i64] = 1 << 40
"""What an empty slot of a `PawnTable` holds: no pair of terms packs to it."""
_SIZE: Final = 1 << 14
# A new table of the default size copies these (a copy of a `vec` is a block copy; building
# one from a list converts each item, about 2 ms for this size, paid by every search job).
_NO_KEYS: Final = vec[i64]([0] * _SIZE)
_NO_TERMS: Final = vec[i64]([_EMPTY] * _SIZE)


class PawnTable:
    """A cache of `pawn_terms` per placement of pawns and kings, for one search job or one
    game's searches.

    Direct-mapped: the board's `pawn_hash` picks one of `size` slots (a power of two), which
    keeps the last placement computed there. A hit reads two `vec`s of machine words, with
    nothing built as an object (a dictionary would box the key at every look-up, a list
    each entry).
    """

    __slots__ = ("_keys", "_mask", "_terms")

    def __init__(self, size: int = _SIZE) -> None:
        if size < 1 or size & (size - 1):
            raise ValueError(f"a pawn table's size is a power of two, not {size}")
        self._mask: i64 = size - 1
        # Both terms packed into one integer: mg * 65536 + eg (each well within 16 bits).
        if size == _SIZE:
            self._keys = _NO_KEYS[:]
            self._terms = _NO_TERMS[:]
        else:
            self._keys = vec[i64]([0] * size)
            self._terms = vec[i64]([_EMPTY] * size)

    def __len__(self) -> int:
        return sum(1 for packed in self._terms if packed != _EMPTY)

    def terms(self, board: SearchBoard) -> tuple[int, int]:
        """Return `pawn_terms` of `board`, from the cache when the placement was met before.

        The board must have one king of each colour.
        """
        key = board.pawn_hash
        slot = key & self._mask
        packed = self._terms[slot]
        if packed != _EMPTY and self._keys[slot] == key:
            eg = ((packed + 32768) & 65535) - 32768
            return (packed - eg) >> 16, eg
        pawns = board.pawns
        kings = board.kings
        white = board.side(WHITE)
        mg, eg = pawn_terms(
            pawns & white,
            pawns & ~white,
            lowest_square(kings & white),
            lowest_square(kings & ~white),
        )
        self._keys[slot] = key
        self._terms[slot] = mg * 65536 + eg
        return mg, eg
