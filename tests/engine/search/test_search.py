"""Tests for engine.search.search: mates, tactics, score conventions, limits and determinism.

Every search is bounded by depth or nodes, never by time, so the results are reproducible.
The mate positions were checked with an exhaustive python-chess mate search: each has a mate in
exactly the stated number of moves and none shorter.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys

import chess
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.search.search import SearchInfo, SearchMemory, iter_search
from engine.search.transposition import TranspositionTable

MATE_IN_1_WHITE = "6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1"  # Ra8#
MATE_IN_2_WHITE = "2rr3k/pp3pp1/1nnqbN1p/3pN3/2pP4/2P3Q1/PPB4P/R4RK1 w - - 0 1"  # WAC.001, Qg6
MATE_IN_2_BLACK = "5k2/6pp/p1qN4/1p1p4/3P4/2PKP2Q/PP3r2/3R4 b - - 0 1"  # WAC.005, Qc4+
MATE_IN_3_WHITE = "k4r2/1R4pb/1pQp1n1p/3P4/5p1P/3P2P1/r1q1R2K/8 w - - 0 1"  # WAC.050, Rxb6+
HANGING_QUEEN = "rnb1kbnr/pppp1ppp/8/4p3/4P2q/5N2/PPPP1PPP/RNBQKB1R w KQkq - 0 3"  # Nxh4
KNIGHT_FORK = "r3k3/8/8/1N6/8/8/PP6/4K3 w - - 0 1"  # Nc7+ then Nxa8


def mirrored(fen: str) -> str:
    """Return the FEN of the colour-mirrored position (Black and White swap roles)."""
    return chess.Board(fen).mirror().fen()


def final(fen: str, *, max_depth: int) -> SearchInfo:
    """Run a depth-bounded search and return its last completed depth."""
    infos = list(iter_search(fen, max_depth=max_depth))
    assert infos, "the search yielded no completed depth"
    return infos[-1]


@pytest.mark.parametrize(
    ("fen", "best", "mate"),
    [
        (MATE_IN_1_WHITE, "a1a8", 1),
        (mirrored(MATE_IN_1_WHITE), "a8a1", -1),
        (MATE_IN_2_WHITE, "g3g6", 2),
        (MATE_IN_2_BLACK, "c6c4", -2),
        (MATE_IN_3_WHITE, "b7b6", 3),
        (mirrored(MATE_IN_3_WHITE), "b2b3", -3),
    ],
)
def test_finds_forced_mate(fen: str, best: str, mate: int) -> None:
    """The search plays the mating move and reports the exact mate distance from White's view."""
    info = final(fen, max_depth=8)
    assert info.best == best
    assert info.mate == mate
    assert info.score_cp is None


@pytest.mark.parametrize(
    ("fen", "mate"),
    [
        # White has just played Qg6 in WAC.001; Black to move is mated next move whatever it does.
        ("2rr3k/pp3pp1/1nnqbNQp/3pN3/2pP4/2P5/PPB4P/R4RK1 b - - 1 1", 1),
        (mirrored("2rr3k/pp3pp1/1nnqbNQp/3pN3/2pP4/2P5/PPB4P/R4RK1 b - - 1 1"), -1),
    ],
)
def test_mate_sign_is_white_view_when_the_mover_is_mated(fen: str, mate: int) -> None:
    """A side to move that is getting mated sees the mate signed for the mating colour."""
    assert final(fen, max_depth=6).mate == mate


def test_wins_hanging_queen() -> None:
    """White captures a queen left en prise and the score shows the material."""
    info = final(HANGING_QUEEN, max_depth=4)
    assert info.best == "f3h4"
    assert info.score_cp is not None and info.score_cp > 600


def test_wins_hanging_queen_for_black() -> None:
    """The mirrored position is won by Black, so the White-view score is strongly negative."""
    info = final(mirrored(HANGING_QUEEN), max_depth=4)
    assert info.best == "f6h5"
    assert info.score_cp is not None and info.score_cp < -600


def test_finds_knight_fork() -> None:
    """A knight check that forks king and rook is played and wins the rook."""
    info = final(KNIGHT_FORK, max_depth=5)
    assert info.best == "b5c7"
    assert info.pv[:3] == ("b5c7", info.pv[1], "c7a8")
    assert info.score_cp is not None and info.score_cp > 250


@pytest.mark.parametrize(
    "fen",
    [chess.STARTING_FEN, MATE_IN_3_WHITE, KNIGHT_FORK, mirrored(HANGING_QUEEN)],
)
def test_pv_is_legal_from_the_root(fen: str) -> None:
    """Every yielded PV starts with the best move and is a legal sequence from the root."""
    for info in iter_search(fen, max_depth=5):
        assert info.pv[0] == info.best
        board = chess.Board(fen)
        for uci in info.pv:
            move = chess.Move.from_uci(uci)
            assert board.is_legal(move), (info.depth, info.pv)
            board.push(move)


