"""Tests for engine.search.ordering: the staged move order and which captures count as losing."""

from __future__ import annotations

import chess
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.search.ordering import LOSING, TACTICAL, MoveOrder, is_losing_capture
from tests.engine.search.test_evaluation import positions


@settings(max_examples=100, deadline=None)
@given(positions(), st.data())
def test_every_legal_move_is_yielded_once(board: chess.Board, data: st.DataObject) -> None:
    """With or without a hash move, the order holds each legal move exactly once."""
    legal = list(board.generate_legal_moves())
    hash_move = data.draw(st.sampled_from([None, *legal]))
    ordered = [move for _, move in MoveOrder(8).moves(board, hash_move, 0)]
    assert sorted(ordered, key=chess.Move.uci) == sorted(legal, key=chess.Move.uci)


def test_a_defended_pawn_taken_by_the_queen_comes_last() -> None:
    """A capture that loses the taker once the victim's defender takes back is tried last."""
    board = chess.Board("4k3/8/2p5/3p4/8/8/8/3QK3 w - - 0 1")
    queen_takes = chess.Move.from_uci("d1d5")
    assert is_losing_capture(board, queen_takes, 100)
    stages = {move: stage for stage, move in MoveOrder(8).moves(board, None, 0)}
    assert stages[queen_takes] == LOSING
    assert list(stages)[-1] == queen_takes


def test_a_bigger_taker_wins_when_taking_back_would_cost_the_defender_more() -> None:
    """A rook may take a knight its queen defends when a pawn would then take the queen."""
    board = chess.Board("4k3/3q4/8/3n4/4P3/8/8/3RK3 w - - 0 1")
    rook_takes = chess.Move.from_uci("d1d5")
    assert not is_losing_capture(board, rook_takes, 320)
    stages = {move: stage for stage, move in MoveOrder(8).moves(board, None, 0)}
    assert stages[rook_takes] == TACTICAL
