"""Static exchange evaluation: what a capture wins once both sides have recaptured on its square.

The exchange is played out on bitboards only: each side recaptures with its least valuable
piece that attacks the square, pieces behind a capturer join in as it leaves (x-rays), and
either side may stop when going on would lose. Pins and checks elsewhere are not considered,
the usual simplification that keeps it cheap enough to run on every doubtful capture.
"""

from __future__ import annotations

from typing import Final

from librt.vecs import append, vec
from mypy_extensions import i64

from engine.search.bits import attackers, lowest_square, piece_type_at
from engine.search.board import SearchBoard
from engine.search.constants import (
    BB_SQUARES,
    BISHOP,
    KING,
    KNIGHT,
    PAWN,
    QUEEN,
    ROOK,
)
from engine.search.evaluation import PIECE_VALUES
from engine.search.move import Move

__all__ = ["static_exchange"]

# A king takes last, and only where nothing takes back: its value is never counted.
_BY_VALUE: Final[tuple[int, ...]] = (PAWN, KNIGHT, BISHOP, ROOK, QUEEN, KING)


def static_exchange(board: SearchBoard, move: Move) -> int:
    """Return the material the side to move wins by `move` and the exchange on its square.

    In `PIECE_VALUES` centipawns, never less than what the first capture takes minus the piece
    that made it, never more than the capture and any promotion gain. `move` must be legal;
    a quiet move scores what its piece stands to lose on the square it goes to, or 0.
    """
    from_square = move.from_square
    to_square = move.to_square
    mover = piece_type_at(board, from_square)
    assert mover, "static_exchange needs a legal move"
    occupied = board.occupied & ~BB_SQUARES[from_square]
    victim = piece_type_at(board, to_square)
    if not victim and mover == PAWN and to_square == board.ep_square:
        victim = PAWN
        occupied &= ~BB_SQUARES[to_square - 8 if board.turn else to_square + 8]
    # What each side stands at after each capture, as machine words (a list would box each).
    gain: i64 = PIECE_VALUES[victim] if victim else 0
    on_square = mover
    if move.promotion:
        gain += PIECE_VALUES[move.promotion] - PIECE_VALUES[PAWN]
        on_square = move.promotion
    gains = append(vec[i64](capacity=8), gain)
    side = not board.turn
    while True:
        takers = attackers(board, side, to_square, occupied) & occupied
        if not takers:
            break
        for piece_type in _BY_VALUE:
            found = takers & board.pieces_mask(piece_type, side)
            if found:
                break
        occupied &= ~BB_SQUARES[lowest_square(found)]
        # A king may not take on a square the other side still attacks, even when that
        # attacker is the other king or would have to give up its king to take back.
        if piece_type == KING and attackers(board, not side, to_square, occupied) & occupied:
            break
        # What this side stands at if it takes the piece on the square and the exchange stops.
        gain = PIECE_VALUES[on_square] - gain
        gains = append(gains, gain)
        on_square = piece_type
        side = not side
    # Play it back: each side takes only when taking is better than stopping.
    for index in range(len(gains) - 1, 0, -1):
        if gains[index] > -gains[index - 1]:
            gains[index - 1] = -gains[index]
    return int(gains[0])
