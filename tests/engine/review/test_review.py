"""The review of a whole game from per-position evaluations."""

from __future__ import annotations

import chess
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.review.review import (
    VARIATION_PLIES,
    PositionEval,
    build_review,
    meets_budget,
    terminal_score,
)
from engine.rules.wire import ReviewJSON, ScoreJSON

# 1. e4 e5 2. Nf3 Nc6 3. Bc4 Qh4?? 4. Nxh4: Black hangs the queen.
HUNG_QUEEN = ["e2e4", "e7e5", "g1f3", "b8c6", "f1c4", "d8h4", "f3h4"]
HUNG_QUEEN_EVALS = [
    PositionEval({"cp": 20}, 6, "e2e4", ("e2e4", "e7e5")),
    PositionEval({"cp": 30}, 6, "e7e5", ("e7e5", "g1f3")),
    PositionEval({"cp": 25}, 6, "g1f3", ("g1f3",)),
    PositionEval({"cp": 35}, 6, "b8c6", ("b8c6", "f1c4")),
    PositionEval({"cp": 30}, 6, "f1c4", ("f1c4",)),
    PositionEval({"cp": 40}, 6, "g8f6", ("g8f6", "d2d3", "f8c5")),
    PositionEval({"cp": 880}, 6, "f3h4", ("f3h4", "g8f6")),
    PositionEval({"cp": 900}, 6, "g8f6", ("g8f6",)),
]


def review(
    moves: list[str], evals: list[PositionEval], fen: str = chess.STARTING_FEN
) -> ReviewJSON:
    """``build_review`` with fixed engine, budget and time."""
    return build_review(
        fen,
        moves,
        evals,
        engine="test",
        budget={"depth": 6},
        completed_at="2026-11-30T10:00:00Z",
    )


def test_a_hung_queen_is_a_blunder_with_the_better_move() -> None:
    """3...Qh4?? is a blunder ($4) with lichess's comment and the engine's line from the
    position before it; nothing else is marked, and the blunderer's figures are worse."""
    result = review(HUNG_QUEEN, HUNG_QUEEN_EVALS)
    marked = [m for m in result["moves"] if m["judgment"] is not None]
    assert [m["ply"] for m in marked] == [6]
    blunder = marked[0]
    assert blunder["san"] == "Qh4" and blunder["judgment"] == {
        "name": "Blunder",
        "nag": 4,
        "comment": "Blunder. Nf6 was best.",
    }
    assert blunder["variation"] == ["g8f6", "d2d3", "f8c5"] and blunder["best"] == "g8f6"
    assert result["black"]["blunder"] == 1 and result["white"]["blunder"] == 0
    assert result["white"]["accuracy"] is not None and result["black"]["accuracy"] is not None
    assert result["white"]["accuracy"] > 90 > result["black"]["accuracy"]
    assert result["black"]["acpl"] is not None and result["black"]["acpl"] >= 200
    assert [m["score"] for m in result["moves"]] == [e.score for e in HUNG_QUEEN_EVALS[1:]]
    assert result["initial"] == {"score": {"cp": 20}, "depth": 6, "best": "e2e4"}
    assert [m["san"] for m in result["moves"]][:3] == ["e4", "e5", "Nf3"]


def test_the_engines_own_move_is_never_judged() -> None:
    """A drop after the very move the engine chose (its horizon, not the player) is not
    marked, though it still counts in the accuracy."""
    evals = list(HUNG_QUEEN_EVALS)
    evals[5] = PositionEval({"cp": 40}, 6, "d8h4", ("d8h4",))
    result = review(HUNG_QUEEN, evals)
    assert all(m["judgment"] is None for m in result["moves"])
    assert result["moves"][5]["accuracy"] < 20


def test_letting_in_a_mate_and_mating() -> None:
    """Scholar's mate: 3...Nf6?? lets in mate in one (a blunder: "Checkmate is now
    unavoidable"); 4.Qxf7# itself is perfect, and the mate on the board is ``{"mate": 0}``."""
    moves = ["e2e4", "e7e5", "f1c4", "b8c6", "d1h5", "g8f6", "h5f7"]
    evals = [
        PositionEval({"cp": 20}, 6, "e2e4", ("e2e4",)),
        PositionEval({"cp": 30}, 6, "e7e5", ("e7e5",)),
        PositionEval({"cp": 30}, 6, "g1f3", ("g1f3",)),
        PositionEval({"cp": 40}, 6, "g8f6", ("g8f6",)),
        PositionEval({"cp": 35}, 6, "g1f3", ("g1f3",)),
        PositionEval({"cp": 60}, 6, "g7g6", ("g7g6", "h5f3")),
        PositionEval({"mate": 1}, 6, "h5f7", ("h5f7",)),
        PositionEval({"mate": 0}, 0),
    ]
    board = chess.Board()
    for uci in moves:
        board.push_uci(uci)
    assert terminal_score(board) == {"mate": 0}
    result = review(moves, evals)
    nf6, mate = result["moves"][5], result["moves"][6]
    assert nf6["judgment"] is not None and nf6["judgment"]["name"] == "Blunder"
    assert nf6["judgment"]["comment"] == "Checkmate is now unavoidable. g6 was best."
    assert mate["judgment"] is None and mate["accuracy"] == 100
    assert mate["score"] == {"mate": 0} and mate["san"] == "Qxf7#"