# Searches whose trees a change may not alter unseen: a change of speed alone keeps these
# node counts (and bench/search_speed.py's); a change of the search's decisions updates them,
# with the self-play or match figure that justified it in the same commit.
PINNED_TREES = [
    ("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1", 7, 13_001, "d2d4"),
    ("r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N1PN2/PP2BPPP/R2QKB1R w KQ - 0 8", 6, 8_451, "a1c1"),
    ("2rr3k/pp3pp1/1nnqbN1p/3pN3/2pP4/2P3Q1/PPB4P/R4RK1 w - - 0 1", 4, 3_197, "g3g6"),
    ("8/5pk1/6p1/1R5p/3r3P/6P1/5PK1/8 w - - 0 40", 8, 31_350, "g2f3"),
]


@pytest.mark.parametrize(("fen", "depth", "nodes", "best"), PINNED_TREES)
def test_the_search_trees_are_pinned(fen: str, depth: int, nodes: int, best: str) -> None:
    """The opening, a quiet and a tactical middlegame and a rook ending, each searched to a
    fixed depth with a fresh memory (the middlegame with a mate in sight to the depth that
    confirms it), visit exactly the pinned number of nodes."""
    last = list(iter_search(fen, max_depth=depth))[-1]
    assert (last.depth, last.nodes, last.best) == (depth, nodes, best)


def test_depths_are_yielded_in_order_with_growing_node_counts() -> None:
    """Each completed depth is yielded once, in order, with a cumulative node count."""
    infos = list(iter_search(chess.STARTING_FEN, max_depth=4))
    assert [info.depth for info in infos] == [1, 2, 3, 4]
    assert all(a.nodes < b.nodes for a, b in itertools.pairwise(infos))


def test_two_searches_of_a_position_agree() -> None:
    """Searching the same position twice gives identical results: no state survives a job."""
    fen = "r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N1PN2/PP2BPPP/R2QKB1R w KQ - 0 8"
    first = list(iter_search(fen, max_depth=4))
    list(iter_search(MATE_IN_2_WHITE, max_depth=4))  # an unrelated job in between
    assert list(iter_search(fen, max_depth=4)) == first


def test_node_budget_stops_the_search() -> None:
    """With a node budget, every yielded depth stays within it and the search ends."""
    infos = list(iter_search(chess.STARTING_FEN, max_nodes=3_000))
    assert infos
    assert all(info.nodes <= 3_000 for info in infos)


def test_should_stop_aborts_without_yielding_the_partial_depth() -> None:
    """A stop request inside the first depth ends the search before anything is yielded."""
    calls: list[int] = []

    def stop() -> bool:
        calls.append(1)
        return True

    assert list(iter_search(chess.STARTING_FEN, should_stop=stop)) == []
    assert calls


def test_should_stop_is_polled_during_a_depth() -> None:
    """A stop request after some polls keeps the depths completed so far and no more."""
    polls = 0

    def stop_after_a_while() -> bool:
        nonlocal polls
        polls += 1
        return polls > 5

    infos = list(iter_search(chess.STARTING_FEN, should_stop=stop_after_a_while))
    assert 1 <= len(infos) < 64
    assert polls == 6


@pytest.mark.parametrize(
    "fen",
    [
        "R5k1/5ppp/8/8/8/8/8/6K1 b - - 0 1",  # checkmate
        "7k/5Q2/6K1/8/8/8/8/8 b - - 0 1",  # stalemate
    ],
)
def test_position_without_legal_moves_yields_nothing(fen: str) -> None:
    """Checkmate and stalemate at the root yield no info: there is no move to search."""
    assert list(iter_search(fen, max_depth=3)) == []


def test_avoids_stalemating_when_winning() -> None:
    """With a queen up, the search does not pick the move that stalemates the opponent."""
    info = final("7k/8/6K1/8/8/8/8/5Q2 w - - 0 1", max_depth=4)
    assert info.best != "f1f7"
    assert (info.mate or 0) > 0 or (info.score_cp or 0) > 500


def test_insufficient_material_scores_a_draw() -> None:
    """King and knight against king is a dead draw, whatever the knight does."""
    assert final("8/8/8/4k3/8/8/8/4K2N w - - 0 1", max_depth=4).score_cp == 0


