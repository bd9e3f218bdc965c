"""Tests for engine.search.evaluation: symmetry, sign conventions and the incremental terms."""

from __future__ import annotations

import chess
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.search.board import SearchBoard
from engine.search.evaluation import (
    _TEMPO,
    MAX_PHASE,
    blend,
    evaluate,
    evaluate_terms,
    evaluate_white,
    move_delta,
    positional_terms,
)
from engine.search.move import Move
from engine.search.pawns import PawnTable


@st.composite
def positions(
    draw: st.DrawFn, starts: tuple[str, ...] = (chess.STARTING_FEN,), max_plies: int = 80
) -> chess.Board:
    """Draw a position reached by random legal moves from one of `starts` (captures,
    castling, ...)."""
    board = chess.Board(draw(st.sampled_from(starts)))
    for _ in range(draw(st.integers(min_value=0, max_value=max_plies))):
        moves = list(board.generate_legal_moves())
        if not moves:
            break
        board.push(moves[draw(st.integers(min_value=0, max_value=len(moves) - 1))])
    return board


def test_start_position_is_level_but_for_the_move() -> None:
    """The symmetrical starting position is worth the same to whichever side is to move."""
    black_to_move = chess.Board()
    black_to_move.turn = chess.BLACK
    assert evaluate(chess.Board()) == evaluate(black_to_move)
    assert evaluate_white(chess.Board()) == -evaluate_white(black_to_move)


def test_the_side_to_move_has_the_tempo() -> None:
    """At the start the side to move is ahead by exactly the middlegame tempo."""
    assert _TEMPO[0] > 0
    assert evaluate(chess.Board()) == blend(_TEMPO[0], _TEMPO[1], MAX_PHASE)


def test_extra_queen_is_worth_a_lot_for_its_owner() -> None:
    """A side with an extra queen is far ahead from White's view and from the mover's view."""
    board = chess.Board("4k3/8/8/8/8/8/8/3QK3 b - - 0 1")
    assert evaluate_white(board) > 800
    assert evaluate(board) == -evaluate_white(board)


def test_start_position_has_full_phase() -> None:
    """All minor and major pieces on the board make the full middlegame phase."""
    assert evaluate_terms(SearchBoard(chess.Board()))[2] == MAX_PHASE


def test_blend_uses_endgame_terms_without_pieces() -> None:
    """At phase zero only the endgame term counts, at full phase only the middlegame term."""
    assert blend(100, -40, 0) == -40
    assert blend(100, -40, MAX_PHASE) == 100
    assert blend(100, -40, MAX_PHASE + 8) == 100


@settings(max_examples=150, deadline=None)
@given(positions())
def test_mirror_negates_white_view(board: chess.Board) -> None:
    """Mirroring a position (colours and side to move swapped) negates White's-view evaluation."""
    assert evaluate_white(board.mirror()) == -evaluate_white(board)


@settings(max_examples=150, deadline=None)
@given(positions())
def test_side_to_move_view_is_symmetric_under_mirror(board: chess.Board) -> None:
    """The side to move sees the same score in a position and in its mirror."""
    assert evaluate(board.mirror()) == evaluate(board)


@settings(max_examples=100, deadline=None)
@given(positions())
def test_move_delta_matches_full_evaluation(board: chess.Board) -> None:
    """For every legal move, the terms before plus the move's delta equal the terms after."""
    ours = SearchBoard(board)
    before = evaluate_terms(ours)
    for move in map(Move.from_chess, board.generate_legal_moves()):
        delta = move_delta(ours, move)
        ours.push(move)
        after = evaluate_terms(ours)
        ours.pop()
        assert tuple(b + d for b, d in zip(before, delta, strict=True)) == after, move.uci()


def test_move_delta_handles_special_moves() -> None:
    """Castling, en passant and promotion deltas agree with a full re-evaluation."""
    fens_and_moves = [
        ("r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", ["e1g1", "e1c1"]),
        ("r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 0 1", ["e8g8", "e8c8"]),
        ("4k3/8/8/3pP3/8/8/8/4K3 w - d6 0 2", ["e5d6"]),
        ("4k3/8/8/8/3Pp3/8/8/4K3 b - d3 0 2", ["e4d3"]),
        ("1n2k3/P7/8/8/8/8/8/4K3 w - - 0 1", ["a7a8q", "a7b8n", "a7a8r"]),
    ]
    for fen, ucis in fens_and_moves:
        board = chess.Board(fen)
        ours = SearchBoard(board)
        before = evaluate_terms(ours)
        for uci in ucis:
            assert board.is_legal(chess.Move.from_uci(uci)), uci
            move = Move.from_chess(chess.Move.from_uci(uci))
            delta = move_delta(ours, move)
            ours.push(move)
            assert tuple(b + d for b, d in zip(before, delta, strict=True)) == evaluate_terms(
                ours
            ), uci
            ours.pop()


def terms_of(board: chess.Board) -> tuple[int, int]:
    """`positional_terms` of python-chess's `board`."""
    return positional_terms(SearchBoard(board))


