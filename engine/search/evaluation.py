"""Static evaluation: material plus piece-square tables, tapered by game phase.

Each piece contributes a middlegame and an endgame value (material and placement). The two sums
are blended by the phase, which runs from 24 (all minor and major pieces on the board) down to 0
(kings and pawns only). The placement tables are the published PeSTO tables (Ronald
Friederich's tuned values), facts about chess written out here in this module's own layout.
The material values and every other weight, here and in `engine.search.pawns`, were fitted
together by `bench/tune.py` to Stockfish's scores of 230,000 quiet positions, on the scale of
the evaluation as it was (the search's margins are in its centipawns); each weight is part of
a sum, so a single one need not look like chess wisdom on its own.

The search keeps the material and placement terms up to date move by move: `evaluate_terms`
gives the `(mg, eg, phase)` of a position once, `move_delta` what a move changes. Where the
search takes a static evaluation it adds `positional_terms` (pawn structure and king shelter
through a `PawnTable`, the bishop pair, rooks on open files, the side to move's tempo and its
pieces attacked by pawns), and `blend` turns the sum into
centipawns; `engine.search.endings.scale_drawish` then shrinks it in endings that the side
ahead cannot win. All terms are from White's point of view; `evaluate_white` is the whole of
it.
"""

from __future__ import annotations

from typing import Final

import chess
from librt.vecs import vec
from mypy_extensions import i64

from engine.search.bits import (
    FILE_SETS,
    lowest_square,
    occupied_files,
    piece_type_at,
    popcount,
    squares_up,
)
from engine.search.board import SearchBoard
from engine.search.constants import (
    BB_FILE_A,
    BB_FILE_H,
    BLACK,
    KING,
    PAWN,
    ROOK,
    WHITE,
)
from engine.search.endings import scale_drawish
from engine.search.move import Move
from engine.search.pawns import PawnTable, pawn_terms

__all__ = [
    "MAX_PHASE",
    "PHASE_WEIGHTS",
    "PIECE_VALUES",
    "blend",
    "evaluate",
    "evaluate_terms",
    "evaluate_white",
    "move_delta",
    "positional_terms",
]

MAX_PHASE: Final = 24
"""The phase of a position with all sixteen minor and major pieces; the middlegame weight."""

PHASE_WEIGHTS: Final[tuple[int, ...]] = (0, 0, 1, 1, 2, 4, 0)
"""How much each piece type (indexed by `PAWN` .. `KING`) counts towards the phase."""

PIECE_VALUES: Final[tuple[int, ...]] = (0, 100, 320, 330, 500, 950, 0)
"""Rough material values in centipawns for move ordering and pruning margins (not for scoring)."""

_BISHOP_PAIR: Final = (36, 57)
_ROOK_OPEN_FILE: Final = (27, 11)
_ROOK_HALF_OPEN_FILE: Final = (15, 29)
# The side to move's: the right to move, and each of its pieces (not pawns or king) that an
# enemy pawn attacks (it must move or be lost, or the pawn must be dealt with).
_TEMPO: Final = (18, 8)
_PAWN_THREAT: Final = (-39, -21)

_MG_MATERIAL: Final = (0, 83, 362, 371, 456, 1069, 0)
_EG_MATERIAL: Final = (0, 96, 317, 333, 571, 1016, 0)

