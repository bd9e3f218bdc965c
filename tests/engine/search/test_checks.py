"""`CheckSquares` never misses a check a quiet move gives, and is rarely cautious without cause."""

from __future__ import annotations

import chess
import pytest
from hypothesis import given, settings

from engine.search.board import SearchBoard
from engine.search.checks import CheckSquares
from engine.search.move import Move
from tests.engine.search.test_evaluation import positions


def quiet_moves(board: chess.Board) -> list[chess.Move]:
    """The legal moves that neither capture nor promote."""
    return [m for m in board.legal_moves if not m.promotion and not board.is_capture(m)]


def assert_sound(board: chess.Board) -> tuple[int, int]:
    """Every checking quiet move is flagged; return (flagged, actually checking)."""
    ours = SearchBoard(board)
    squares = CheckSquares(ours)
    flagged = checking = 0
    for move in quiet_moves(board):
        gives = board.gives_check(move)
        may = squares.may_check(ours, Move.from_chess(move))
        assert may or not gives, f"{move.uci()} checks in {board.fen()}"
        flagged += may
        checking += gives
    return flagged, checking


@settings(max_examples=300, deadline=None)
@given(positions())
def test_no_check_is_missed(board: chess.Board) -> None:
    """Random positions: every quiet move that checks is flagged."""
    assert_sound(board)


@pytest.mark.parametrize(
    ("fen", "checking"),
    [
        # Discovered checks: the knight in front of the rook, the pawn in front of the bishop.
        ("4k3/8/8/8/4N3/8/8/4R1K1 w - - 0 1", "e4c5"),
        ("7k/8/8/8/8/8/1P6/B5K1 w - - 0 1", "b2b3"),
        # Castling with the rook landing on the king's file.
        ("5k2/8/8/8/8/8/8/4K2R w K - 0 1", "e1g1"),
        # Direct checks by a pawn (single and double step), a knight and a queen.
        ("8/8/8/8/3k4/8/2P5/4K3 w - - 0 1", "c2c3"),
        ("8/8/8/3k4/8/8/2P5/4K3 w - - 0 1", "c2c4"),
        ("4k3/8/8/8/4N3/8/8/6K1 w - - 0 1", "e4d6"),
        ("4k3/8/8/8/8/8/8/1Q2K3 w - - 0 1", "b1b5"),
    ],
)
def test_known_checks_are_flagged(fen: str, checking: str) -> None:
    """Each kind of check is flagged, and not every quiet move is."""
    board = chess.Board(fen)
    move = chess.Move.from_uci(checking)
    assert board.gives_check(move)
    assert CheckSquares(SearchBoard(board)).may_check(SearchBoard(board), Move.from_chess(move))
    flagged, _ = assert_sound(board)
    # Cautious only where a move may discover a check or castles, not everywhere.
    assert flagged < len(quiet_moves(board))
