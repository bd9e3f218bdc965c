"""The search's bitboard reads give python-chess's answers on every square of random positions."""

from __future__ import annotations

import chess
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.search.bits import attackers, in_check, piece_type_at, squares_down, squares_up
from tests.engine.search.test_evaluation import positions


@settings(max_examples=300, deadline=None)
@given(positions(), st.integers(0, (1 << 64) - 1))
def test_bits_agree_with_python_chess(board: chess.Board, blockers: int) -> None:
    """Pieces, attackers (with the board's and with arbitrary blockers) and check."""
    for square in chess.SQUARES:
        assert piece_type_at(board, square) == (board.piece_type_at(square) or 0)
        for color in chess.COLORS:
            for occupied in (board.occupied, blockers):
                assert attackers(board, color, square, occupied) == board.attackers_mask(
                    color, square, occupied
                )
    assert in_check(board) == board.is_check()
    for mask in (board.occupied, blockers, board.pawns, board.occupied_co[chess.BLACK]):
        assert squares_down(mask) == list(chess.scan_reversed(mask))
        assert squares_up(mask) == list(chess.scan_forward(mask))