# The tables read like a diagram seen from White's side: the first row is rank 8, the last rank 1.
# fmt: off
_MG_PST_DIAGRAM: tuple[tuple[int, ...], ...] = (
    (),
    (  # pawn
          0,   0,   0,   0,   0,   0,   0,   0,
         98, 134,  61,  95,  68, 126,  34, -11,
         -6,   7,  26,  31,  65,  56,  25, -20,
        -14,  13,   6,  21,  23,  12,  17, -23,
        -27,  -2,  -5,  12,  17,   6,  10, -25,
        -26,  -4,  -4, -10,   3,   3,  33, -12,
        -35,  -1, -20, -23, -15,  24,  38, -22,
          0,   0,   0,   0,   0,   0,   0,   0,
    ),
    (  # knight
       -167, -89, -34, -49,  61, -97, -15,-107,
        -73, -41,  72,  36,  23,  62,   7, -17,
        -47,  60,  37,  65,  84, 129,  73,  44,
         -9,  17,  19,  53,  37,  69,  18,  22,
        -13,   4,  16,  13,  28,  19,  21,  -8,
        -23,  -9,  12,  10,  19,  17,  25, -16,
        -29, -53, -12,  -3,  -1,  18, -14, -19,
       -105, -21, -58, -33, -17, -28, -19, -23,
    ),
    (  # bishop
        -29,   4, -82, -37, -25, -42,   7,  -8,
        -26,  16, -18, -13,  30,  59,  18, -47,
        -16,  37,  43,  40,  35,  50,  37,  -2,
         -4,   5,  19,  50,  37,  37,   7,  -2,
         -6,  13,  13,  26,  34,  12,  10,   4,
          0,  15,  15,  15,  14,  27,  18,  10,
          4,  15,  16,   0,   7,  21,  33,   1,
        -33,  -3, -14, -21, -13, -12, -39, -21,
    ),
    (  # rook
         32,  42,  32,  51,  63,   9,  31,  43,
         27,  32,  58,  62,  80,  67,  26,  44,
         -5,  19,  26,  36,  17,  45,  61,  16,
        -24, -11,   7,  26,  24,  35,  -8, -20,
        -36, -26, -12,  -1,   9,  -7,   6, -23,
        -45, -25, -16, -17,   3,   0,  -5, -33,
        -44, -16, -20,  -9,  -1,  11,  -6, -71,
        -19, -13,   1,  17,  16,   7, -37, -26,
    ),
    (  # queen
        -28,   0,  29,  12,  59,  44,  43,  45,
        -24, -39,  -5,   1, -16,  57,  28,  54,
        -13, -17,   7,   8,  29,  56,  47,  57,
        -27, -27, -16, -16,  -1,  17,  -2,   1,
         -9, -26,  -9, -10,  -2,  -4,   3,  -3,
        -14,   2, -11,  -2,  -5,   2,  14,   5,
        -35,  -8,  11,   2,   8,  15,  -3,   1,
         -1, -18,  -9,  10, -15, -25, -31, -50,
    ),
    (  # king
        -65,  23,  16, -15, -56, -34,   2,  13,
         29,  -1, -20,  -7,  -8,  -4, -38, -29,
         -9,  24,   2, -16, -20,   6,  22, -22,
        -17, -20, -12, -27, -30, -25, -14, -36,
        -49,  -1, -27, -39, -46, -44, -33, -51,
        -14, -14, -22, -46, -44, -30, -15, -27,
          1,   7,  -8, -64, -43, -16,   9,   8,
        -15,  36,  12, -54,   8, -28,  24,  14,
    ),
)

