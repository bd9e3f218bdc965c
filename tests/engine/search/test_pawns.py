"""Tests for engine.search.pawns: pawn structure and king shelter terms, and their cache."""

from __future__ import annotations

import chess
import pytest
from hypothesis import given, settings

from engine.search.board import SearchBoard
from engine.search.evaluation import evaluate_white
from engine.search.move import Move
from engine.search.pawns import PawnTable, pawn_terms
from tests.engine.search.test_evaluation import positions


def terms_of(fen: str) -> tuple[int, int]:
    """`pawn_terms` of the position `fen`, computed without a cache."""
    board = chess.Board(fen)
    return pawn_terms(
        board.pieces_mask(chess.PAWN, chess.WHITE),
        board.pieces_mask(chess.PAWN, chess.BLACK),
        board.king(chess.WHITE) or 0,
        board.king(chess.BLACK) or 0,
    )


def test_symmetrical_pawns_are_level() -> None:
    """The starting placement of pawns and kings scores zero in both game phases."""
    assert terms_of(chess.STARTING_FEN) == (0, 0)


def test_doubled_and_isolated_pawns_cost() -> None:
    """Doubling a pawn and leaving it without neighbours costs in both phases."""
    healthy = terms_of("4k3/pppp4/8/8/8/8/PPP5/4K3 w - - 0 1")
    doubled_isolated = terms_of("4k3/pppp4/8/8/8/P7/P1P5/4K3 w - - 0 1")
    assert doubled_isolated[0] < healthy[0]
    assert doubled_isolated[1] < healthy[1]


# The six rows between the kings' ranks (rank 7 first), with an a-pawn on ranks 3 to 7.
PAWN_ROWS = ["/".join("P7" if row == 6 - rank else "8" for row in range(6)) for rank in range(2, 7)]


def test_a_passed_pawn_is_worth_more_the_further_it_is() -> None:
    """In the whole evaluation (its bonus and the pawn's placement), a passed pawn is worth
    more with every step from the third rank on, both kings far from it (with the enemy king
    in front of a rook's pawn it would be a draw)."""
    scores = [evaluate_white(chess.Board(f"7k/{rows}/7K w - - 0 1")) for rows in PAWN_ROWS]
    assert scores == sorted(set(scores)), scores


def test_a_passed_pawn_far_from_the_enemy_king_is_worth_more() -> None:
    """In the endgame, a passed pawn the enemy king cannot reach scores above one it blocks."""
    caught = terms_of("8/8/k7/8/P7/8/8/7K w - - 0 1")
    runaway = terms_of("7k/8/8/8/P7/8/8/7K w - - 0 1")
    assert runaway[1] > caught[1]


def test_a_castled_king_wants_its_pawn_shield() -> None:
    """In the middlegame a castled king with pawns in front of it beats one without."""
    shielded = terms_of("6k1/5ppp/8/8/8/8/5PPP/6K1 w - - 0 1")
    bare = terms_of("6k1/5ppp/8/8/8/5P2/6PP/6K1 w - - 0 1".replace("5P2/6PP", "8/PPP5"))
    assert bare[0] < shielded[0]


@settings(max_examples=150, deadline=None)
@given(positions())
def test_mirror_negates_pawn_terms(board: chess.Board) -> None:
    """Mirroring the placement (colours swapped, board flipped) negates both terms exactly."""
    mirrored = board.mirror()
    assert terms_of(mirrored.fen()) == tuple(-term for term in terms_of(board.fen()))


@settings(max_examples=100, deadline=None)
@given(positions())
def test_the_cache_gives_what_a_fresh_computation_gives(board: chess.Board) -> None:
    """Along a game, a small table whose slots are taken over again and again agrees with
    `pawn_terms`."""
    table = PawnTable(size=4)
    replay = SearchBoard(chess.STARTING_FEN)
    for move in [*board.move_stack, None]:
        assert table.terms(replay) == terms_of(replay.fen())
        assert table.terms(replay) == terms_of(replay.fen())  # a hit now, maybe a miss before
        assert len(table) <= 4
        if move is not None:
            replay.push(Move.from_chess(move))


def test_each_pawn_table_starts_empty_with_a_power_of_two_slots() -> None:
    """A table of the default size starts empty even after another was filled (each copies
    the empty one); slots are picked by masking the key, which needs a power of two."""
    first = PawnTable()
    first.terms(SearchBoard(chess.STARTING_FEN))
    assert len(first) == 1
    assert len(PawnTable()) == 0
    assert len(PawnTable(size=8)) == 0
    with pytest.raises(ValueError, match="power of two"):
        PawnTable(size=6)