def test_the_search_scores_a_rook_against_a_bishop_near_a_draw() -> None:
    """The search's own evaluation scales an ending the side ahead cannot win, as
    `evaluate_white` does: rook against bishop, no pawns, is worth little more than a draw."""
    score = final("8/8/4k3/8/3b4/8/2R5/4K3 w - - 0 1", max_depth=4).score_cp
    assert score is not None and 0 < score < 40


def test_fifty_move_rule_scores_a_draw() -> None:
    """A rook up with the fifty-move count at 99 is a draw unless mate comes at once."""
    assert final("8/8/8/4k3/8/8/8/R3K3 w - - 99 80", max_depth=3).score_cp == 0


def test_fifty_move_rule_yields_to_checkmate() -> None:
    """A mate delivered on the hundredth half-move still counts as mate."""
    assert final("6k1/5ppp/8/8/8/8/8/R5K1 w - - 99 80", max_depth=3).mate == 1


def test_invalid_fen_raises_value_error() -> None:
    """A malformed FEN or an impossible position is refused with ValueError."""
    with pytest.raises(ValueError, match=r"fen|position"):
        list(iter_search("not a fen"))
    with pytest.raises(ValueError, match="invalid position"):
        list(iter_search("8/8/8/8/8/8/8/8 w - - 0 1"))


# Black, a rook down, went Kh8-g8 while White shuffled its rook: Kg8-h8 now repeats the start.
REPEAT_START = "7k/5ppp/8/8/8/8/5PPP/3R2K1 w - - 0 1"
REPEAT_MOVES = ("d1d2", "h8g8", "d2d1")
# White, a rook up, went Kf1-g1 while Black shuffled its king: its best move, bringing the
# king up again (g1f1), would repeat the position the game started from.
WINNING_START = "6k1/5pp1/7p/8/8/8/5PPP/3R1K2 b - - 1 1"
WINNING_MOVES = ("g8h8", "f1g1", "h8g8")


def test_moves_reach_the_searched_position() -> None:
    """With `moves`, the search is of the position after them, and its PV is legal there."""
    board = chess.Board(REPEAT_START)
    for uci in REPEAT_MOVES:
        board.push_uci(uci)
    for info in iter_search(REPEAT_START, moves=REPEAT_MOVES, max_depth=3):
        assert board.is_legal(chess.Move.from_uci(info.best))


def test_the_worse_side_repeats_a_position_of_the_game() -> None:
    """A side a rook down takes the draw a repetition of the game's history offers."""
    infos = list(iter_search(REPEAT_START, moves=REPEAT_MOVES, max_depth=5))
    assert infos[-1].best == "g8h8"
    assert infos[-1].score_cp == 0
    # Without the history the same position is just lost, and the king goes elsewhere.
    board = chess.Board(REPEAT_START)
    for uci in REPEAT_MOVES:
        board.push_uci(uci)
    alone = final(board.fen(), max_depth=5)
    assert alone.best != "g8h8"
    assert alone.score_cp is not None and alone.score_cp > 300


def test_the_better_side_avoids_repeating_a_position_of_the_game() -> None:
    """A side a rook up does not play the move that would repeat, though it is its best."""
    board = chess.Board(WINNING_START)
    for uci in WINNING_MOVES:
        board.push_uci(uci)
    assert final(board.fen(), max_depth=5).best == "g1f1"  # without the history
    info = list(iter_search(WINNING_START, moves=WINNING_MOVES, max_depth=5))[-1]
    assert info.best != "g1f1"
    assert info.score_cp is not None and info.score_cp > 300


def test_an_illegal_move_in_the_history_raises_value_error() -> None:
    """A move of `moves` that is not legal where it is played is refused."""
    with pytest.raises(ValueError, match="illegal move 'e2e5'"):
        list(iter_search(chess.STARTING_FEN, moves=("e2e4", "e2e5")))
    with pytest.raises(ValueError, match="illegal move '0000'"):
        list(iter_search(chess.STARTING_FEN, moves=("0000",)))
    # Castling written as the king taking its rook is castling, as python-chess reads it.
    opening = ("e2e4", "e7e5", "g1f3", "b8c6", "f1c4", "g8f6")
    as_rook, as_king = (
        {
            info.best
            for info in iter_search(
                chess.STARTING_FEN, moves=(*opening, castling), max_depth=1, multipv=500
            )
        }
        for castling in ("e1h1", "e1g1")
    )
    assert as_rook == as_king and len(as_king) > 20


