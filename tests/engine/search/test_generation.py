"""The search's own move generation gives python-chess's legal moves, in python-chess's order."""

from __future__ import annotations

import chess
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.search.board import SearchBoard
from engine.search.constants import BB_ALL, to_bitboard
from engine.search.generation import (
    castling_moves,
    en_passant_moves,
    is_legal,
    is_legal_quiet,
    legal_moves,
)
from engine.search.move import Move
from tests.engine.search.test_bits import CHECKS
from tests.engine.search.test_board import assert_same_answers
from tests.engine.search.test_evaluation import positions

# Positions rich in castling (through attacked squares too), en passant (pinned takers
# among them) and promotions, besides the start and the checks of `CHECKS`.
STARTS = (
    chess.STARTING_FEN,
    "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1",
    "r3k2r/Pppp1ppp/1b3nbN/nP6/BBP1P3/q4N2/Pp1P2PP/R2Q1RK1 w kq - 0 1",
    "r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1",
    "rn2k2r/8/8/2b5/5b2/8/8/R3K2R w KQkq - 0 1",
    "8/8/8/K2pP2r/8/8/8/4k3 w - d6 0 2",
    "rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3",
    "r3k2r/1P6/8/8/8/8/6p1/R3K2R w KQkq - 0 1",
    *CHECKS,
)
ANY_MASK = st.integers(-(1 << 64), (1 << 64) - 1)


def assert_generates_alike(board: chess.Board, from_mask: int, to_mask: int) -> None:
    """`legal_moves` with all masks and with these, castling and en passant, and the answers
    `assert_same_answers` checks (the key among them), as python-chess."""
    ours = SearchBoard(board)
    assert_same_answers(ours, board)
    for masks in ((chess.BB_ALL, chess.BB_ALL), (from_mask, to_mask)):
        ours_masks = (to_bitboard(masks[0]), to_bitboard(masks[1]))
        found = [move.to_chess() for move in legal_moves(ours, *ours_masks)]
        assert found == list(board.generate_legal_moves(*masks)), board.fen()
    found = [move.to_chess() for move in castling_moves(ours)]
    assert found == list(board.generate_castling_moves())
    found = [move.to_chess() for move in en_passant_moves(ours, BB_ALL, BB_ALL)]
    assert found == list(board.generate_legal_ep())
    assert ours.fen() == board.fen()  # nothing was left pushed


@pytest.mark.parametrize("fen", STARTS)
def test_each_start_and_every_reply_generate_alike(fen: str) -> None:
    """The built positions themselves, then one move into each."""
    board = chess.Board(fen)
    assert_generates_alike(board, chess.BB_ALL, chess.BB_ALL)
    for move in list(board.generate_legal_moves()):
        board.push(move)
        assert_generates_alike(board, chess.BB_ALL, chess.BB_ALL)
        board.pop()


@settings(max_examples=300, deadline=None)
@given(positions(starts=STARTS, max_plies=30), ANY_MASK, ANY_MASK)
def test_legal_moves_are_python_chess_legal_moves_in_its_order(
    board: chess.Board, from_mask: int, to_mask: int
) -> None:
    """Every legal move, and those between random masks (castling asked for by the rook's
    square, as python-chess does), in python-chess's order, in check or not."""
    assert_generates_alike(board, from_mask, to_mask)


@settings(max_examples=150, deadline=None)
@given(positions(starts=STARTS, max_plies=30))
def test_a_quiet_move_is_legal_as_python_chess_says(board: chess.Board) -> None:
    """Every pair of squares, as the move a killer remembers: legal when python-chess says so
    and it neither takes nor promotes (a capture or en passant is never a killer)."""
    ours = SearchBoard(board)
    for from_square in chess.SQUARES:
        for to_square in chess.SQUARES:
            if from_square == to_square:
                continue
            move = chess.Move(from_square, to_square)
            if board.is_castling(move) and abs(to_square - from_square) != 2:
                continue  # python-chess's other castling notation, king takes own rook
            expected = board.is_legal(move) and not board.is_capture(move)
            assert is_legal_quiet(ours, Move.from_chess(move)) == expected, (
                board.fen(),
                move.uci(),
            )
    for move in board.generate_legal_moves():
        if move.promotion:
            assert not is_legal_quiet(ours, Move.from_chess(move))
    assert ours.fen() == board.fen()


@settings(max_examples=60, deadline=None)
@given(positions(starts=STARTS, max_plies=30))
def test_any_move_is_legal_as_python_chess_says(board: chess.Board) -> None:
    """Every pair of squares, and every promotion onto a last rank, as a move read back through
    a key that another position may share: legal exactly when python-chess says so."""
    ours = SearchBoard(board)
    for from_square in chess.SQUARES:
        for to_square in chess.SQUARES:
            if from_square == to_square:
                continue
            last_rank = to_square < 8 or to_square >= 56
            for promotion in (None, *chess.PIECE_TYPES[1:5]) if last_rank else (None,):
                move = chess.Move(from_square, to_square, promotion)
                if board.is_castling(move) and abs(to_square - from_square) != 2:
                    continue  # python-chess's other castling notation, king takes own rook
                assert is_legal(ours, Move.from_chess(move)) == board.is_legal(move), (
                    board.fen(),
                    move.uci(),
                )
    assert ours.fen() == board.fen()
