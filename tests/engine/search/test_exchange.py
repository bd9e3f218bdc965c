"""Tests for engine.search.exchange: static exchange evaluation of captures."""

from __future__ import annotations

import chess
import pytest
from hypothesis import given, settings

from engine.search.board import SearchBoard
from engine.search.evaluation import PIECE_VALUES
from engine.search.exchange import static_exchange
from engine.search.move import Move
from tests.engine.search.test_evaluation import positions

KING_VALUE = 20_000


def brute_force_exchange(board: chess.Board, move: chess.Move) -> int:
    """The exchange value of `move` by minimax over "take back or stop", played out recursively.

    The same model as `static_exchange`: each side takes with its least valuable attacker (the
    one on the lowest square among equals), pieces attack through the squares the exchange
    empties, pins are ignored, and a king never takes on a square the other side still hits.
    Trying every capturer instead is not the same thing: a bishop that takes first can uncover
    an enemy x-ray that a pawn would have kept shut.
    """

    def value(piece_type: int) -> int:
        return KING_VALUE if piece_type == chess.KING else PIECE_VALUES[piece_type]

    square = move.to_square

    def best_for(side: chess.Color, occupied: int, on_square: int) -> int:
        attackers = board.attackers_mask(side, square, occupied) & occupied
        if not attackers:
            return 0
        origin = min(
            chess.scan_forward(attackers),
            key=lambda at: (value(board.piece_type_at(at) or 0), at),
        )
        rest = occupied & ~chess.BB_SQUARES[origin]
        piece_type = board.piece_type_at(origin)
        assert piece_type is not None
        if piece_type == chess.KING and board.attackers_mask(not side, square, rest) & rest:
            return 0
        return max(0, value(on_square) - best_for(not side, rest, piece_type))

    occupied = board.occupied & ~chess.BB_SQUARES[move.from_square]
    victim = board.piece_type_at(square)
    if board.is_en_passant(move):
        victim = chess.PAWN
        occupied &= ~chess.BB_SQUARES[square - 8 if board.turn else square + 8]
    gain = value(victim) if victim is not None else 0
    mover = board.piece_type_at(move.from_square)
    assert mover is not None
    if move.promotion:
        gain += value(move.promotion) - value(chess.PAWN)
        mover = move.promotion
    return gain - best_for(not board.turn, occupied, mover)


@pytest.mark.parametrize(
    ("fen", "uci", "expected"),
    [
        # An undefended pawn taken by a rook.
        ("1k1r4/1pp4p/p7/4p3/8/P5P1/1PP4P/2K1R3 w - - 0 1", "e1e5", 100),
        # A pawn defended by a knight and backed by a bishop and queen, taken by a knight.
        ("1k1r3q/1ppn3p/p4b2/4p3/8/P2N2P1/1PP1R1BP/2K1Q3 w - - 0 1", "d3e5", -220),
        # A rook defended by a pawn, taken by a knight, with a rook behind to take back.
        ("4k3/8/2p5/3r4/8/4N3/8/3RK3 w - - 0 1", "e3d5", 280),
        # A defended pawn taken by a queen.
        ("4k3/8/2p5/3p4/8/8/8/3QK3 w - - 0 1", "d1d5", 100 - 950),
        # Pawn takes pawn, recaptured, the exchange even.
        ("4k3/8/2p5/3p4/4P3/8/8/4K3 w - - 0 1", "e4d5", 0),
        # The king takes back last...
        ("6k1/8/8/8/8/4p3/3p4/3QK3 w - - 0 1", "d1d2", 100 - 950 + 100),
        # ...but not on a square a rook behind still covers.
        ("3r2k1/8/8/8/8/4p3/3p4/3QK3 w - - 0 1", "d1d2", 100 - 950),
        # Neither king may take on a square the other king touches: the knight is won clean,
        # although the black bishop behind its king would cover the square once the king left.
        ("rn3Qr1/1b1p2pp/p1p5/2b2p2/3k1B1P/4nK1N/PP4PR/R7 w - - 1 31", "f4e3", 320),
    ],
)
def test_known_exchanges(fen: str, uci: str, expected: int) -> None:
    """Captures with a known outcome of the exchange on their square score that outcome."""
    board = chess.Board(fen)
    move = chess.Move.from_uci(uci)
    assert board.is_legal(move)
    assert static_exchange(SearchBoard(board), Move.from_chess(move)) == expected


@settings(max_examples=200, deadline=None)
@given(positions())
def test_exchange_matches_brute_force_and_its_bounds(board: chess.Board) -> None:
    """Every capture scores what the recursive exchange finds, within its first capture's bounds."""
    for move in list(board.generate_legal_captures()):
        found = static_exchange(SearchBoard(board), Move.from_chess(move))
        assert found == brute_force_exchange(board, move), move.uci()
        victim = PIECE_VALUES[
            chess.PAWN if board.is_en_passant(move) else board.piece_type_at(move.to_square) or 0
        ]
        promotion = PIECE_VALUES[move.promotion] - PIECE_VALUES[chess.PAWN] if move.promotion else 0
        mover = board.piece_type_at(move.from_square)
        assert mover is not None
        taker = KING_VALUE if mover == chess.KING else PIECE_VALUES[move.promotion or mover]
        assert victim + promotion - taker <= found <= victim + promotion