# Promotions for both sides (and captures that promote), castling both ways, en passant.
RULES_START = "r3k2r/1P4P1/8/3pP3/8/8/1p4p1/R3K2R w KQkq d6 0 1"


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_the_history_is_read_as_python_chess_reads_it(data: st.DataObject) -> None:
    """Random games (castling also written as the king taking its rook) lead the search to
    python-chess's position: its root moves are python-chess's legal moves there. A last
    move python-chess refuses is refused with the same words, one it accepts is played.
    The games start from the opening or from a position of promotions, castling on both
    wings and en passant."""
    start = data.draw(st.sampled_from([chess.STARTING_FEN, RULES_START]))
    board = chess.Board(start)
    moves: list[str] = []
    for _ in range(data.draw(st.integers(0, 60))):
        legal = list(board.legal_moves)
        if not legal:
            break
        move = data.draw(st.sampled_from(legal))
        uci = move.uci()
        if board.is_castling(move) and data.draw(st.booleans()):
            rook = chess.square(
                7 if chess.square_file(move.to_square) == 6 else 0,
                chess.square_rank(move.from_square),
            )
            uci = chess.Move(move.from_square, rook).uci()
        moves.append(uci)
        board.push(move)
    squares = st.sampled_from(chess.SQUARE_NAMES)
    last = data.draw(
        st.one_of(
            st.sampled_from([m.uci() for m in board.legal_moves] or ["0000"]),
            st.builds(
                lambda a, b, p: a + b + p, squares, squares, st.sampled_from(["", "q", "n", "k"])
            ),
            st.sampled_from(["0000", "", "e2", "E2E4", "e2e4x"]),
        )
    )
    try:
        parsed = board.parse_uci(last)
    except ValueError:
        parsed = chess.Move.null()
    if not parsed:
        refusal = f"illegal move {re.escape(repr(last))} in {re.escape(repr(board.fen()))}"
        with pytest.raises(ValueError, match=refusal):
            list(iter_search(start, moves=(*moves, last), max_depth=1))
        return
    board.push(parsed)
    lines = list(iter_search(start, moves=(*moves, last), max_depth=1, multipv=500))
    assert {info.best for info in lines} == {m.uci() for m in board.legal_moves}


