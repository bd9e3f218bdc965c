"""Tests for engine.search.ordering: the staged move order and which captures count as losing."""

from __future__ import annotations

import random

import chess
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from engine.search.board import SearchBoard
from engine.search.evaluation import PIECE_VALUES
from engine.search.generation import tactical_gain, tactical_move
from engine.search.move import Move
from engine.search.ordering import (
    HASH_MOVE,
    KILLER,
    LOSING,
    QUIET,
    TACTICAL,
    MoveOrder,
    MovePicker,
    is_losing_capture,
    tactical_moves,
)
from tests.engine.search.test_evaluation import positions


def ours(move: chess.Move | None) -> Move | None:
    """python-chess's `move` (or None) as the search's."""
    return None if move is None else Move.from_chess(move)


def staged(
    board: chess.Board, order: MoveOrder, hash_move: chess.Move | None
) -> list[tuple[int, chess.Move]]:
    """The moves a `MovePicker` of `board` gives at ply 0, as `(stage, python-chess's move)`."""
    picker = MovePicker(order, SearchBoard(board), ours(hash_move), 0)
    given: list[tuple[int, chess.Move]] = []
    while (move := picker.next()) is not None:
        given.append((picker.stage, move.to_chess()))
    return given


@settings(max_examples=100, deadline=None)
@given(positions(), st.data())
def test_every_legal_move_is_yielded_once(board: chess.Board, data: st.DataObject) -> None:
    """With or without a hash move, the order holds each legal move exactly once."""
    legal = list(board.generate_legal_moves())
    hash_move = data.draw(st.sampled_from([None, *legal]))
    ordered = [move for _, move in staged(board, MoveOrder(8), hash_move)]
    assert sorted(ordered, key=chess.Move.uci) == sorted(legal, key=chess.Move.uci)


@settings(max_examples=100, deadline=None)
@given(positions(), st.data())
def test_a_picker_reset_in_another_position_gives_what_a_new_one_gives(
    board: chess.Board, data: st.DataObject
) -> None:
    """A search keeps a picker per ply and resets it at each node: whatever the picker gave
    before (all of its moves or some), after `reset` it gives, stage by stage, what a new
    picker of the new position gives."""
    legal = list(board.generate_legal_moves())
    assume(legal)
    order = MoveOrder(8)
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    order.history = [rng.randint(-3, 3) for _ in range(8192)]
    search_board = SearchBoard(board)
    picker = MovePicker(order, search_board, ours(data.draw(st.sampled_from([None, *legal]))), 0)
    for _ in range(data.draw(st.integers(0, len(legal)))):
        picker.next()
    # The same board object, one move on.
    played = data.draw(st.sampled_from(legal))
    board.push(played)
    search_board.push(Move.from_chess(played))
    following = list(board.generate_legal_moves())
    hash_move = data.draw(st.sampled_from([None, *following]))
    order.killers[0] = [ours(data.draw(st.sampled_from([None, *following]))) for _ in range(2)]
    picker.reset(ours(hash_move))
    given = []
    while (move := picker.next()) is not None:
        given.append((picker.stage, move.to_chess()))
    assert given == staged(board, order, hash_move)


def test_a_defended_pawn_taken_by_the_queen_comes_last() -> None:
    """A capture that loses the taker once the victim's defender takes back is tried last."""
    board = chess.Board("4k3/8/2p5/3p4/8/8/8/3QK3 w - - 0 1")
    queen_takes = chess.Move.from_uci("d1d5")
    assert is_losing_capture(SearchBoard(board), Move.from_chess(queen_takes), 100)
    stages = {move: stage for stage, move in staged(board, MoveOrder(8), None)}
    assert stages[queen_takes] == LOSING
    assert list(stages)[-1] == queen_takes


