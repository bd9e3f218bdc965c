"""The search's bitboard reads and its evasions give python-chess's answers on random positions."""

from __future__ import annotations

import chess
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.search import NATIVE
from engine.search.bits import (
    FILE_SETS,
    attackers,
    bishop_attacks,
    flip_bitboard,
    highest_square,
    in_check,
    lowest_square,
    more_than_one,
    occupied_files,
    piece_type_at,
    popcount,
    rook_attacks,
    squares_down,
    squares_up,
    wrap,
)
from engine.search.board import SearchBoard
from engine.search.constants import from_bitboard, to_bitboard
from engine.search.generation import legal_evasions
from tests.engine.search.test_evaluation import positions


@settings(max_examples=300, deadline=None)
@given(positions(), st.integers(0, (1 << 64) - 1))
def test_bits_agree_with_python_chess(board: chess.Board, blockers: int) -> None:
    """Pieces, attackers (with the board's and with arbitrary blockers) and check."""
    ours = SearchBoard(board)
    for square in chess.SQUARES:
        assert (
            piece_type_at(ours, square)
            == ours.piece_type_at(square)
            == (board.piece_type_at(square) or 0)
        )
        for color in chess.COLORS:
            for occupied in (board.occupied, blockers):
                found = attackers(ours, color, square, to_bitboard(occupied))
                assert from_bitboard(found) == board.attackers_mask(color, square, occupied)
    assert in_check(ours) == board.is_check()
    for mask in (board.occupied, blockers, board.pawns, board.occupied_co[chess.BLACK]):
        assert squares_down(to_bitboard(mask)) == list(chess.scan_reversed(mask))
        assert squares_up(to_bitboard(mask)) == list(chess.scan_forward(mask))


# Masks of few squares and of many, and every mask of one square (h8 the sign bit).
MASKS = st.one_of(
    st.integers(0, (1 << 64) - 1),
    st.builds(int.__and__, st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1)),
    st.sampled_from([1 << square for square in chess.SQUARES]),
    st.sampled_from([chess.BB_ALL, chess.BB_H8 | chess.BB_G8, chess.BB_H8 | chess.BB_A1]),
)


@settings(max_examples=2000, deadline=None)
@given(MASKS, st.sampled_from(chess.SQUARES), st.integers(0, 63))
def test_signed_bitboards_agree_with_python_chess(mask: int, square: int, shift: int) -> None:
    """The search's reads of a signed bitboard, and its sliders' attacks, as python-chess's."""
    ours = to_bitboard(mask)
    assert -(1 << 63) <= ours < 1 << 63 and from_bitboard(ours) == mask
    assert popcount(ours) == chess.popcount(mask)
    assert more_than_one(ours) == (chess.popcount(mask) > 1)
    assert from_bitboard(flip_bitboard(ours)) == chess.flip_vertical(mask)
    files = occupied_files(ours)
    assert files == sum(1 << file for file in range(8) if mask & chess.BB_FILES[file])
    assert from_bitboard(FILE_SETS[files]) == sum(
        chess.BB_FILES[file] for file in range(8) if files >> file & 1
    )
    if mask:
        assert lowest_square(ours) == chess.lsb(mask)
        assert highest_square(ours) == chess.msb(mask)
    # Compiled, the shift itself wraps, so only a value in range can reach `wrap`; from the
    # sources `wrap` drops what went past h8.
    shifted = ours << shift
    if not NATIVE or -(1 << 63) <= shifted < 1 << 63:
        assert wrap(shifted) == to_bitboard(mask << shift)
    board = chess.Board(None)
    attacks = board.attacks_mask  # python-chess's attacks of the piece on `square`
    board.occupied = mask | chess.BB_SQUARES[square]
    board.rooks = board.occupied_co[chess.WHITE] = chess.BB_SQUARES[square]
    assert from_bitboard(rook_attacks(square, ours)) == attacks(square)
    board.rooks = 0
    board.bishops = chess.BB_SQUARES[square]
    assert from_bitboard(bishop_attacks(square, ours)) == attacks(square)


# Positions in check or one move from it, for the evasions' corners: a double check, a
# pinned blocker, promotions that block or take, an en passant capture of the checking pawn.
CHECKS = (
    "4k3/8/8/8/1b6/8/3P4/4K2R w K - 0 1",
    "4k3/8/5n2/8/1b6/8/8/R3K2R w KQ - 0 1",
    "8/8/3p4/KPp4r/1R3p1k/8/4P1P1/8 w - c6 0 2",
    "8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 b - - 0 1",
    "r3k2r/p1pPqpb1/bn2pnp1/4N3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R b KQkq - 0 1",
    "n1n5/PPPk4/8/8/8/8/4Kppp/5N1N b - - 0 1",
    # In check from a pawn that just advanced two squares: taken en passant, or not, the
    # taking pawn pinned.
    "4k3/8/8/3Pp3/3K4/8/8/8 w - e6 0 1",
    "3rk3/8/8/3Pp3/3K4/8/8/8 w - e6 0 1",
    "8/8/8/5k2/3pP3/8/8/K7 b - e3 0 1",
)


@settings(max_examples=300, deadline=None)
@given(positions(starts=(chess.STARTING_FEN, *CHECKS)), st.data())
def test_evasions_are_python_chess_legal_moves_in_its_order(
    board: chess.Board, data: st.DataObject
) -> None:
    """A random position if in check, and every position one checking move after it, with
    random from and to masks (the search asks for all, for captures only and for all but
    promotions)."""
    boards = [board] if board.is_check() else []
    for move in board.generate_legal_moves():
        if board.gives_check(move):
            after = board.copy(stack=False)
            after.push(move)
            boards.append(after)
    for checked in boards:
        masks = (chess.BB_ALL, data.draw(st.integers(-(1 << 64), (1 << 64) - 1)))
        for from_mask in masks:
            for to_mask in masks:
                ours = SearchBoard(checked)
                found = [
                    move.to_chess()
                    for move in legal_evasions(ours, to_bitboard(from_mask), to_bitboard(to_mask))
                ]
                expected = list(checked.generate_legal_moves(from_mask, to_mask))
                assert found == expected, (checked.fen(), from_mask, to_mask)
