"""`SearchBoard` pushes and pops exactly as python-chess's `Board` does, in every kind of move,
and answers what the search asks of a position as python-chess does."""

from __future__ import annotations

import chess
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.search.board import SearchBoard
from engine.search.constants import from_bitboard
from engine.search.move import Move


def state(board: chess.Board | SearchBoard) -> tuple[object, ...]:
    """Every field a position keeps, and the move stack (bitboards as python-chess's)."""
    return (
        from_bitboard(board.pawns),
        from_bitboard(board.knights),
        from_bitboard(board.bishops),
        from_bitboard(board.rooks),
        from_bitboard(board.queens),
        from_bitboard(board.kings),
        from_bitboard(board.occupied_co[chess.WHITE]),
        from_bitboard(board.occupied_co[chess.BLACK]),
        from_bitboard(board.occupied),
        from_bitboard(board.promoted),
        board.turn,
        from_bitboard(board.castling_rights),
        board.ep_square,
        board.halfmove_clock,
        board.fullmove_number,
        tuple(move.uci() for move in board.move_stack),
        board.fen(),
    )


def assert_same_answers(
    ours: SearchBoard, reference: chess.Board, keys: dict[object, object] | None = None
) -> None:
    """The position's keys, material and pieces, and each legal move's kind, as python-chess
    tells them.

    The keys kept move by move are those of the same position set up afresh; `keys` gathers
    python-chess's transposition keys against ours and ours against theirs, which must match
    one to one (the en passant square counts only where a pawn can legally take there, as
    python-chess's)."""
    fresh = SearchBoard(reference)
    assert (ours.key(), ours.hash, ours.pawn_hash) == (fresh.key(), fresh.hash, fresh.pawn_hash)
    if keys is not None:
        theirs = reference._transposition_key()
        assert keys.setdefault(theirs, ours.key()) == ours.key()
        assert keys.setdefault(ours.key(), theirs) == theirs
    assert ours.is_insufficient_material() == reference.is_insufficient_material()
    for piece_type in chess.PIECE_TYPES:
        for color in chess.COLORS:
            mask = reference.pieces_mask(piece_type, color)
            assert from_bitboard(ours.pieces_mask(piece_type, color)) == mask
    for move in reference.generate_legal_moves():
        assert ours.is_capture(Move.from_chess(move)) == reference.is_capture(move)
        assert ours.is_en_passant(Move.from_chess(move)) == reference.is_en_passant(move)


def play_alike(fen: str, choices: list[int]) -> None:
    """Play the same moves (picked by `choices`, null moves included) on both boards, then
    take them all back, comparing the boards after every step."""
    reference = chess.Board(fen)
    ours = SearchBoard(fen)
    keys: dict[object, object] = {}
    played = 0
    for choice in choices:
        moves = [*reference.generate_legal_moves()]
        if not moves:
            break
        if choice % 11 == 10 and not reference.is_check():
            move = chess.Move.null()
        else:
            move = moves[choice % len(moves)]
        reference.push(move)
        ours.push(Move.from_chess(move))
        played += 1
        assert state(ours) == state(reference), f"after {move} from {fen}"
        assert_same_answers(ours, reference, keys)
    for _ in range(played):
        assert ours.pop().to_chess() == reference.pop()
        assert state(ours) == state(reference)
    # Nothing left to take back: an error, and the position stays as it is.
    with pytest.raises(IndexError):
        ours.pop()
    assert state(ours) == state(reference)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=120))
def test_random_games_match_python_chess(choices: list[int]) -> None:
    """Random games from the start, with null moves here and there."""
    play_alike(chess.STARTING_FEN, choices)


@pytest.mark.parametrize(
    ("fen", "plies"),
    [
        # Castling on both wings for both sides, rooks capturable on their squares.
        ("r3k2r/pppq1ppp/2n2n2/1Bb1p1B1/1bP1P1b1/2N2N2/PP1Q1PPP/R3K2R w KQkq - 4 9", 2),
        ("r3k2r/p6p/8/8/8/8/P6P/R3K2R w KQkq - 0 1", 3),
        # En passant just became possible, and a pinned pawn that may not take it.
        ("8/8/8/K2pP2r/8/8/8/4k3 w - d6 0 2", 3),
        ("4k3/3p4/8/K3P2r/8/8/8/8 b - - 0 1", 2),
        ("rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3", 2),
        # Promotions, with and without a capture, onto a rook's castling square.
        ("r3k2r/1P6/8/8/8/8/6p1/R3K2R w KQkq - 0 1", 3),
        # Minor pieces only: bishops of one colour cannot mate; knight against knight can.
        ("8/8/4k3/8/8/8/2B1B3/4K3 w - - 0 1", 2),
        ("8/3n4/4k3/8/8/8/3N4/4K3 w - - 0 1", 2),
        ("8/8/4k3/8/8/8/3NB3/4K3 b - - 0 1", 2),
    ],
)
def test_special_moves_match_python_chess(fen: str, plies: int) -> None:
    """Every line of up to `plies` moves from positions full of special moves, each pushed
    and popped on both boards in step."""
    reference = chess.Board(fen)
    ours = SearchBoard(fen)
    keys: dict[object, object] = {}
    assert_same_answers(ours, reference, keys)

    def walk(depth: int) -> None:
        for move in list(reference.generate_legal_moves()):
            reference.push(move)
            ours.push(Move.from_chess(move))
            assert state(ours) == state(reference), [m.uci() for m in reference.move_stack]
            assert_same_answers(ours, reference, keys)
            if depth > 1:
                walk(depth - 1)
            assert ours.pop().to_chess() == reference.pop()
            assert state(ours) == state(reference), [m.uci() for m in reference.move_stack]

    walk(plies)