_EG_PST_DIAGRAM: tuple[tuple[int, ...], ...] = (
    (),
    (  # pawn
          0,   0,   0,   0,   0,   0,   0,   0,
        178, 173, 158, 134, 147, 132, 165, 187,
         94, 100,  85,  67,  56,  53,  82,  84,
         32,  24,  13,   5,  -2,   4,  17,  17,
         13,   9,  -3,  -7,  -7,  -8,   3,  -1,
          4,   7,  -6,   1,   0,  -5,  -1,  -8,
         13,   8,   8,  10,  13,   0,   2,  -7,
          0,   0,   0,   0,   0,   0,   0,   0,
    ),
    (  # knight
        -58, -38, -13, -28, -31, -27, -63, -99,
        -25,  -8, -25,  -2,  -9, -25, -24, -52,
        -24, -20,  10,   9,  -1,  -9, -19, -41,
        -17,   3,  22,  22,  22,  11,   8, -18,
        -18,  -6,  16,  25,  16,  17,   4, -18,
        -23,  -3,  -1,  15,  10,  -3, -20, -22,
        -42, -20, -10,  -5,  -2, -20, -23, -44,
        -29, -51, -23, -15, -22, -18, -50, -64,
    ),
    (  # bishop
        -14, -21, -11,  -8,  -7,  -9, -17, -24,
         -8,  -4,   7, -12,  -3, -13,  -4, -14,
          2,  -8,   0,  -1,  -2,   6,   0,   4,
         -3,   9,  12,   9,  14,  10,   3,   2,
         -6,   3,  13,  19,   7,  10,  -3,  -9,
        -12,  -3,   8,  10,  13,   3,  -7, -15,
        -14, -18,  -7,  -1,   4,  -9, -15, -27,
        -23,  -9, -23,  -5,  -9, -16,  -5, -17,
    ),
    (  # rook
         13,  10,  18,  15,  12,  12,   8,   5,
         11,  13,  13,  11,  -3,   3,   8,   3,
          7,   7,   7,   5,   4,  -3,  -5,  -3,
          4,   3,  13,   1,   2,   1,  -1,   2,
          3,   5,   8,   4,  -5,  -6,  -8, -11,
         -4,   0,  -5,  -1,  -7, -12,  -8, -16,
         -6,  -6,   0,   2,  -9,  -9, -11,  -3,
         -9,   2,   3,  -1,  -5, -13,   4, -20,
    ),
    (  # queen
         -9,  22,  22,  27,  27,  19,  10,  20,
        -17,  20,  32,  41,  58,  25,  30,   0,
        -20,   6,   9,  49,  47,  35,  19,   9,
          3,  22,  24,  45,  57,  40,  57,  36,
        -18,  28,  19,  47,  31,  34,  39,  23,
        -16, -27,  15,   6,   9,  17,  10,   5,
        -22, -23, -30, -16, -16, -23, -36, -32,
        -33, -28, -22, -43,  -5, -32, -20, -41,
    ),
    (  # king
        -74, -35, -18, -18, -11,  15,   4, -17,
        -12,  17,  14,  17,  17,  38,  23,  11,
         10,  17,  23,  15,  20,  45,  44,  13,
         -8,  22,  24,  27,  26,  33,  26,   3,
        -18,  -4,  21,  24,  27,  23,   9, -11,
        -19,  -3,  11,  21,  23,  16,   7,  -9,
        -27, -11,   4,  13,  14,   4,  -5, -17,
        -53, -34, -21, -11, -28, -14, -24, -43,
    ),
)
# fmt: on


# One flat table per phase, indexed by `_slot`, read in place without an object (a tuple of
# tuples gives each value as one); the search reads them at every move.
_WHITE_HALF: Final = 512


def _slot(color: bool, piece_type: int, square: int) -> int:
    """Where a `color` piece of `piece_type` on `square` is in `_MG` and `_EG`: the colour's
    half (`_WHITE_HALF` or 0) or'd with `piece_type << 6 | square`."""
    return (_WHITE_HALF if color else 0) | piece_type << 6 | square


def _signed_table(diagrams: tuple[tuple[int, ...], ...], material: tuple[int, ...]) -> vec[i64]:
    """Expand diagram tables into one table signed for White, indexed by `_slot`."""
    # Square 0 is a1. A white piece on `sq` sits on diagram index `sq ^ 56` (rank flipped);
    # a black piece sees the board from the other side, so its diagram index is `sq` itself.
    values = [0] * 1024
    for color in chess.COLORS:
        for pt, diagram in enumerate(diagrams):
            if not diagram:
                continue
            for sq in range(64):
                value = material[pt] + diagram[sq ^ 56 if color else sq]
                values[_slot(color, pt, sq)] = value if color else -value
    return vec[i64](values)