def test_a_bigger_taker_wins_when_taking_back_would_cost_the_defender_more() -> None:
    """A rook may take a knight its queen defends when a pawn would then take the queen."""
    board = chess.Board("4k3/3q4/8/3n4/4P3/8/8/3RK3 w - - 0 1")
    rook_takes = chess.Move.from_uci("d1d5")
    assert not is_losing_capture(SearchBoard(board), Move.from_chess(rook_takes), 320)
    stages = {move: stage for stage, move in staged(board, MoveOrder(8), None)}
    assert stages[rook_takes] == TACTICAL


def reference_tactical_moves(board: chess.Board, min_gain: int) -> list[tuple[int, chess.Move]]:
    """`tactical_moves` from python-chess's own generator: every legal capture and promotion
    of a victim worth at least `min_gain` (minor pieces counted as bishops), MVV-LVA, ties in
    python-chess's order with the promotions first."""
    floor = {chess.PAWN: 100, chess.KNIGHT: 330, chess.BISHOP: 330, chess.ROOK: 500}
    promotions, captures = [], []
    for move in board.generate_legal_moves():
        victim = chess.PAWN if board.is_en_passant(move) else board.piece_type_at(move.to_square)
        if move.promotion:
            gain = PIECE_VALUES[move.promotion] - PIECE_VALUES[chess.PAWN]
            gain += PIECE_VALUES[victim or 0]
            promotions.append((gain * 8 - chess.PAWN, gain, move))
        elif victim is not None and min_gain <= floor.get(victim, 950):
            attacker = board.piece_type_at(move.from_square) or 0
            gain = PIECE_VALUES[victim]
            captures.append((gain * 8 - attacker, gain, move))
    ordered = sorted(promotions + captures, key=lambda entry: entry[0], reverse=True)
    return [(gain, move) for _, gain, move in ordered]


@settings(max_examples=300, deadline=None)
@given(positions(), st.sampled_from([0, 100, 101, 330, 331, 500, 501, 950, 951]))
def test_tactical_moves_match_python_chess(board: chess.Board, min_gain: int) -> None:
    """The captures and promotions, their gains and their order are those python-chess's
    generator gives, in check or not, pinned pieces included."""
    found = [
        (tactical_gain(packed), tactical_move(packed).to_chess())
        for packed in tactical_moves(SearchBoard(board), min_gain)
    ]
    assert found == reference_tactical_moves(board, min_gain)


@pytest.mark.parametrize(
    "fen",
    [
        # A pawn pinned on its file may not take; one pinned on a diagonal takes the pinner.
        "4r2k/8/8/8/8/3n1n2/4P3/4K3 w - - 0 1",
        "7k/8/8/8/8/2b1n3/3P4/4K3 w - - 0 1",
        # A knight pinned takes nothing; a rook pinned on a file takes along it.
        "4r2k/8/8/8/8/2p3p1/4N3/4K3 w - - 0 1",
        "4r2k/8/8/8/4p3/8/4R3/4K3 w - - 0 1",
        # The king may not take a defended piece.
        "7k/8/8/8/8/4p3/3n1n2/4K3 w - - 0 1",
        # Black to move, the same kinds of pin from the other side.
        "4k3/4p3/3N1N2/8/8/8/8/4R2K b - - 0 1",
    ],
)
def test_pinned_takers_and_the_king_match_python_chess(fen: str) -> None:
    """Positions built for the legality rules of captures: pins and the king's own safety."""
    board = chess.Board(fen)
    found = [
        (tactical_gain(packed), tactical_move(packed).to_chess())
        for packed in tactical_moves(SearchBoard(board))
    ]
    assert found == reference_tactical_moves(board, 0)