def test_castling_rights_without_their_king_and_rook_are_cleaned() -> None:
    """A FEN may grant rights whose rook is gone (or is an enemy knight): the key and the FEN
    drop them, as python-chess's do, and a null move takes nothing."""
    fen = "4k3/8/8/8/8/8/8/n3K2R w KQkq - 0 1"
    reference = chess.Board(fen)
    ours = SearchBoard(fen)
    assert_same_answers(ours, reference)
    assert ours.fen() == reference.fen() == "4k3/8/8/8/8/8/8/n3K2R w K - 0 1"
    assert not ours.is_capture(Move(0, 0))
    assert SearchBoard(reference).key() == ours.key()


def test_a_promoted_piece_stays_promoted_as_it_moves() -> None:
    """The board remembers promoted pieces (python-chess does, for variants) through moves."""
    board = SearchBoard("7k/P7/8/8/8/8/8/K7 w - - 0 1")
    board.push(Move.from_chess(chess.Move.from_uci("a7a8q")))
    board.push(Move.from_chess(chess.Move.from_uci("h8h7")))
    board.push(Move.from_chess(chess.Move.from_uci("a8a5")))
    assert board.promoted == chess.BB_A5
    board.pop()
    assert board.promoted == chess.BB_A8


def test_the_search_move_is_python_chess_move() -> None:
    """Every move of standard chess (and python-chess's null move) converts both ways, and
    reads, compares and hashes as python-chess's own."""
    promotions = (None, chess.KNIGHT, chess.BISHOP, chess.ROOK, chess.QUEEN)
    reference = [
        chess.Move(a, b, piece)
        for a in chess.SQUARES
        for b in chess.SQUARES
        for piece in promotions
    ]
    ours = [Move.from_chess(move) for move in reference]
    assert [move.to_chess() for move in ours] == reference
    assert [move.uci() for move in ours] == [move.uci() for move in reference]
    assert len(set(ours)) == len(set(reference)) == len(reference)
    assert Move(12, 28) == Move.from_chess(chess.Move.from_uci("e2e4")) != Move(12, 20)
    assert Move(0, 0).uci() == "0000" and Move(0, 0) != None  # noqa: E711


@pytest.mark.parametrize(
    ("fen", "move", "without_ep", "counts"),
    [
        # A pawn stands ready to take: the en passant square is part of the position.
        ("4k3/8/8/8/3p4/8/4P3/4K3 w - - 0 1", "e2e4", "4k3/8/8/8/3pP3/8/8/4K3 b - - 0 1", True),
        # No pawn beside it: the square is set, but the position is the same as without it.
        ("4k3/8/8/8/8/8/4P3/4K3 w - - 0 1", "e2e4", "4k3/8/8/8/4P3/8/8/4K3 b - - 0 1", False),
        # The only pawn that could take is pinned along the rank: not counted either.
        ("4k3/3p4/8/K3P2r/8/8/8/8 b - - 0 1", "d7d5", "4k3/8/8/K2pP2r/8/8/8/8 w - - 0 2", False),
    ],
)
def test_the_key_counts_en_passant_only_where_a_pawn_can_take(
    fen: str, move: str, without_ep: str, counts: bool
) -> None:
    """Two boards alike but for an en passant square have one key exactly when no pawn can
    legally take there, as python-chess's transposition keys do."""
    reference = chess.Board(fen)
    ours = SearchBoard(fen)
    reference.push_uci(move)
    ours.push(Move.from_chess(chess.Move.from_uci(move)))
    plain = chess.Board(without_ep)
    assert (reference._transposition_key() != plain._transposition_key()) == counts
    assert (ours.key() != SearchBoard(without_ep).key()) == counts