def test_the_bishop_pair_and_a_rook_on_an_open_file_count() -> None:
    """Two bishops beat bishop and knight; a rook on a file without pawns, or without its own,
    beats one behind its own pawn."""
    pair = chess.Board("4k3/pppp4/8/8/8/8/PPPP4/2BBK3 w - - 0 1")
    mixed = chess.Board("4k3/pppp4/8/8/8/8/PPPP4/2BNK3 w - - 0 1")
    assert all(p > m for p, m in zip(terms_of(pair), terms_of(mixed), strict=True))
    # The same pawns and kings: only the rook's file differs.
    open_file = terms_of(chess.Board("4k3/pppp3p/8/8/8/8/PPPP4/4KR2 w - - 0 1"))
    half_open = terms_of(chess.Board("4k3/pppp3p/8/8/8/8/PPPP4/4K2R w - - 0 1"))
    closed = terms_of(chess.Board("4k3/pppp3p/8/8/8/8/PPPP4/R3K3 w - - 0 1"))
    assert all(o > c and h > c for o, h, c in zip(open_file, half_open, closed, strict=True))
    # The fitted weights put a file without any pawns first in the middlegame; in the endgame
    # a file without the rook's own pawns scores higher still.
    assert open_file[0] > half_open[0]


@settings(max_examples=100, deadline=None)
@given(positions())
def test_positional_terms_through_a_pawn_table_equal_those_computed_afresh(
    board: chess.Board,
) -> None:
    """The search's cached positional terms are the terms `evaluate_white` computes."""
    table = PawnTable()
    ours = SearchBoard(board)
    assert positional_terms(ours, table) == positional_terms(ours)
    assert positional_terms(ours, table) == positional_terms(ours)


def unscaled_evaluation(board: chess.Board) -> int:
    """`evaluate_white` before `scale_drawish`: the weighted sum of the terms."""
    ours = SearchBoard(board)
    mg, eg, phase = evaluate_terms(ours)
    extra_mg, extra_eg = positional_terms(ours)
    return blend(mg + extra_mg, eg + extra_eg, phase)


@pytest.mark.parametrize(
    ("fen", "factor"),
    [
        # A minor piece up without pawns, against more than a minor piece: rook and bishop
        # against rook, rook and knight against rook, queen against rook and bishop.
        ("8/6k1/3R4/8/1K6/1B6/8/4r3 w - - 5 60", 14 / 64),
        ("8/6k1/3R4/8/1K6/1N6/8/4r3 w - - 5 60", 14 / 64),
        ("8/8/3bk3/8/3r4/8/2Q5/4K3 w - - 0 1", 14 / 64),
        # Against at most a minor piece: rook against bishop (a rook can mate, but not past
        # a bishop as a rule), bishop and knight against bishop.
        ("8/8/4k3/8/3b4/8/2R5/4K3 w - - 0 1", 4 / 64),
        ("8/8/4k3/8/3b4/8/2B5/4KN2 w - - 0 1", 4 / 64),
        # Nothing to mate with: a bishop against pawns, two knights against a bare king.
        ("8/8/4k3/8/1p6/8/3B4/4K3 b - - 0 1", 0),
        ("8/8/4k3/8/8/8/3N4/4KN2 w - - 0 1", 0),
        # Bishops of opposite colours, White a pawn up.
        ("8/2k5/1p6/1P1b4/2P5/3K4/3B4/8 w - - 0 1", 1 / 2),
    ],
)
def test_endings_the_side_ahead_cannot_win_are_scaled_towards_a_draw(
    fen: str, factor: float
) -> None:
    """Material the side ahead cannot convert counts for a fraction of itself (both colours)."""
    for board in (chess.Board(fen), chess.Board(fen).mirror()):
        unscaled = unscaled_evaluation(board)
        assert unscaled != 0
        assert evaluate_white(board) == int(unscaled * factor)


@pytest.mark.parametrize(
    "fen",
    [
        "8/8/4k3/8/8/8/2R5/4K3 w - - 0 1",  # a rook up: mate
        "8/8/4k3/8/3r4/8/2Q5/4K3 w - - 0 1",  # queen against rook: a win
        "8/8/3bk3/8/3b4/8/2Q5/4K3 w - - 0 1",  # queen against two bishops: a win too
        "8/8/4k3/8/3n4/8/2B5/4KB2 w - - 0 1",  # two bishops against a knight: a win
        "8/8/4k3/8/8/8/2B5/4KN2 w - - 0 1",  # bishop and knight mate a bare king
        "8/8/4k3/8/8/3p4/3N4/4KN2 w - - 0 1",  # two knights against a pawn can mate
        "8/2k5/1p6/1P1b4/2P5/3K4/4N3/8 w - - 0 1",  # bishop against knight
        "8/2k5/1p6/1P1b4/2P5/3K4/4B3/8 w - - 0 1",  # bishops of the same colour
    ],
)
def test_winnable_endings_are_not_scaled(fen: str) -> None:
    """Endings the side ahead can win keep their whole score (both colours)."""
    for board in (chess.Board(fen), chess.Board(fen).mirror()):
        assert evaluate_white(board) == unscaled_evaluation(board) != 0


ENDING_STARTS = (
    "8/6k1/3R4/8/1K6/1B6/8/4r3 w - - 0 1",
    "8/8/4k3/8/3b4/8/2R5/4K3 w - - 0 1",
    "8/8/4k3/8/1p6/8/3B4/4K3 b - - 0 1",
    "8/8/4k3/8/8/8/3N4/4KN2 w - - 0 1",
    "8/2k5/1p6/1P1b4/2P5/3K4/3B4/8 w - - 0 1",
)


@settings(max_examples=150, deadline=None)
@given(positions(ENDING_STARTS, max_plies=30))
def test_mirror_negates_white_view_in_scaled_endings(board: chess.Board) -> None:
    """The scaling keeps the evaluation's colour symmetry and never turns its sign."""
    assert evaluate_white(board.mirror()) == -evaluate_white(board)
    unscaled = unscaled_evaluation(board)
    assert evaluate_white(board) * unscaled >= 0
    assert abs(evaluate_white(board)) <= abs(unscaled)