@settings(max_examples=300, deadline=None)
@given(positions(), st.data())
def test_quiet_moves_come_in_history_then_python_chess_order(
    board: chess.Board, data: st.DataObject
) -> None:
    """The quiet stage holds the quiet moves not tried before, best history first, equal
    histories in python-chess's generation order (so the search's tree does not depend on
    which generator made them)."""
    order = MoveOrder(8)
    # Few distinct values, so that many moves tie.
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    order.history = [rng.randint(-3, 3) for _ in range(8192)]
    legal = list(board.generate_legal_moves())
    hash_move = data.draw(st.sampled_from([None, *legal]))
    # Killers too (a capture among them is not given as one), so that up to three moves are
    # tried before the quiet stage.
    order.killers[0] = [ours(data.draw(st.sampled_from([None, *legal]))) for _ in range(2)]
    yielded = staged(board, order, hash_move)
    quiet = [move for stage, move in yielded if stage == QUIET]
    earlier = {move for stage, move in yielded if stage < QUIET}
    offset = board.turn << 12
    expected = [
        move
        for move in legal
        if not board.is_capture(move) and not move.promotion and move not in earlier
    ]
    expected.sort(
        key=lambda m: order.history[offset | m.from_square << 6 | m.to_square], reverse=True
    )
    assert quiet == expected


def test_a_history_floored_far_below_zero_still_sorts_last() -> None:
    """A move that failed through a long search stops losing history at the floor (the sort
    keys built of it must stay machine words when compiled), and still comes after the
    others."""
    board = chess.Board("4k3/8/8/8/8/8/8/R3K3 w Q - 0 1")
    order = MoveOrder(8)
    rook_up = Move.from_chess(chess.Move.from_uci("a1a8"))
    failed = Move.from_chess(chess.Move.from_uci("a1a2"))
    index = chess.WHITE << 12 | chess.A1 << 6 | chess.A2
    order.history[index] = -(1 << 30)
    order.record_cutoff(SearchBoard(board), rook_up, 0, 99, [failed])
    assert order.history[index] == -(1 << 30)
    order.killers[0] = [None, None]
    quiet = [move for stage, move in staged(board, order, None) if stage == QUIET]
    assert quiet[0].uci() == "a1a8"
    assert quiet[-1].uci() == "a1a2"


def test_a_killer_is_tried_after_the_captures_and_history_read_when_the_quiets_come() -> None:
    """A legal quiet killer comes after the captures and before the other quiet moves; the hash
    move as killer is not given twice. The quiet moves are sorted by the history as it stands
    when the picker reaches them (the search may have replaced it by then), not when the picker
    was made."""
    board = chess.Board("4k3/8/8/p7/8/8/8/R3K2R w KQ - 0 1")
    order = MoveOrder(8)
    hash_move = Move.from_chess(chess.Move.from_uci("h1h7"))
    order.killers[0] = [Move.from_chess(chess.Move.from_uci("h1h5")), hash_move]
    picker = MovePicker(order, SearchBoard(board), hash_move, 0)
    first = picker.next()
    assert first == hash_move and picker.stage == HASH_MOVE
    history = [0] * 8192
    history[chess.WHITE << 12 | chess.E1 << 6 | chess.F1] = 1000
    order.history = history
    given = []
    while (move := picker.next()) is not None:
        given.append((picker.stage, move.uci()))
    assert given[0] == (TACTICAL, "a1a5")
    assert given[1] == (KILLER, "h1h5")
    assert given[2] == (QUIET, "e1f1")
    ucis = ["h1h7", *(uci for _, uci in given)]
    assert sorted(ucis) == sorted(move.uci() for move in board.legal_moves)


def test_a_capture_or_an_illegal_move_is_never_a_killer() -> None:
    """Killers that are captures here (given with the captures) or not legal here are skipped."""
    board = chess.Board("4k3/8/8/p7/8/8/8/R3K2R w KQ - 0 1")
    order = MoveOrder(8)
    order.killers[0] = [Move.from_chess(chess.Move.from_uci(uci)) for uci in ("a1a5", "e1e3")]
    given = staged(board, order, None)
    assert KILLER not in {stage for stage, _ in given}
    assert sorted(move.uci() for _, move in given) == sorted(m.uci() for m in board.legal_moves)