_MG: Final = _signed_table(_MG_PST_DIAGRAM, _MG_MATERIAL)
_EG: Final = _signed_table(_EG_PST_DIAGRAM, _EG_MATERIAL)


def evaluate_terms(board: SearchBoard) -> tuple[int, int, int]:
    """Return `(mg, eg, phase)` of the whole position, mg and eg from White's point of view.

    The phase is not capped (promotions can lift it above `MAX_PHASE`); `blend` caps it.
    """
    mg = eg = phase = 0
    for color in chess.COLORS:
        for piece_type in chess.PIECE_TYPES:
            mask = board.pieces_mask(piece_type, color)
            if not mask:
                continue
            for square in squares_up(mask):
                mg += _MG[_slot(color, piece_type, square)]
                eg += _EG[_slot(color, piece_type, square)]
            phase += PHASE_WEIGHTS[piece_type] * popcount(mask)
    return mg, eg, phase


def blend(mg: i64, eg: i64, phase: i64) -> int:
    """Blend middlegame and endgame terms by phase into centipawns, from the same point of view."""
    if phase > MAX_PHASE:
        phase = MAX_PHASE
    # Machine words: compiled, an `int` product with a negative factor takes the slow path
    # through Python objects.
    total = mg * phase + eg * (MAX_PHASE - phase)
    # Round towards zero so that a position and its colour-mirror score exactly opposite.
    return total // MAX_PHASE if total >= 0 else -(-total // MAX_PHASE)


def move_delta(board: SearchBoard, move: Move) -> tuple[int, int, int]:
    """Return how `(mg, eg, phase)` change when the legal `move` is played on `board`.

    Call it before pushing the move. The deltas are from White's point of view, like
    `evaluate_terms`, so adding them gives the terms of the position after the move.
    """
    color = board.turn
    from_square = move.from_square
    to_square = move.to_square
    piece_type = piece_type_at(board, from_square)
    assert piece_type, "move_delta needs a legal move"
    # The mover's half of the tables and the other side's (see `_slot`).
    own = _WHITE_HALF if color else 0
    their = _WHITE_HALF - own
    landed = move.promotion or piece_type
    moved_to = own | landed << 6 | to_square
    moved_from = own | piece_type << 6 | from_square
    mg = _MG[moved_to] - _MG[moved_from]
    eg = _EG[moved_to] - _EG[moved_from]
    phase = PHASE_WEIGHTS[landed] - PHASE_WEIGHTS[piece_type]

    captured = piece_type_at(board, to_square)
    capture_square = to_square
    if piece_type == PAWN and not captured:
        ep_square = board.ep_square
        if ep_square is not None and ep_square == to_square:
            captured = PAWN
            capture_square = to_square - 8 if color else to_square + 8
    if captured:
        taken = their | captured << 6 | capture_square
        mg -= _MG[taken]
        eg -= _EG[taken]
        phase -= PHASE_WEIGHTS[captured]
    elif piece_type == KING and (to_square == from_square + 2 or to_square == from_square - 2):
        # Castling (standard notation, the king moves two files): the rook moves as well.
        rank_base = from_square & 56
        if to_square > from_square:
            rook_from, rook_to = rank_base + 7, rank_base + 5
        else:
            rook_from, rook_to = rank_base, rank_base + 3
        rook_to_slot = own | ROOK << 6 | rook_to
        rook_from_slot = own | ROOK << 6 | rook_from
        mg += _MG[rook_to_slot] - _MG[rook_from_slot]
        eg += _EG[rook_to_slot] - _EG[rook_from_slot]
    return mg, eg, phase


