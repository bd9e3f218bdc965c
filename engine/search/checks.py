"""Whether a quiet move may give check, told from bitboards without playing it.

The search prunes late and futile quiet moves unless they give check. Playing a move to find
out (push, `is_check`, pop) costs as much as visiting a node, and most moves tested that way
are then thrown away; `CheckSquares` answers from the position alone. It is conservative: it
may say a move checks when it does not (a discovered-check candidate moving along its line,
castling), never the reverse.
"""

from __future__ import annotations

from mypy_extensions import i64

from engine.search.bits import (
    BISHOP_LINES,
    ROOK_LINES,
    bishop_attacks,
    lowest_square,
    piece_type_at,
    rook_attacks,
)
from engine.search.board import SearchBoard
from engine.search.constants import (
    BB_KNIGHT_ATTACKS,
    BB_PAWN_ATTACKS,
    BB_SQUARES,
    BISHOP,
    KING,
    KNIGHT,
    PAWN,
    ROOK,
)
from engine.search.generation import lone_blockers
from engine.search.move import Move

__all__ = ["CheckSquares"]


class CheckSquares:
    """The squares from which each piece type of the side to move would attack the enemy king,
    and the side to move's pieces that shield the enemy king from its own sliders."""

    __slots__ = ("diagonal", "discoverers", "knight", "pawn", "straight")

    # Separate fields rather than one tuple indexed by piece type: compiled, indexing a
    # fixed-length tuple of machine words with a variable builds an object of it each time.
    pawn: i64
    knight: i64
    diagonal: i64
    straight: i64
    discoverers: i64

    def __init__(self, board: SearchBoard) -> None:
        turn = board.turn
        them = board.side(not turn)
        king = lowest_square(board.kings & them)
        occupied = board.occupied
        # A pawn of the side to move checks from where an enemy pawn on the king's square
        # would attack; a king never gives check itself (castling is handled by the caller).
        self.pawn = BB_PAWN_ATTACKS[not turn][king]
        self.knight = BB_KNIGHT_ATTACKS[king]
        self.diagonal = bishop_attacks(king, occupied)
        self.straight = rook_attacks(king, occupied)
        own = board.side(turn)
        straight_sliders = (board.rooks | board.queens) & own
        diagonal_sliders = (board.bishops | board.queens) & own
        snipers = (ROOK_LINES[king] & straight_sliders) | (BISHOP_LINES[king] & diagonal_sliders)
        self.discoverers = lone_blockers(king, snipers, occupied) & own

    def may_check(self, board: SearchBoard, move: Move) -> bool:
        """Whether the legal non-capturing, non-promoting `move` may give check."""
        from_square = move.from_square
        if self.discoverers & BB_SQUARES[from_square]:
            return True
        piece_type = piece_type_at(board, from_square)
        if piece_type == KING:
            return abs(move.to_square - from_square) == 2  # castling: the rook may check
        if piece_type == PAWN:
            reach = self.pawn
        elif piece_type == KNIGHT:
            reach = self.knight
        elif piece_type == BISHOP:
            reach = self.diagonal
        elif piece_type == ROOK:
            reach = self.straight
        else:
            reach = self.diagonal | self.straight
        return bool(reach & BB_SQUARES[move.to_square])