def test_a_lent_memory_is_filled_and_reused() -> None:
    """A game's memory lent to one search keeps its table, history and pawn table for the
    next, which then needs fewer nodes; without it, nothing carries over."""
    fen = "r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N1PN2/PP2BPPP/R2QKB1R w KQ - 0 8"
    memory = SearchMemory(TranspositionTable())
    first = list(iter_search(fen, max_depth=5, memory=memory))
    assert len(memory.table) > 0
    assert len(memory.pawns) > 0
    learned = list(memory.order.history)
    assert any(learned)
    after_move = "r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/P1N1PN2/1P2BPPP/R2QKB1R b KQ - 0 8"
    searched = list(iter_search(after_move, max_depth=1, max_nodes=1, memory=memory))
    assert searched == []  # stopped at its first node: only the aging has touched the history
    assert memory.order.history == [value // 2 for value in learned]
    assert not any(any(killers) for killers in memory.order.killers)
    second = list(iter_search(fen, max_depth=5, memory=memory))
    assert second[-1].nodes < first[-1].nodes
    assert list(iter_search(fen, max_depth=5)) == first


def test_seldepth_reaches_past_the_nominal_depth() -> None:
    """The quiescence search goes deeper than the depth, and seldepth says how deep."""
    infos = list(iter_search(KNIGHT_FORK, max_depth=4))
    assert all(info.seldepth >= info.depth for info in infos)
    assert infos[-1].seldepth > infos[-1].depth


def test_partial_yields_the_better_move_of_a_depth_cut_short() -> None:
    """With `partial`, a depth cut short after proving a new best move yields it, incomplete.

    In this open Sicilian depth 2 prefers f1b5 (check); 1,400 nodes into the search, depth 3
    has proved b1c3 better, which the complete depth 3 confirms.
    """
    fen = "rnbqkb1r/pp2pppp/3p1n2/8/3NP3/8/PPP2PPP/RNBQKB1R w KQkq - 1 5"
    infos = list(iter_search(fen, max_nodes=1_400, partial=True))
    *complete, last = infos
    assert all(info.complete for info in complete)
    assert (complete[-1].depth, complete[-1].best) == (2, "f1b5")
    assert (last.complete, last.depth, last.best) == (False, 3, "b1c3")
    assert final(fen, max_depth=3).best == "b1c3"
    # Without `partial` the same budget yields complete depths only.
    assert list(iter_search(fen, max_nodes=1_400)) == complete


@pytest.mark.parametrize(
    "fen",
    [
        "r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N1PN2/PP2BPPP/R2QKB1R w KQ - 0 8",
        # Castling and pieces shielding the enemy king, which the bitboards cannot rule out.
        "r3k2r/pppq1ppp/2n2n2/1Bb1p1B1/1bP1P1b1/2N2N2/PP1Q1PPP/R3K2R w KQkq - 4 9",
        "4k3/4n3/8/8/4R3/8/3B4/R3K3 w Q - 0 1",
    ],
)
def test_the_check_test_before_pruning_only_saves_work(fen: str) -> None:
    """Telling from bitboards whether a move to prune gives check changes nothing but speed:
    the search is the same as when every move to prune is played to see whether it checks.
    The test is replaced in a process of its own running the sources (`GM_ENGINE_PURE`):
    compiled code calls the method directly, past any patch of the class."""
    done = subprocess.run(
        [sys.executable, "-c", _PLAY_EVERY_PRUNED_MOVE, fen],
        env={**os.environ, "GM_ENGINE_PURE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["calls"] > 0  # the patch took effect
    assert result["fast"] == result["played"]


# Searches a FEN to depth 5 as it is, then with every move to prune played to see whether it
# checks; prints both and how often the replaced test ran.
_PLAY_EVERY_PRUNED_MOVE = """
import json, sys
import engine.search
from engine.search.checks import CheckSquares
from engine.search.search import iter_search
assert not engine.search.NATIVE
fen = sys.argv[1]
def run():
    return [[i.depth, i.nodes, i.score_cp, list(i.pv)] for i in iter_search(fen, max_depth=5)]
fast = run()
calls = 0
def always(self, board, move):
    global calls
    calls += 1
    return True
CheckSquares.may_check = always
print(json.dumps({"fast": fast, "played": run(), "calls": calls}))
"""


QUEEN_TWO_WAYS = "6k1/5ppp/8/3q3r/8/2N2B2/5PPP/6K1 w - - 0 1"


def test_multipv_lines_come_ranked_with_different_first_moves() -> None:
    """Each depth gives its lines in rank order, headed by different moves, best first; the two
    captures of the queen lead."""
    infos = list(iter_search(QUEEN_TWO_WAYS, max_depth=3, multipv=3))
    assert [(i.depth, i.multipv) for i in infos] == [(d, r) for d in (1, 2, 3) for r in (1, 2, 3)]
    last = infos[-3:]
    assert len({i.best for i in last}) == 3
    assert {last[0].best, last[1].best} == {"c3d5", "f3d5"}
    scores = [i.score_cp for i in last]
    assert all(s is not None for s in scores)
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]


def test_multipv_with_fewer_moves_than_lines_and_searchmoves() -> None:
    """As many lines as there are moves to search; `searchmoves` restricts the root (repeats
    counted once) and refuses a move that is not legal."""
    two_moves = "7k/8/5Q2/8/8/8/8/K7 b - - 0 1"  # the black king may go to g8 or h7 only
    legal = [m.uci() for m in chess.Board(two_moves).legal_moves]
    infos = list(iter_search(two_moves, max_depth=2, multipv=5))
    assert [(i.depth, i.multipv) for i in infos] == [
        (d, r) for d in (1, 2) for r in range(1, len(legal) + 1)
    ]
    only = list(
        iter_search(
            chess.STARTING_FEN, max_depth=2, multipv=3, searchmoves=["a2a3", "h2h3", "a2a3"]
        )
    )
    assert {i.best for i in only} == {"a2a3", "h2h3"}
    assert max(i.multipv for i in only) == 2
    with pytest.raises(ValueError, match="e2e5"):
        list(iter_search(chess.STARTING_FEN, searchmoves=["e2e4", "e2e5"]))


def test_a_stop_during_the_second_line_yields_the_first() -> None:
    """A depth cut short after its first line yields that line and nothing more."""
    full = list(iter_search(QUEEN_TWO_WAYS, max_depth=4, multipv=2))
    first, second = full[-2], full[-1]
    assert (first.depth, first.multipv, second.multipv) == (4, 1, 2)
    cut = list(iter_search(QUEEN_TWO_WAYS, max_depth=4, multipv=2, max_nodes=first.nodes + 1))
    assert cut[-1] == first


def test_a_repetition_reaches_back_to_the_position_after_a_double_step() -> None:
    """The position after ...h7h5 has an en passant square no pawn can use: reached again
    without it, it is the same position, and the side a rook down takes the draw."""
    start = "6k1/5ppp/8/8/8/8/5PPP/3R2K1 b - - 0 1"
    infos = list(iter_search(start, moves=("h7h5", "d1d2", "g8h7", "d2d1"), max_depth=5))
    assert infos[-1].best == "h7g8"
    assert infos[-1].score_cp == 0