def positional_terms(board: SearchBoard, pawns: PawnTable | None = None) -> tuple[int, int]:
    """Return `(mg, eg)` of the terms not kept move by move, from White's point of view.

    They depend on the side to move (its tempo, its pieces attacked by pawns). Pawn structure
    and king shelter come from `pawns` when given (a cache the caller owns),
    else they are computed afresh; the board must have one king of each colour.
    """
    if pawns is not None:
        mg, eg = pawns.terms(board)
    else:
        white = board.side(WHITE)
        black = board.side(BLACK)
        mg, eg = pawn_terms(
            board.pawns & white,
            board.pawns & black,
            lowest_square(board.kings & white),
            lowest_square(board.kings & black),
        )
    # Written out per colour: this runs at every node that takes a static evaluation. The
    # counts are machine words: compiled, an `int` product with a negative factor (the
    # weights of a threat) takes the slow path through Python objects.
    threatened: i64
    white = board.side(WHITE)
    black = board.side(BLACK)
    pieces = ~(board.pawns | board.kings)
    if board.turn:
        their_pawns = board.pawns & black
        attacked = (their_pawns & ~BB_FILE_A) >> 9 | (their_pawns & ~BB_FILE_H) >> 7
        threatened = popcount(attacked & white & pieces)
        mg += _TEMPO[0] + _PAWN_THREAT[0] * threatened
        eg += _TEMPO[1] + _PAWN_THREAT[1] * threatened
    else:
        # White's pawns and Black's pieces taken one rank down, where no pawn attack reaches
        # h8 and needs no `wrap` (a call); what `>>` fills in from h8 stays above the attacks.
        their_pawns = (board.pawns & white) >> 8
        attacked = (their_pawns & ~BB_FILE_A) << 7 | (their_pawns & ~BB_FILE_H) << 9
        threatened = popcount(attacked & (black & pieces) >> 8)
        mg -= _TEMPO[0] + _PAWN_THREAT[0] * threatened
        eg -= _TEMPO[1] + _PAWN_THREAT[1] * threatened
    if popcount(board.bishops & white) > 1:
        mg += _BISHOP_PAIR[0]
        eg += _BISHOP_PAIR[1]
    if popcount(board.bishops & black) > 1:
        mg -= _BISHOP_PAIR[0]
        eg -= _BISHOP_PAIR[1]
    rooks = board.rooks
    if rooks:
        # The rooks on files without pawns, and on files with only the other side's, counted
        # a set at a time (a rook's term depends on its file only).
        all_pawns = board.pawns
        open_files = FILE_SETS[~occupied_files(all_pawns) & 0xFF]
        white_open = rooks & white & open_files
        black_open = rooks & black & open_files
        white_half_open = (
            rooks & white & ~open_files & FILE_SETS[~occupied_files(all_pawns & white) & 0xFF]
        )
        black_half_open = (
            rooks & black & ~open_files & FILE_SETS[~occupied_files(all_pawns & black) & 0xFF]
        )
        if white_open or black_open:
            open_count: i64 = popcount(white_open) - popcount(black_open)
            mg += _ROOK_OPEN_FILE[0] * open_count
            eg += _ROOK_OPEN_FILE[1] * open_count
        if white_half_open or black_half_open:
            half_open_count: i64 = popcount(white_half_open) - popcount(black_half_open)
            mg += _ROOK_HALF_OPEN_FILE[0] * half_open_count
            eg += _ROOK_HALF_OPEN_FILE[1] * half_open_count
    return mg, eg


def evaluate_white(position: chess.Board | SearchBoard) -> int:
    """Evaluate `position` in centipawns from White's point of view (positive: White is better).

    A static score: it does not look for checkmate, stalemate or hanging pieces (only the side
    to move's pieces attacked by pawns count). The board
    must have one king of each colour.
    """
    board = position if isinstance(position, SearchBoard) else SearchBoard(position)
    mg, eg, phase = evaluate_terms(board)
    extra_mg, extra_eg = positional_terms(board)
    return scale_drawish(board, blend(mg + extra_mg, eg + extra_eg, phase))


def evaluate(board: chess.Board | SearchBoard) -> int:
    """Evaluate `board` in centipawns from the side to move's point of view, as negamax wants."""
    score = evaluate_white(board)
    return score if board.turn else -score