def test_black_mating_white_is_black_winning() -> None:
    """Fool's mate: the mate on the board with White to move counts for Black; 2.g4?? is
    White's blunder, and Black's moves are all perfect."""
    moves = ["f2f3", "e7e5", "g2g4", "d8h4"]
    evals = [
        PositionEval({"cp": 20}, 6, "e2e4", ("e2e4",)),
        PositionEval({"cp": -60}, 6, "e7e5", ("e7e5",)),
        PositionEval({"cp": -70}, 6, "e2e4", ("e2e4",)),
        PositionEval({"mate": -1}, 6, "d8h4", ("d8h4",)),
        PositionEval({"mate": 0}, 0),
    ]
    result = review(moves, evals)
    assert result["moves"][2]["judgment"] is not None
    assert result["moves"][2]["judgment"]["name"] == "Blunder"
    assert result["black"]["accuracy"] == 100 and result["black"]["acpl"] == 0
    assert result["white"]["blunder"] == 1


def test_mismatched_evaluations_and_illegal_moves_are_refused() -> None:
    """One evaluation per position, legal moves only."""
    with pytest.raises(ValueError, match="evaluations"):
        review(HUNG_QUEEN, HUNG_QUEEN_EVALS[:-1])
    with pytest.raises(ValueError, match="illegal"):
        review(["e2e4", "e2e4"], HUNG_QUEEN_EVALS[:3])


def test_terminal_positions_and_budgets() -> None:
    """Stalemate and a dead draw score 0 without a search; a playable position needs one;
    a budget is met by depth or by nodes."""
    assert terminal_score(chess.Board("7k/5Q2/6K1/8/8/8/8/8 b - - 0 1")) == {"cp": 0}
    assert terminal_score(chess.Board("8/8/8/4k3/8/8/8/4K3 w - - 0 1")) == {"cp": 0}
    assert terminal_score(chess.Board()) is None
    assert meets_budget({"depth": 6}, 6, 10) and not meets_budget({"depth": 6}, 5, 10**9)
    assert meets_budget({"nodes": 1000}, 1, 1000) and not meets_budget({"nodes": 1000}, 30, 999)


scores = st.one_of(
    st.builds(lambda cp: {"cp": cp}, st.integers(-3000, 3000)),
    st.builds(lambda m: {"mate": m}, st.integers(-8, 8).filter(bool)),
)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_game_gets_a_consistent_review(data: st.DataObject) -> None:
    """Random games with random evaluations and engine lines: a move per entry, figures in
    range, counts that match the marks, and every better line legal where it starts."""
    board = chess.Board()
    moves: list[str] = []
    evals: list[PositionEval] = []
    for _ in range(data.draw(st.integers(0, 30))):
        legal = list(board.legal_moves)
        if not legal:
            break
        line = data.draw(st.lists(st.sampled_from(legal), min_size=1, max_size=3))
        score: ScoreJSON = data.draw(scores)  # type: ignore[assignment]
        evals.append(PositionEval(score, 4, line[0].uci(), tuple(m.uci() for m in line)))
        move = data.draw(st.sampled_from(legal))
        moves.append(move.uci())
        board.push(move)
    evals.append(PositionEval(terminal_score(board) or data.draw(scores), 4))  # type: ignore[arg-type]
    result = review(moves, evals)
    assert [m["uci"] for m in result["moves"]] == moves
    replay = chess.Board()
    for entry in result["moves"]:
        assert 0 <= entry["accuracy"] <= 100
        assert len(entry["variation"]) <= VARIATION_PLIES
        if entry["judgment"] is None:
            assert entry["variation"] == []
        line = replay.copy()
        for uci in entry["variation"]:
            assert chess.Move.from_uci(uci) in line.legal_moves
            line.push_uci(uci)
        replay.push_uci(entry["uci"])
    for color, side in ((chess.WHITE, result["white"]), (chess.BLACK, result["black"])):
        marks = [
            m["judgment"]["name"]
            for i, m in enumerate(result["moves"])
            if m["judgment"] is not None and (i % 2 == 0) == (color == chess.WHITE)
        ]
        assert side["blunder"] == marks.count("Blunder")
        assert side["mistake"] == marks.count("Mistake")
        assert side["inaccuracy"] == marks.count("Inaccuracy")
        assert side["accuracy"] is None or 0 <= side["accuracy"] <= 100
