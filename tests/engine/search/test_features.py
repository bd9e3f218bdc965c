"""Tests for engine.search.features: the weighted features are the evaluation, to the centipawn
(before the draw scaling)."""

from __future__ import annotations

import chess
import pytest
from hypothesis import given, settings

from engine.search import evaluation
from engine.search.features import WEIGHTS, evaluate_counts, feature_counts, format_weights
from tests.engine.search.test_evaluation import positions, unscaled_evaluation

CODE_VALUES = [weight.value for weight in WEIGHTS]


# From the start or from a pawn race, so that passed pawns, promotions, open files and bare
# kings all come up.
STARTS = (chess.STARTING_FEN, "4k3/pppppppp/8/8/8/8/PPPPPPPP/4K3 w - - 0 1")


@settings(max_examples=300, deadline=None)
@given(positions(STARTS, max_plies=160))
def test_weighted_features_are_the_evaluation(board: chess.Board) -> None:
    """The code's weights over a position's features give exactly the evaluation before its
    scaling of drawish endings (which is not a weighted sum)."""
    counts, phase = feature_counts(board)
    assert evaluate_counts(CODE_VALUES, counts, phase) == unscaled_evaluation(board)


def test_features_of_a_known_position() -> None:
    """Counted by hand: White's doubled, isolated c-pawns, one passed; a rook on an open file."""
    board = chess.Board("4k3/8/8/8/2P5/2P5/8/R3K3 w - - 0 1")
    counts, phase = feature_counts(board)
    named = {WEIGHTS[index].name: count for index, count in counts.items()}
    assert phase == 2
    assert named["mg doubled pawn"] == named["eg doubled pawn"] == 1
    assert named["mg isolated pawn"] == 2
    # Only the front pawn (c4, rank 4) is passed; the c3 pawn stands behind its own.
    assert named["eg passed pawn rank 4"] == 1
    assert "eg passed pawn rank 3" not in named
    assert named["mg rook open file"] == 1
    assert named["mg rook a1"] == named["eg rook a1"] == 1
    # Rank 4 is two steps beyond the second: (4 - 1 - 2) times the kings' distances to c5.
    assert named["eg passed pawn, their king's distance"] == 1 * 3
    assert named["eg passed pawn, own king's distance"] == 1 * 4
    # Black's king on e8 has no pawns at all on d, e and f: missing and open, three files each;
    # White's on e1 the same. They cancel.
    assert "mg king shield pawn missing" not in named


@pytest.mark.parametrize(
    ("fen", "count"),
    [
        # White to move: its knight on b4 is attacked by the a5 pawn, its bishop on e4 by the
        # d5 and f5 pawns (one piece, counted once); its rook on h3 by nothing.
        ("4k3/8/8/p2p1p2/1N2B3/7R/8/4K3 w - - 0 1", 2),
        # Black to move: those white pieces do not count, and Black's are not attacked.
        ("4k3/8/8/p2p1p2/1N2B3/7R/8/4K3 b - - 0 1", 0),
        # Black to move: the a4 pawn attacks b5, not the bishop on h4 across the board's edge.
        ("4k3/8/8/1n6/P6b/8/8/4K3 b - - 0 1", -1),
        # White to move: the h5 pawn attacks g4, not the bishop on a5 across the edge.
        ("4k3/8/8/B6p/6N1/8/8/4K3 w - - 0 1", 1),
    ],
)
def test_the_side_to_move_s_pieces_attacked_by_pawns(fen: str, count: int) -> None:
    """Counted by hand: the side to move's pieces (not pawns or king) that enemy pawns attack,
    White's minus Black's, and the tempo of the side to move."""
    counts, _ = feature_counts(chess.Board(fen))
    named = {WEIGHTS[index].name: value for index, value in counts.items()}
    assert named.get("mg piece attacked by a pawn", 0) == count
    assert named.get("eg piece attacked by a pawn", 0) == count
    assert named["mg tempo"] == named["eg tempo"] == (1 if " w " in fen else -1)


def test_formatted_tables_give_back_the_weights() -> None:
    """Material plus placement in `format_weights`' tables is each piece-square weight again,
    and every other weight is named with its value."""
    values = [value + index % 7 for index, value in enumerate(CODE_VALUES)]
    text = format_weights(values)
    tables: dict[str, object] = {}
    exec(text, tables)
    for stage, offset in (("MG", 0), ("EG", 6 * 64)):
        material = tables[f"_{stage}_MATERIAL"]
        diagrams = tables[f"_{stage}_PST_DIAGRAM"]
        assert isinstance(material, tuple)
        assert isinstance(diagrams, tuple)
        for piece_type in chess.PIECE_TYPES:
            for index in range(64):
                if piece_type == chess.PAWN and not 8 <= index < 56:
                    assert diagrams[piece_type][index] == 0
                    continue
                combined = material[piece_type] + diagrams[piece_type][index]
                assert combined == values[offset + (piece_type - 1) * 64 + index]
    for weight, value in zip(WEIGHTS[2 * 6 * 64 :], values[2 * 6 * 64 :], strict=True):
        assert f"# {weight.name}: {value}" in text.splitlines()


def test_the_code_s_own_weights_format_as_the_code_has_them() -> None:
    """Unchanged weights are written back as the very tables of the evaluation module."""
    tables: dict[str, object] = {}
    exec(format_weights(CODE_VALUES), tables)
    assert tables["_MG_MATERIAL"] == evaluation._MG_MATERIAL
    assert tables["_EG_MATERIAL"] == evaluation._EG_MATERIAL
    assert tables["_MG_PST_DIAGRAM"] == evaluation._MG_PST_DIAGRAM
    assert tables["_EG_PST_DIAGRAM"] == evaluation._EG_PST_DIAGRAM
